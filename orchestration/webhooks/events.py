"""From a vendor's webhook body to inbox rows: ids, event types and times, nothing else.

Greenhouse and HighLevel bodies carry names, emails and phones; only ids leave this module. One
delivery becomes one row per object it names (a Greenhouse stage change names the application
and its candidate; a Keap batch names up to 1,000 contacts; a merge names the surviving and the
vanished candidate). `op` is `delete` when the object no longer exists at the vendor, so
deletions are known between two full listings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SOURCES = ("greenhouse", "keap", "highlevel")


class PayloadError(ValueError):
    """A signed body we cannot read: the message names the field."""


@dataclass(frozen=True)
class Event:
    """One inbox row (before the inbox stamps `seq` and `received_at`)."""

    event_id: str
    source: str
    event_type: str
    object_type: str | None
    object_id: str | None
    op: str                        # upsert | delete
    related_id: str | None         # merge: the other candidate; opportunity: its contact
    vendor_timestamp: datetime | None


def parse_ts(value: Any) -> datetime | None:
    """An ISO-8601 time (Z or offset; naive means UTC) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise PayloadError(f"timestamp {text[:40]!r} is not an ISO-8601 time") from e
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or isinstance(value, dict | list) or str(value) == "":
        return None
    return str(value)


# -- Greenhouse ---------------------------------------------------------------------------------
GREENHOUSE_DELETES = {"delete_candidate": "candidate", "delete_application": "application",
                      "offer_deleted": "offer", "delete_offer": "offer"}


# not created_at: a candidate created long ago and changed today is today's change
TIME_FIELDS = ("updated_at", "last_activity_at", "occurred_at")


def _latest_time(payload: dict[str, Any]) -> datetime | None:
    """The latest update time the payload carries (its own, or its objects' one level down):
    Greenhouse bodies have no event time of their own."""
    found = [payload.get(f) for f in TIME_FIELDS]
    for value in payload.values():
        if isinstance(value, dict):
            found += [value.get(f) for f in TIME_FIELDS]
            for inner in value.values():
                if isinstance(inner, dict):
                    found += [inner.get(f) for f in TIME_FIELDS]
    stamps = []
    for value in found:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                stamps.append(parse_ts(value))
            except PayloadError:
                continue        # a field we only read for a hint; the event stands without it
    return max((t for t in stamps if t), default=None)


def greenhouse_events(event_id: str, body: dict[str, Any]) -> list[Event]:
    """Rows of one Greenhouse delivery `{"action", "payload"}`; [] for a `ping`."""
    action = body.get("action")
    payload = body.get("payload")
    if not isinstance(action, str) or not action:
        raise PayloadError("greenhouse: body has no 'action'")
    if action == "ping":
        return []
    if not isinstance(payload, dict):
        raise PayloadError(f"greenhouse: action {action!r} has no 'payload' object")
    when = _latest_time(payload)
    rows: list[tuple[str, str | None, str, str | None]] = []   # (type, id, op, related)
    if action == "merge_candidate":
        # Greenhouse: payload.person is the duplicate that ceased to exist and
        # person.new_candidate_id the survivor (other spellings accepted too)
        person = payload.get("person") if isinstance(payload.get("person"), dict) else {}
        primary = (_id(person.get("new_candidate_id")) or _id(payload.get("primary_candidate"))
                   or _id(payload.get("primary_candidate_id")))
        dupes = [person, payload.get("duplicate"), payload.get("duplicate_candidate"),
                 payload.get("duplicate_candidate_id")]
        for k in ("duplicates", "duplicate_candidates", "duplicate_candidate_ids"):
            dupes += list(payload.get(k) or [])
        duplicate_ids = list(dict.fromkeys(i for i in map(_id, dupes) if i and i != primary))
        if not primary or not duplicate_ids:
            raise PayloadError("greenhouse: merge_candidate needs payload.person.id (the "
                               "duplicate) and payload.person.new_candidate_id (the survivor)")
        rows.append(("candidate", primary, "upsert", duplicate_ids[0]))
        rows += [("candidate", d, "delete", primary) for d in duplicate_ids]
    elif action in GREENHOUSE_DELETES:
        kind = GREENHOUSE_DELETES[action]
        oid = (_id(payload.get(kind)) or _id(payload.get(f"{kind}_id"))
               or (_id(payload.get("person")) if kind == "candidate" else None))
        if not oid:
            raise PayloadError(f"greenhouse: {action} needs payload.{kind}.id"
                               + (" or payload.person.id" if kind == "candidate" else ""))
        rows.append((kind, oid, "delete", None))
        person = payload.get("person") if isinstance(payload.get("person"), dict) else {}
        # deleting a candidate deletes its applications, with no webhook of their own
        rows += [("application", _id(a), "delete", oid)
                 for a in person.get("deleted_application_ids") or [] if _id(a)]
    else:
        application = payload.get("application")
        if isinstance(application, dict):
            rows.append(("application", _id(application), "upsert", None))
            candidate = application.get("candidate") or application.get("candidate_id")
            if _id(candidate):
                rows.append(("candidate", _id(candidate), "upsert", None))
        for kind in ("candidate", "offer", "job", "prospect"):
            if _id(payload.get(kind)):
                rows.append(("candidate" if kind == "prospect" else kind,
                             _id(payload.get(kind)), "upsert", None))
        if not rows:
            # an action we do not know the shape of: still a change at this vendor
            rows.append(("unknown", None, "upsert", None))
    seen: set[tuple[str, str | None]] = set()
    out = []
    for kind, oid, op, related in rows:
        if (kind, oid) in seen and op == "upsert":
            continue
        seen.add((kind, oid))
        out.append(Event(event_id, "greenhouse", action, kind, oid, op, related, when))
    return out


# -- Keap ---------------------------------------------------------------------------------------
def keap_events(body: dict[str, Any]) -> list[Event]:
    """Rows of one Keap REST-hook delivery (one per object key). Keap sends no event id, so a
    key's id is a hash of (event key, object id, its timestamp): a resend of the same change
    has the same id."""
    event_key = body.get("event_key")
    if not isinstance(event_key, str) or not event_key:
        raise PayloadError("keap: body has no 'event_key'")
    keys = body.get("object_keys")
    if not isinstance(keys, list):
        raise PayloadError(f"keap: {event_key} has no 'object_keys' list")
    if len(keys) > 1000:
        raise PayloadError(f"keap: {event_key} carries {len(keys)} object keys (Keap sends "
                           "at most 1000)")
    object_type = str(body.get("object_type") or event_key.split(".", 1)[0])
    op = "delete" if event_key.endswith(".delete") else "upsert"
    out = []
    for n, key in enumerate(keys):
        oid = _id(key)
        if oid is None:
            raise PayloadError(f"keap: {event_key} object_keys[{n}] has no 'id'")
        stamp = key.get("timestamp") if isinstance(key, dict) else None
        when = parse_ts(stamp)
        contacts = key.get("contact_ids") if isinstance(key, dict) else None
        if object_type == "contactGroup" and contacts:
            # a tag applied to / removed from contacts: the contacts are what changed
            for contact in contacts:
                cid = _id(contact)
                if cid:
                    out.append(Event(_keap_id(event_key, f"{oid}/{cid}", stamp), "keap",
                                     event_key, "contact", cid, op, oid, when))
            continue
        out.append(Event(_keap_id(event_key, oid, stamp), "keap", event_key, object_type, oid,
                         op, None, when))
    return out


def _keap_id(event_key: str, object_id: str, stamp: Any) -> str:
    return hashlib.sha256(f"keap|{event_key}|{object_id}|{stamp}".encode()).hexdigest()[:32]


# -- HighLevel ----------------------------------------------------------------------------------
def highlevel_events(body: dict[str, Any]) -> list[Event]:
    """The row of one HighLevel delivery `{"type", "id", "timestamp", "webhookId", ...}`."""
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise PayloadError("highlevel: body has no 'type'")
    webhook_id = body.get("webhookId")
    if not isinstance(webhook_id, str) or not webhook_id:
        raise PayloadError(f"highlevel: {kind} has no 'webhookId'")
    object_type = next((t for t in ("Contact", "Opportunity", "Note", "Task", "Appointment")
                        if kind.startswith(t)), kind)
    op = "delete" if kind.endswith("Delete") else "upsert"
    related = _id(body.get("contactId")) if object_type == "Opportunity" else None
    return [Event(webhook_id, "highlevel", kind, object_type.lower(),
                  _id(body.get("id")), op, related, parse_ts(body.get("timestamp")))]
