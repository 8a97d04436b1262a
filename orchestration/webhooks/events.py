"""From a vendor's webhook body to inbox rows: ids, event types and times, nothing else.

Greenhouse and HighLevel bodies carry names, emails and phones; only ids leave this module. One
delivery becomes one row per object it names (a Greenhouse stage change names the application
and its candidate; a Keap batch names up to 1,000 contacts; a merge names the surviving and the
vanished candidate). `op` is `delete` when the object no longer exists at the vendor, so
deletions are known between two full listings.
"""

from __future__ import annotations

import hashlib
import re
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


# Each vendor's id format. Ids reach file names nowhere, but they do reach the inbox, the logs
# and the sensor's run tags: a value outside the format (`../../etc`, a 401-digit number, an
# object) is refused with the field named, never stored as a null or as text.
MAX_NUMERIC_ID = 2**63 - 1          # Greenhouse and Keap ids are 64-bit integers
HIGHLEVEL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")     # e.g. 75Ymy6jhekbEftf3JLdp, a uuid
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _shape(value: Any) -> str:
    """What a refused value looks like, without the value (it may be personal)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"a {len(str(abs(value)))}-digit number" + (" below 1" if value < 1 else "")
    if isinstance(value, str):
        return f"a {len(value)}-character string"
    return {dict: "an object", list: "a list", float: "a decimal number"}.get(
        type(value), type(value).__name__)


def _numeric_id(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        ok = 1 <= value <= MAX_NUMERIC_ID
    else:
        ok = (isinstance(value, str) and value.isascii() and value.isdigit()
              and len(value) <= 19 and 1 <= int(value) <= MAX_NUMERIC_ID)
    if not ok:
        raise PayloadError(f"{where} is not an id (a whole number from 1 to 2^63-1): got "
                           f"{_shape(value)}")
    return str(int(value))


def _highlevel_id(value: Any, where: str) -> str:
    if not (isinstance(value, str) and HIGHLEVEL_ID.fullmatch(value)):
        raise PayloadError(f"{where} is not a HighLevel id (1 to 64 letters, digits, '_' or "
                           f"'-'): got {_shape(value)}")
    return value


def event_id_problem(value: str) -> str | None:
    """Why a vendor's event id (header or field) cannot be kept, or None."""
    if EVENT_ID.fullmatch(value):
        return None
    return (f"{_shape(value)} that is not an event id (1 to 128 letters, digits, '.', '_', ':' "
            "or '-', starting with a letter or digit)")


def _id(value: Any, where: str) -> str | None:
    """The Greenhouse or Keap id at `where` (the value itself, or its `id` when it is an
    object); None when absent. Anything else present is a PayloadError naming `where`."""
    if isinstance(value, dict):
        value, where = value.get("id"), f"{where}.id"
    if value is None or value == "":
        return None
    return _numeric_id(value, where)


def _flat_id(value: Any, where: str) -> str | None:
    """A HighLevel id: top-level fields, never an object; None when absent."""
    return None if value is None or value == "" else _highlevel_id(value, where)


def _ids(value: Any, where: str) -> list[str]:
    """A list of ids (absent: none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where} is not a list: got {_shape(value)}")
    return [i for n, v in enumerate(value) if (i := _id(v, f"{where}[{n}]"))]


def greenhouse_event_id(body: bytes) -> str:
    """A Greenhouse event's id in the inbox: a digest of the signed body. The
    `Greenhouse-Event-ID` header is not covered by the signature, so whoever holds one signed
    body could post it again under fresh ids; by its digest every copy is the same event."""
    return "sha256:" + hashlib.sha256(body).hexdigest()[:32]


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


# Where a Greenhouse action carries the time of the change it announces (its bodies have no
# event time of their own). Other times in a body can be much older than the change (an
# application_updated after a merge carries a last_activity_at of weeks ago), so only these
# bound a body's age; the other actions are deduplicated by their signed body alone.
GREENHOUSE_EVENT_TIME: dict[str, tuple[str, ...]] = {
    "new_candidate_application": ("application", "applied_at"),
    "new_prospect_application": ("application", "applied_at"),
    "candidate_stage_change": ("application", "last_activity_at"),
    "reject_candidate": ("application", "rejected_at"),
    "hire_candidate": ("application", "offer", "resolved_at"),
    "offer_created": ("offer", "created_at"),
    "job_created": ("job", "created_at"),
    "job_updated": ("job", "updated_at"),
}


def greenhouse_event_time(body: dict[str, Any]) -> datetime | None:
    """The time of the change a Greenhouse body announces, when its action carries one."""
    path = GREENHOUSE_EVENT_TIME.get(body.get("action"))  # type: ignore[arg-type]
    node: Any = body.get("payload")
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    if node is None or not path:
        return None
    if not isinstance(node, str):
        raise PayloadError(f"greenhouse: payload.{'.'.join(path)} is not a time: got "
                           f"{_shape(node)}")
    return parse_ts(node)


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


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
    try:
        rows = _greenhouse_rows(action, payload)
    except PayloadError as e:
        if str(e).startswith("greenhouse:"):
            raise
        raise PayloadError(f"greenhouse: {action}: {e}") from None
    when = _latest_time(payload)
    seen: set[tuple[str, str | None]] = set()
    out = []
    for kind, oid, op, related in rows:
        if (kind, oid) in seen and op == "upsert":
            continue
        seen.add((kind, oid))
        out.append(Event(event_id, "greenhouse", action, kind, oid, op, related, when))
    return out


def _greenhouse_rows(action: str, payload: dict[str, Any]
                     ) -> list[tuple[str, str | None, str, str | None]]:
    """(object type, id, op, related id) of each object a Greenhouse action names."""
    rows: list[tuple[str, str | None, str, str | None]] = []
    if action == "merge_candidate":
        # Greenhouse: payload.person is the duplicate that ceased to exist and
        # person.new_candidate_id the survivor (other spellings accepted too)
        person = _object(payload, "person")
        primary = (_id(person.get("new_candidate_id"), "payload.person.new_candidate_id")
                   or _id(payload.get("primary_candidate"), "payload.primary_candidate")
                   or _id(payload.get("primary_candidate_id"), "payload.primary_candidate_id"))
        dupes = [_id(person, "payload.person"),
                 *(_id(payload.get(k), f"payload.{k}") for k in (
                     "duplicate", "duplicate_candidate", "duplicate_candidate_id"))]
        for k in ("duplicates", "duplicate_candidates", "duplicate_candidate_ids"):
            dupes += _ids(payload.get(k), f"payload.{k}")
        duplicate_ids = list(dict.fromkeys(i for i in dupes if i and i != primary))
        if not primary or not duplicate_ids:
            raise PayloadError("greenhouse: merge_candidate needs payload.person.id (the "
                               "duplicate) and payload.person.new_candidate_id (the survivor)")
        rows.append(("candidate", primary, "upsert", duplicate_ids[0]))
        rows += [("candidate", d, "delete", primary) for d in duplicate_ids]
    elif action in GREENHOUSE_DELETES:
        kind = GREENHOUSE_DELETES[action]
        oid = (_id(payload.get(kind), f"payload.{kind}")
               or _id(payload.get(f"{kind}_id"), f"payload.{kind}_id")
               or (_id(payload.get("person"), "payload.person") if kind == "candidate"
                   else None))
        if not oid:
            raise PayloadError(f"greenhouse: {action} needs payload.{kind}.id"
                               + (" or payload.person.id" if kind == "candidate" else ""))
        rows.append((kind, oid, "delete", None))
        person = _object(payload, "person")
        # deleting a candidate deletes its applications, with no webhook of their own
        rows += [("application", a, "delete", oid) for a in _ids(
            person.get("deleted_application_ids"), "payload.person.deleted_application_ids")]
    else:
        application = payload.get("application")
        if application is not None:
            app_id = _id(application, "payload.application")
            if app_id is None:
                raise PayloadError(f"greenhouse: {action} has payload.application without an id")
            rows.append(("application", app_id, "upsert", None))
            if isinstance(application, dict):
                candidate = (_id(application.get("candidate"), "payload.application.candidate")
                             or _id(application.get("candidate_id"),
                                    "payload.application.candidate_id"))
                if candidate:
                    rows.append(("candidate", candidate, "upsert", None))
        for kind in ("candidate", "offer", "job", "prospect"):
            if oid := _id(payload.get(kind), f"payload.{kind}"):
                rows.append(("candidate" if kind == "prospect" else kind, oid, "upsert", None))
        if not rows:
            # an action we do not know the shape of: still a change at this vendor
            rows.append(("unknown", None, "upsert", None))
    return rows


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
        oid = _id(key, f"keap: {event_key} object_keys[{n}]")
        if oid is None:
            raise PayloadError(f"keap: {event_key} object_keys[{n}] has no 'id'")
        stamp = key.get("timestamp") if isinstance(key, dict) else None
        when = parse_ts(stamp)
        contacts = _ids(key.get("contact_ids") if isinstance(key, dict) else None,
                        f"keap: {event_key} object_keys[{n}].contact_ids")
        if object_type == "contactGroup" and contacts:
            # a tag applied to / removed from contacts: the contacts are what changed
            for cid in contacts:
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
    if problem := event_id_problem(webhook_id):
        raise PayloadError(f"highlevel: {kind} webhookId is {problem}")
    object_type = next((t for t in ("Contact", "Opportunity", "Note", "Task", "Appointment")
                        if kind.startswith(t)), kind)
    op = "delete" if kind.endswith("Delete") else "upsert"
    # the contact an opportunity, note, task or appointment belongs to (a backup of notes and
    # tasks re-reads the contacts the inbox names)
    record = body
    if object_type == "Appointment" and "appointment" in body:
        # HighLevel nests the appointment: {type, locationId, appointment: {id, contactId, ...}}
        record = body["appointment"]
        if not isinstance(record, dict):
            raise PayloadError(f"highlevel: {kind} appointment is not an object: got "
                               f"{_shape(record)}")
    related = (_flat_id(record.get("contactId"), f"highlevel: {kind} contactId")
               if object_type in ("Opportunity", "Note", "Task", "Appointment") else None)
    oid = _flat_id(record.get("id"), f"highlevel: {kind} id")
    return [Event(webhook_id, "highlevel", kind, object_type.lower(), oid, op, related,
                  parse_ts(body.get("timestamp")))]
