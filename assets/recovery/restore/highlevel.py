"""Applying a restore plan to HighLevel: configuration, contacts, then their opportunities.

Order: custom fields to recreate (config.py; every later body sends the live ids of the fields,
pipelines and stages it names), location tags and custom values to recreate or put back
(hl_location.py), opportunities to remove (new ones, and the old copy of a
`replace`), contacts to remove, contacts to recreate (tags travel in the body and become the
contact's whole tag list), contact updates (a `tags` change sends the complete list: HighLevel
replaces tags on update), then opportunities to create (under the live id of their contact,
mapped when it was recreated) and to update.

Creates are not idempotent. HighLevel refuses a second contact with the same email/phone and a
second opportunity of a contact in one pipeline; when such a refusal answers a create this plan
already tried (its reply was lost) and names a contact no backup record is matched to, the
existing record is adopted and updated. A contact with neither email nor phone meets no such
refusal: before it is sent again, the contacts added since the preview (the plan's
`live_watermark`, the vendor's clock) with its first and last name, no email/phone and no backup
record matched are searched (POST /contacts/search); exactly one is adopted, none means the
create is sent, more than one stops that write with an error naming the plan row. Otherwise
another live contact holds that email/phone (a duplicate the location kept from before its
no-duplicates rule, or one created since): the contact is recreated without that field and the
ledger row says which field was left out and which live contact holds it (the next preview
still lists the field; updating it fails the same way until a person resolves the duplicate).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import duckdb

from assets.recovery.restore.config import IdMaps, create_custom_fields, to_live
from assets.recovery.restore.fields import OPPORTUNITY_FIELDS, SPECS
from assets.recovery.restore.hl_location import restore_location
from assets.recovery.restore.runner import Runner, Write, clean, per_record, values, write_id
from orchestration.http import ApiError

if TYPE_CHECKING:
    from orchestration.resources.highlevel import HighLevelClient

SPEC = SPECS["highlevel"]
LOST_CANDIDATES = 50   # contacts read when looking for a lost create by name
SHOWN = 10


def apply_highlevel(con: duckdb.DuckDBPyConnection, client: HighLevelClient, runner: Runner,
                    since: str) -> None:
    """`since`: a time (the vendor's clock) before this plan's first write (its preview)."""
    rows = con.execute("SELECT change_id, entity, action, backup_id, live_id, field, old_value, "
                       "new_value, parent_backup_id FROM todo ORDER BY entity, backup_id, "
                       "live_id, field").fetchall()
    group: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for r in rows:
        group[(r[1], r[2])].append(r)
    # configuration first: the contacts and opportunities written below carry values of
    # these custom fields, sent under the fields' live ids
    maps = create_custom_fields(con, client, runner)
    restore_location(con, client, runner)      # location tags and custom values (by name)
    opp_deletes = group[("opportunities", "delete")] + group[("opportunities", "replace")]
    runner.run([_delete(client, "opportunities", r, "delete") for r in opp_deletes
                if r[4] is not None])    # a replace whose delete half an earlier run did
    runner.run([_delete(client, "contacts", r, "delete") for r in group[("contacts", "delete")]])
    created = _create_contacts(con, client, runner, group[("contacts", "create")], since, maps)
    runner.run(_updates(client, "contacts", group[("contacts", "update")], maps))
    parents = _parent_ids(con, created)
    _create_opportunities(con, client, runner, parents,
                          group[("opportunities", "create")] + group[("opportunities", "replace")],
                          maps)
    runner.run(_updates(client, "opportunities", group[("opportunities", "update")], maps))


def _delete(client: HighLevelClient, entity: str, r: tuple, action: str) -> Write:
    live_id = r[4]
    wid = write_id(r[0], "delete") if r[2] == "replace" else r[0]
    remove = client.delete_opportunity if entity == "opportunities" else client.delete_contact

    def call() -> str:
        remove(live_id)
        return live_id
    return Write(wid, entity, action, r[3], live_id, [], call)


def _create_contacts(con: duckdb.DuckDBPyConnection, client: HighLevelClient, runner: Runner,
                     rows: list[tuple], since: str, maps: IdMaps) -> dict[str, str]:
    docs = values(con, "backup_all", [r[3] for r in rows], SPEC.fields)
    # live contacts a backup record is matched to (by id or through the ledger): never "ours"
    mapped = {r[0] for r in con.execute("SELECT live_id FROM twin").fetchall()}
    claimed: set[str] = set()            # adopted or created by this run
    lock = threading.Lock()
    writes = []
    for r in rows:
        body = docs.get(r[3])
        if body is None:
            continue
        body = to_live(body, maps)

        def call(body: dict = body, wid: str = r[0], backup_id: str = r[3]
                 ) -> str | tuple[str, str]:
            dropped: list[str] = []
            while True:
                if runner.tried_before(wid) and not (body.get("email") or body.get("phone")):
                    with lock:
                        found = _lost_create_by_name(client, runner, body, wid, backup_id,
                                                     since, mapped | claimed)
                        if found:
                            claimed.add(found)
                    if found:
                        client.update_contact(found, body)
                        return (found, "; ".join(dropped)) if dropped else found
                try:
                    new_id = client.create_contact(body)["id"]
                    break
                except ApiError as e:
                    other, field = _duplicate_of(e)
                    # the refusal names a contact no backup record is matched to: the create
                    # this plan tried before (its reply was lost); adopt it
                    if (other and runner.tried_before(wid) and not dropped
                            and other not in mapped and other not in claimed):
                        with lock:
                            claimed.add(other)
                        client.update_contact(other, body)
                        return other
                    if not other or field not in body or len(dropped) >= 2:
                        raise
                    # another live contact holds this email/phone (duplicates the location
                    # kept from before its no-duplicates rule): bring the contact back without it
                    dropped.append(f"{field} not restored: held by live contact {other}")
                    body = {k: v for k, v in body.items() if k != field}
            with lock:
                claimed.add(new_id)
            return (new_id, "; ".join(dropped)) if dropped else new_id
        writes.append(Write(r[0], "contacts", "create", r[3], None, sorted(body), call))
    results = runner.run(writes)
    return {w.backup_id: results[w.write_id] for w in writes
            if results.get(w.write_id) and w.backup_id}


def _lost_create_by_name(client: HighLevelClient, runner: Runner, body: dict, wid: str,
                         backup_id: str, since: str, taken: set[str]) -> str | None:
    """The contact an earlier, killed attempt of this create made, for a contact with neither
    email nor phone (HighLevel's duplicate rule cannot find it): a contact added since the
    preview (vendor clock) with the same first and last name and no email/phone, that no
    backup record is matched to and this run has not claimed. None when there is none; an
    error naming the plan row when more than one could be it."""
    found = client.contacts_added_since(since, first_name=body.get("firstName"),
                                        last_name=body.get("lastName"), limit=LOST_CANDIDATES)
    first, last = ((body.get(k) or "").strip().lower() for k in ("firstName", "lastName"))
    candidates = sorted(
        str(c["id"]) for c in found
        if str(c["id"]) not in taken and not (c.get("email") or c.get("phone"))
        and (c.get("firstName") or "").strip().lower() == first
        and (c.get("lastName") or "").strip().lower() == last)
    if len(candidates) > 1:
        shown = ", ".join(candidates[:SHOWN])
        raise ValueError(
            f"contact create {wid} (backup contact {backup_id}) of plan "
            f"{runner.ledger.plan_id}: an earlier run sent it without recording the answer, "
            f"and {len(candidates)} live contacts added since {since} could be the one it made "
            f"(same name, no email or phone, no backup record matched: {shown}); nothing was "
            f"sent. Delete the extra ones in HighLevel (or give them an email/phone), then run "
            f"`talentvault restore apply {runner.ledger.plan_id}` again")
    return candidates[0] if candidates else None


def _duplicate_of(e: ApiError) -> tuple[str | None, str | None]:
    """(live contact holding the email/phone, which field) of a duplicate refusal."""
    if e.status != 400 or not e.body:
        return None, None
    try:
        meta = json.loads(e.body).get("meta") or {}
    except (ValueError, AttributeError):
        return None, None
    return meta.get("contactId") or meta.get("id"), meta.get("matchingField")


def _updates(client: HighLevelClient, entity: str, rows: list[tuple], maps: IdMaps
             ) -> list[Write]:
    writes = []
    update = client.update_opportunity if entity == "opportunities" else client.update_contact
    for (backup_id, live_id), items in per_record(rows, 3).items():
        body = to_live({r[5]: _body_value(r[5], r[6], r[7], entity) for r in items}, maps)

        def call(body: dict = body, live_id: str = live_id) -> str:
            update(live_id, body)
            return live_id
        wid = write_id("update", *sorted(i[0] for i in items))
        writes.append(Write(wid, entity, "update", backup_id, live_id, sorted(body), call))
    return writes


def _body_value(name: str, old: str | None, new: str | None, entity: str) -> Any:
    """What to send to set a field to its restored value (clearing what it must not hold)."""
    value = None if new is None else clean(json.loads(new))
    if name == "customFields":
        key = "field_value" if entity == "opportunities" else "value"
        have = {i["id"] for i in (json.loads(old) if old else [])}
        items = [_custom(i, key) for i in value or []]
        keep = {i["id"] for i in items}
        return items + [{"id": i, key: ""} for i in sorted(have - keep)]
    if name == "tags":
        return value or []
    if name in ("dndSettings", "inboundDndSettings"):
        return value or {}
    return value


def _custom(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get("value", item.get("fieldValue"))
    return {"id": item["id"], key: value}


def _parent_ids(con: duckdb.DuckDBPyConnection, created: dict[str, str]) -> dict[str, str]:
    """Backup contact id -> live contact id for every contact (recreated ones mapped)."""
    rows = con.execute("SELECT backup_id, live_id FROM twin").fetchall()
    return {b: created.get(b, live) for b, live in rows}


def _create_opportunities(con: duckdb.DuckDBPyConnection, client: HighLevelClient, runner: Runner,
                          parents: dict[str, str], rows: list[tuple], maps: IdMaps) -> None:
    docs = values(con, "opp_backup_all", [r[3] for r in rows], OPPORTUNITY_FIELDS)
    writes = []
    for r in rows:
        body = docs.get(r[3])
        contact = parents.get(r[8] or "")
        if body is None or contact is None:
            continue
        body = {k: (_body_value(k, None, json.dumps(v), "opportunities")
                    if k == "customFields" else v) for k, v in body.items()}
        body = to_live({**body, "contactId": contact}, maps)
        wid = write_id(r[0], "create") if r[2] == "replace" else r[0]

        def call(body: dict = body, wid: str = wid) -> str:
            try:
                return client.create_opportunity(body)["id"]
            except ApiError as e:
                if e.status != 400 or not runner.tried_before(wid):
                    raise
                found = client.find_opportunity(body["contactId"], body["pipelineId"])
                if not found:
                    raise
                client.update_opportunity(found["id"], {k: v for k, v in body.items()
                                                        if k != "contactId"})
                return found["id"]
        writes.append(Write(wid, "opportunities", "create", r[3], None, sorted(body), call))
    runner.run(writes)
