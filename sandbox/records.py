"""How each vendor record is indexed in the world file: one table of rules, used by every writer
(the world generator, the daily life simulation, fixture loading and the API handlers), so that a
record written anywhere is found the same way by every endpoint.

Entities (source/entity names match the backup asset keys):
  greenhouse: candidates, applications, jobs, job_interview_stages, application_stages, offers,
              interviews, rejection_reasons, rejection_details, users, departments, offices,
              sources, scorecards, notes, attachments, applied_candidate_tags, candidate_tags,
              custom_fields, close_reasons, job_posts
  keap:       contacts, tags, tag_categories, custom_fields, notes, tasks, emails,
              opportunities, opportunity_stages, companies
  highlevel:  contacts, opportunities, pipelines, workflows, custom_fields, tags, notes,
              tasks, conversations, messages, calendars, appointments, custom_values
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.store import Store, iso, parse_ts


def _first_email(field: str, key: str) -> Callable[[dict], str | None]:
    def get(doc: dict) -> str | None:
        for item in doc.get(field) or []:
            value = item.get(key) if isinstance(item, dict) else item
            if value:
                return str(value)
        return None
    return get


def _all_emails(field: str, key: str) -> Callable[[dict], list[str]]:
    def get(doc: dict) -> list[str]:
        return [str(i[key]).strip().lower() for i in doc.get(field) or []
                if isinstance(i, dict) and i.get(key)]
    return get


@dataclass(frozen=True)
class Rule:
    updated: str | None                          # the doc field holding the update time
    parent: str | None = None                    # the doc field holding the owner id
    email: Callable[[dict], str | None] | None = None
    email_keys: Callable[[dict], list[str]] | None = None   # -> lookup kind "email"
    numeric_ids: bool = True


RULES: dict[tuple[str, str], Rule] = {
    ("greenhouse", "candidates"): Rule("updated_at", email=_first_email("email_addresses",
                                                                         "value")),
    ("greenhouse", "applications"): Rule("updated_at", parent="candidate_id"),
    ("greenhouse", "jobs"): Rule("updated_at"),
    ("greenhouse", "job_interview_stages"): Rule("updated_at", parent="job_id"),
    ("greenhouse", "application_stages"): Rule("updated_at", parent="application_id"),
    ("greenhouse", "offers"): Rule("updated_at", parent="application_id"),
    ("greenhouse", "interviews"): Rule("updated_at", parent="application_id"),
    ("greenhouse", "rejection_reasons"): Rule("updated_at"),
    ("greenhouse", "rejection_details"): Rule("updated_at", parent="application_id"),
    ("greenhouse", "users"): Rule("updated_at"),
    ("greenhouse", "departments"): Rule("updated_at"),
    ("greenhouse", "offices"): Rule("updated_at"),
    ("greenhouse", "sources"): Rule("updated_at"),
    ("greenhouse", "scorecards"): Rule("updated_at", parent="application_id"),
    ("greenhouse", "notes"): Rule("updated_at", parent="candidate_id"),
    ("greenhouse", "attachments"): Rule("updated_at", parent="application_id"),
    ("greenhouse", "applied_candidate_tags"): Rule("updated_at", parent="candidate_id"),
    ("greenhouse", "candidate_tags"): Rule("updated_at"),
    ("greenhouse", "custom_fields"): Rule("updated_at"),
    ("greenhouse", "close_reasons"): Rule("updated_at"),
    ("greenhouse", "job_posts"): Rule("updated_at", parent="job_id"),
    ("keap", "contacts"): Rule("update_time",
                               email=_first_email("email_addresses", "email"),
                               email_keys=_all_emails("email_addresses", "email")),
    ("keap", "tags"): Rule(None),
    ("keap", "tag_categories"): Rule(None),
    ("keap", "opportunity_stages"): Rule(None),
    ("keap", "custom_fields"): Rule(None),
    # a contact's notes, tasks and logged emails (an email's only time is when it was sent: the
    # list's created-time filter reads it), opportunities, companies (Keap v2 schemas)
    ("keap", "notes"): Rule("update_time", parent="contact_id"),
    ("keap", "tasks"): Rule("modification_time", parent="contact_id"),
    ("keap", "emails"): Rule("sent_time", parent="contact_id"),
    ("keap", "opportunities"): Rule("last_updated_time"),
    ("keap", "companies"): Rule("update_time"),
    ("highlevel", "contacts"): Rule("dateUpdated", email=lambda d: d.get("email"),
                                    numeric_ids=False),
    ("highlevel", "opportunities"): Rule("updatedAt", parent="contactId", numeric_ids=False),
    # a contact's notes and tasks (contacts.json /contacts/{contactId}/notes|tasks): notes carry
    # only `dateAdded` (an edit keeps it), tasks no time at all in HighLevel's schema
    ("highlevel", "notes"): Rule("dateAdded", parent="contactId", numeric_ids=False),
    ("highlevel", "tasks"): Rule(None, parent="contactId", numeric_ids=False),
    # conversations.json: one conversation per contact, its messages (SMS, email, call records);
    # a message's `dateUpdated` moves with its status (the export sorts by it)
    ("highlevel", "conversations"): Rule("dateUpdated", parent="contactId", numeric_ids=False),
    ("highlevel", "messages"): Rule("dateUpdated", parent="conversationId", numeric_ids=False),
    # calendars (configuration, no time of their own) and their appointments (calendars.json)
    ("highlevel", "calendars"): Rule(None, numeric_ids=False),
    ("highlevel", "appointments"): Rule("dateUpdated", parent="contactId", numeric_ids=False),
    ("highlevel", "pipelines"): Rule(None, numeric_ids=False),
    ("highlevel", "workflows"): Rule("updatedAt", numeric_ids=False),
    ("highlevel", "custom_fields"): Rule(None, numeric_ids=False),
    ("highlevel", "tags"): Rule(None, numeric_ids=False),
    ("highlevel", "custom_values"): Rule(None, numeric_ids=False),
}


def rule(source: str, entity: str) -> Rule:
    try:
        return RULES[(source, entity)]
    except KeyError:
        raise KeyError(f"the sandbox has no entity {source}/{entity}; "
                       f"known: {', '.join('/'.join(k) for k in RULES)}") from None


def row_for(store: Store | None, source: str, entity: str, doc: dict[str, Any], *,
            seq: int | None = None, now: datetime | None = None) -> tuple:
    """The `records` row tuple for a doc (see Store.put_many)."""
    r = rule(source, entity)
    id_ = doc["id"]
    if seq is None:
        if r.numeric_ids:
            seq = int(id_)
        elif store is not None:
            existing = store.get_row(source, entity, id_)
            seq = existing.seq if existing else store.next_id(source, f"{entity}:seq")
        else:
            seq = 0
    updated = doc.get(r.updated) if r.updated else None
    if updated:
        updated = iso(parse_ts(updated))
    else:
        updated = iso(now or (store.now() if store is not None else parse_ts("1970-01-01Z")))
    email = r.email(doc) if r.email else None
    parent = doc.get(r.parent) if r.parent else None
    return (source, entity, id_, doc, updated, seq, email, parent)


def save(store: Store, source: str, entity: str, doc: dict[str, Any], *,
         seq: int | None = None) -> None:
    """Insert or replace one record with all its index columns and lookup keys."""
    with store.transaction():
        store.put_many([row_for(store, source, entity, doc, seq=seq)])
        r = rule(source, entity)
        if r.email_keys:
            store.set_keys(source, entity, doc["id"], "email", r.email_keys(doc))


def save_many(store: Store, source: str, entity: str, docs: Iterable[dict[str, Any]]) -> int:
    """Bulk form of `save` for generators: streams, in batches, in one transaction."""
    r = rule(source, entity)
    n = 0
    with store.transaction():
        batch: list[dict] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= 5000:
                n += _save_batch(store, source, entity, batch, r)
        n += _save_batch(store, source, entity, batch, r)
    return n


def _save_batch(store: Store, source: str, entity: str, batch: list[dict], r: Rule) -> int:
    if not batch:
        return 0
    store.put_many(row_for(store, source, entity, d) for d in batch)
    if r.email_keys:
        store.conn.executemany(
            "INSERT OR IGNORE INTO lookup VALUES (?, ?, 'email', ?, ?)",
            [(source, entity, k, str(d["id"])) for d in batch for k in set(r.email_keys(d))])
    n = len(batch)
    batch.clear()
    return n


# ~62**20 / golden ratio; odd and not a multiple of 31, so coprime to 62**20
_MULT = 435_357_619_473_100_802_243_071_122_658_557_953
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def highlevel_id(n: int, salt: int = 0x5EED) -> str:
    """A 20-character HighLevel-style id for counter value n: looks random, never repeats."""
    # multiplying by a constant coprime to 62**20 is a bijection on [0, 62**20): no repeats
    x = (n * _MULT + salt) % (62 ** 20)
    out = []
    for _ in range(20):
        x, r = divmod(x, 62)
        out.append(_B62[r])
    return "".join(out)


def next_highlevel_id(store: Store, entity: str) -> str:
    """Allocate a new HighLevel id for an entity (counter `next_id:highlevel:<entity>`)."""
    return highlevel_id(store.next_id("highlevel", entity))
