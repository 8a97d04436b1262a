"""The sandbox's Keap compared with the model of what the mapping implies (sync_expected.py):
every difference a sync test must not see, as a list (empty when Keap is exactly right)."""

from __future__ import annotations

import functools
from typing import Any

from assets.identity.emails import reference_email
from assets.identity.phones import reference_phone
from assets.sync.mapping import DEFAULT_PATH, load_mapping
from sandbox.store import Store
from tests.e2e.sync_expected import Expected

# exclusive tag groups named tag by tag (families like @stage are covered by the model)
GROUPS = {g: {t for t in members if not t.startswith("@")}
          for g, members in load_mapping(DEFAULT_PATH).exclusive.items()}

_reference_email = functools.lru_cache(maxsize=None)(reference_email)


def keap_docs(store: Store) -> dict[str, dict[str, Any]]:
    return {str(d["id"]): d for d in store.iter_docs("keap", "contacts")}


def tag_names(store: Store) -> dict[str, str]:
    return {str(t["id"]): t["name"] for t in store.iter_docs("keap", "tags")}


def field_labels(store: Store) -> dict[str, str]:
    return {str(f["id"]): f.get("label") or f.get("name")
            for f in store.iter_docs("keap", "custom_fields")}


def emails(doc: dict[str, Any]) -> set[str]:
    out = set()
    for e in doc.get("email_addresses") or []:
        norm = _reference_email(e.get("email"))
        if norm:
            out.add(norm)
    return out


def by_email(keap: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Normalized email -> ids of the Keap contacts holding it, oldest first."""
    out: dict[str, list[str]] = {}
    for i in sorted(keap, key=int):
        for e in emails(keap[i]):
            out.setdefault(e, []).append(i)
    return out


def value(doc: dict[str, Any], key: str, labels: dict[str, str]) -> Any:
    if key == "email":
        return emails(doc)
    if key == "phone":  # Keap keeps a number as typed: compare in E.164
        return {reference_phone(p.get("number") or "") for p in doc.get("phone_numbers") or []}
    if key.startswith("custom:"):
        label = key.split(":", 1)[1]
        for f in doc.get("custom_fields") or []:
            if labels.get(str(f.get("id"))) == label:
                return f.get("content")
        return None
    return doc.get(key)


def mismatches(expected: Expected, before: dict[str, dict[str, Any]],
               after: dict[str, dict[str, Any]], tags: dict[str, str],
               labels: dict[str, str]) -> tuple[list[tuple], int]:
    """What differs between Keap (`after`) and the model, and how many contacts were created
    (people Keap had no contact for in `before`)."""
    wrong: list[tuple] = []
    created = 0
    holders_before, holders_after = by_email(before), by_email(after)
    for email, c in expected.contacts.items():
        had, has = holders_before.get(email, []), holders_after.get(email, [])
        # one contact per person: a new one only when Keap had none for the email
        if len(has) != max(1, len(had)):
            wrong.append((c.profile_id, "contacts", had, has))
            continue
        created += not had
        doc = after[has[0]]  # several: the oldest is the one kept in sync
        for key in c.ats_wins & set(c.fields):  # absent: "leave" when the ATS has none
            want, got = c.fields[key], value(doc, key, labels)
            ok = (want is None or want in got) if key in ("email", "phone") else got == want
            if not ok:
                wrong.append((c.profile_id, key, has[0]))
        managed = {tags[t] for t in doc.get("tag_ids") or []
                   if tags.get(t) in expected.managed_tags}
        if managed != c.tags:
            wrong.append((c.profile_id, "tags", sorted(managed ^ c.tags)))
        for group, members in GROUPS.items():  # "Offer Extended" replaced "Active ..."
            if len(managed & members) > 1:
                wrong.append((c.profile_id, "exclusive group", group))
    return wrong, created
