"""What each vendor announces for a change of the world: outbox changes -> vendor events.

Greenhouse (one POST per event, `{"action", "payload"}`, payloads shaped like Greenhouse's
documented webhook payloads, which still use v1 field names):
  applications  add -> new_candidate_application (new_prospect_application for prospects);
                edit -> hire_candidate | reject_candidate | unreject_candidate (status change),
                candidate_stage_change (stage change), else application_updated;
                delete -> delete_application, except when the candidate was deleted too
                (Greenhouse fires no webhook for the deletes a candidate deletion causes)
  candidates    edit -> update_candidate; delete -> delete_candidate (payload.person, with
                deleted_application_ids) or merge_candidate (payload.person.new_candidate_id =
                the surviving candidate); add -> nothing (its application announces it)
  offers        offer_created | offer_updated | offer_deleted (not when the candidate went)
  jobs          job_created | job_updated
Keap (ids only; batched per hook, <= 1000 keys a POST):
  contacts      contact.add | contact.edit | contact.delete; tag_ids gained / lost ->
                contactGroup.applied / contactGroup.removed (object_type contactGroup, one key
                per tag: {id: tag id, apiUrl, timestamp, contact_ids: [...]})
  notes, tasks, opportunities, companies
                note.* | task.* | opportunity.* | company.* (add, edit, delete), one key per
                record; none for the notes, tasks and opportunities a contact's deletion takes
                along (keap/history.py `cascade_contact`)
HighLevel (one POST per event, the record's fields at the top level as HighLevel sends them):
  contacts      ContactCreate | ContactUpdate | ContactDelete; tags changed -> ContactTagUpdate
                (alone when only the tags changed)
  opportunities OpportunityCreate | OpportunityStageUpdate | OpportunityStatusUpdate |
                OpportunityUpdate | OpportunityDelete (a change of the embedded contact summary
                alone is not an opportunity change: the real API joins it in at read time)
  notes         NoteCreate | NoteUpdate | NoteDelete ({locationId, id, body, contactId,
                dateAdded}); tasks: TaskCreate | TaskComplete | TaskDelete ({locationId, id,
                assignedTo, body, contactId, title, dateAdded, dueDate}); none for the notes and
                tasks a contact deletion takes along
  appointments  AppointmentCreate | AppointmentUpdate | AppointmentDelete, the appointment
                nested as HighLevel sends it ({locationId, appointment: {id, address, title,
                calendarId, contactId, groupId, appointmentStatus, assignedUserId, users, notes,
                source, startTime, endTime, dateAdded, dateUpdated}}); none for the appointments
                a contact's or a calendar's deletion takes along
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sandbox.credentials import HIGHLEVEL_LOCATION_ID
from sandbox.store import Store
from sandbox.webhooks.store import Change

log = logging.getLogger(__name__)


@dataclass
class Event:
    source: str
    event: str                      # Greenhouse action / Keap event key / HighLevel type
    object_type: str
    ids: list[str]                  # the changed records' ids (for the log and Keap keys)
    at: str                         # the change time (sandbox clock)
    payload: dict[str, Any] = field(default_factory=dict)   # Greenhouse / HighLevel body part
    keys: list[dict[str, Any]] = field(default_factory=list)  # Keap object_keys (no apiUrl)


def events_for(store: Store, changes: list[Change]) -> list[Event]:
    out: list[Event] = []
    for c in changes:
        if c.op == "edit" and c.before == c.after:
            continue  # the same record written again: nothing changed, nothing to announce
        try:
            if c.source == "greenhouse":
                out += _greenhouse(store, c)
            elif c.source == "keap":
                out += _keap(store, c)
            elif c.source == "highlevel":
                out += _highlevel(store, c)
        except Exception:  # one odd record must not cost the others their events
            log.exception("no webhook event for %s/%s %s (%s): could not build it",
                          c.source, c.entity, c.id, c.op)
    return out


# -- Greenhouse ---------------------------------------------------------------------------------
V1_STATUS = {"in_process": "active"}


def _greenhouse(store: Store, c: Change) -> list[Event]:
    doc = c.after or c.before or {}

    def ev(action: str, object_type: str, payload: dict[str, Any]) -> list[Event]:
        return [Event("greenhouse", action, object_type, [c.id], c.at, payload)]

    if c.entity == "applications":
        if c.op == "add":
            action = "new_prospect_application" if doc.get("prospect") else \
                "new_candidate_application"
            return ev(action, "application", {"application": _application(store, doc)})
        if c.op == "delete":
            if _deleted(store, "candidates", doc.get("candidate_id")):
                return []
            return ev("delete_application", "application",
                      {"application": {"id": doc.get("id"),
                                       "candidate_id": doc.get("candidate_id")}})
        before = c.before or {}
        if before.get("status") != doc.get("status"):
            action = {"hired": "hire_candidate", "rejected": "reject_candidate"}.get(
                doc.get("status"), "unreject_candidate" if before.get("status") == "rejected"
                else "application_updated")
        elif before.get("stage_id") != doc.get("stage_id"):
            action = "candidate_stage_change"
        else:
            action = "application_updated"
        return ev(action, "application", {"application": _application(store, doc)})
    if c.entity == "candidates":
        if c.op == "add":
            return []
        if c.op == "edit":
            return ev("update_candidate", "candidate", {"candidate": _candidate(doc)})
        person = _person(doc)
        if c.merged_into is not None:
            person["new_candidate_id"] = _int(c.merged_into)
            return ev("merge_candidate", "candidate", {"person": person})
        person["deleted_application_ids"] = _deleted_children(store, "applications",
                                                              "candidate_id", c.id)
        return ev("delete_candidate", "candidate", {"person": person})
    if c.entity == "offers":
        if c.op == "delete" and _deleted(store, "applications", doc.get("application_id")):
            return []
        action = {"add": "offer_created", "edit": "offer_updated", "delete": "offer_deleted"}[c.op]
        return ev(action, "offer", {"offer": {
            k: doc.get(k) for k in ("id", "application_id", "candidate_id", "job_id", "version",
                                    "status", "created_at", "sent_at", "resolved_at",
                                    "starts_at", "starts_on")}})
    if c.entity == "jobs" and c.op in ("add", "edit"):
        action = "job_created" if c.op == "add" else "job_updated"
        return ev(action, "job", {"job": {k: doc.get(k) for k in (
            "id", "name", "requisition_id", "status", "confidential", "created_at", "opened_at",
            "closed_at", "updated_at")}})
    return []


def _int(v: Any) -> Any:
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


def _deleted(store: Store, entity: str, id_: Any, source: str = "greenhouse") -> bool:
    return id_ is not None and store.conn.execute(
        "SELECT 1 FROM tombstones WHERE source = ? AND entity = ? AND id = ?",
        (source, entity, str(id_))).fetchone() is not None


def _deleted_children(store: Store, entity: str, field_: str, parent: str) -> list[Any]:
    return [_int(r[0]) for r in store.conn.execute(
        "SELECT id FROM tombstones WHERE source = 'greenhouse' AND entity = ? "
        f"AND json_extract(doc, '$.{field_}') = ? ORDER BY id", (entity, _int(parent)))]


def _candidate(doc: dict[str, Any]) -> dict[str, Any]:
    """A candidate as Greenhouse's webhook payloads embed it (v1 names)."""
    cid = doc.get("id")
    return {
        "id": cid, "first_name": doc.get("first_name"), "last_name": doc.get("last_name"),
        "title": doc.get("title"), "company": doc.get("company"),
        "created_at": doc.get("created_at"), "external_id": None, "photo_url": None,
        "url": f"https://app.greenhouse.io/people/{cid}",
        "is_private": bool(doc.get("private")), "can_email": doc.get("can_email"),
        "phone_numbers": doc.get("phone_numbers", []),
        "email_addresses": doc.get("email_addresses", []),
        "addresses": doc.get("addresses", []),
        "website_addresses": doc.get("website_addresses", []),
        "social_media_addresses": doc.get("social_media_addresses", []),
        "tags": doc.get("tags", []), "custom_fields": doc.get("custom_fields", {}),
    }


def _person(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc.get("id"), "first_name": doc.get("first_name"),
            "last_name": doc.get("last_name"), "company": doc.get("company"),
            "title": doc.get("title"), "created_at": doc.get("created_at"),
            "is_private": bool(doc.get("private")), "can_email": doc.get("can_email")}


def _application(store: Store, doc: dict[str, Any]) -> dict[str, Any]:
    cand = store.get("greenhouse", "candidates", doc.get("candidate_id")) or {
        "id": doc.get("candidate_id")}
    job = store.get("greenhouse", "jobs", doc.get("job_id")) or {"id": doc.get("job_id")}
    stage = ({"id": doc["stage_id"], "name": doc.get("stage_name")}
             if doc.get("stage_id") is not None else None)
    return {
        "id": doc.get("id"), "prospect": doc.get("prospect", False),
        "status": V1_STATUS.get(doc.get("status"), doc.get("status")),
        "applied_at": doc.get("created_at"), "rejected_at": doc.get("rejected_at"),
        "last_activity_at": doc.get("last_activity_at"),
        "url": f"https://app.greenhouse.io/people/{cand.get('id')}?application_id={doc.get('id')}",
        "source": {"id": doc.get("source_id")} if doc.get("source_id") else None,
        "current_stage": stage, "custom_fields": doc.get("custom_fields", {}),
        "candidate": _candidate(cand),
        "jobs": [{"id": job.get("id"), "name": job.get("name"), "status": job.get("status"),
                  "opened_at": job.get("opened_at"), "closed_at": job.get("closed_at")}],
    }


# -- Keap ---------------------------------------------------------------------------------------
_KEAP_VOLATILE = ("tag_ids", "update_time")


KEAP_OBJECTS = {"notes": "note", "tasks": "task", "opportunities": "opportunity",
                "companies": "company"}


def _keap(store: Store, c: Change) -> list[Event]:
    key = {"id": _int(c.id), "timestamp": c.at}
    if c.entity in KEAP_OBJECTS:
        doc = c.after or c.before or {}
        contact = doc.get("contact_id") or (doc.get("contact") or {}).get("id")
        if c.op == "delete" and contact and _deleted(store, "contacts", contact, "keap"):
            return []   # gone with its contact: Keap announces the contact's deletion only
        kind = KEAP_OBJECTS[c.entity]
        return [Event("keap", f"{kind}.{c.op}", kind, [c.id], c.at, keys=[key])]
    if c.entity != "contacts":
        return []
    if c.op in ("add", "delete"):
        return [Event("keap", f"contact.{c.op}", "contact", [c.id], c.at, keys=[key])]
    before, after = c.before or {}, c.after or {}
    old, new = set(before.get("tag_ids") or []), set(after.get("tag_ids") or [])
    out: list[Event] = []
    strip = {k: v for k, v in before.items() if k not in _KEAP_VOLATILE}
    if strip != {k: v for k, v in after.items() if k not in _KEAP_VOLATILE} or old == new:
        out.append(Event("keap", "contact.edit", "contact", [c.id], c.at, keys=[key]))
    for name, tags in (("applied", new - old), ("removed", old - new)):
        for tag in sorted(tags, key=_int):
            out.append(Event("keap", f"contactGroup.{name}", "contactGroup", [c.id], c.at,
                             keys=[{"id": _int(tag), "timestamp": c.at,
                                    "contact_ids": [_int(c.id)]}]))
    return out


# -- HighLevel ----------------------------------------------------------------------------------
NOTE_PAYLOAD = ("body", "contactId", "dateAdded")
TASK_PAYLOAD = ("assignedTo", "body", "contactId", "title", "dueDate")


def _highlevel_child(store: Store, c: Change, doc: dict[str, Any]) -> list[Event]:
    """Notes and tasks: HighLevel's NoteCreate / NoteUpdate / NoteDelete and TaskCreate /
    TaskComplete / TaskDelete, with the fields its webhook docs list. A task edit other than its
    completion is not announced (HighLevel has no TaskUpdate), nor are the notes and tasks that
    go with a deleted contact."""
    if c.op == "delete" and store.get("highlevel", "contacts", doc.get("contactId")) is None:
        return []
    if c.entity == "notes":
        kind, fields = "Note", NOTE_PAYLOAD
        types = {"add": ["NoteCreate"], "delete": ["NoteDelete"]}.get(c.op, ["NoteUpdate"])
    else:
        kind, fields = "Task", TASK_PAYLOAD
        completed = c.op == "edit" and doc.get("completed") and not (c.before or {}).get(
            "completed")
        types = {"add": ["TaskCreate"], "delete": ["TaskDelete"]}.get(
            c.op, ["TaskComplete"] if completed else [])
    payload = {k: doc[k] for k in fields if k in doc}
    if kind == "Task":   # a task has no time of its own: the webhook's dateAdded is the event's
        payload["dateAdded"] = c.at
    return [Event("highlevel", t, kind.lower(), [c.id], c.at,
                  {"locationId": HIGHLEVEL_LOCATION_ID, "id": c.id, **payload}) for t in types]


APPOINTMENT_PAYLOAD = ("id", "address", "title", "calendarId", "contactId", "groupId",
                       "appointmentStatus", "assignedUserId", "users", "notes", "source",
                       "startTime", "endTime", "dateAdded", "dateUpdated")


def _highlevel_appointment(store: Store, c: Change, doc: dict[str, Any]) -> list[Event]:
    if c.op == "delete" and (
            store.get("highlevel", "contacts", doc.get("contactId")) is None
            or store.get("highlevel", "calendars", doc.get("calendarId")) is None):
        return []   # went with its contact or calendar: not announced
    kind = {"add": "AppointmentCreate", "delete": "AppointmentDelete"}.get(
        c.op, "AppointmentUpdate")
    appointment = {k: doc[k] for k in APPOINTMENT_PAYLOAD if k in doc}
    return [Event("highlevel", kind, "appointment", [c.id], c.at,
                  {"locationId": HIGHLEVEL_LOCATION_ID, "appointment": appointment})]


def _highlevel(store: Store, c: Change) -> list[Event]:
    doc = dict(c.after or c.before or {})
    if c.entity in ("notes", "tasks"):
        return _highlevel_child(store, c, doc)
    if c.entity == "appointments":
        return _highlevel_appointment(store, c, doc)
    if c.entity == "contacts":
        base = "Contact"
        if c.op == "add":
            types = ["ContactCreate"]
        elif c.op == "delete":
            types = ["ContactDelete"]
        else:
            before = c.before or {}
            tags_changed = sorted(before.get("tags") or []) != sorted(doc.get("tags") or [])
            rest = {k: v for k, v in before.items() if k not in ("tags", "dateUpdated")} != {
                k: v for k, v in doc.items() if k not in ("tags", "dateUpdated")}
            types = (["ContactUpdate"] if rest or not tags_changed else []) + (
                ["ContactTagUpdate"] if tags_changed else [])
    elif c.entity == "opportunities":
        base = "Opportunity"
        doc.pop("contact", None)  # joined in at read time, not part of the record
        if c.op == "add":
            types = ["OpportunityCreate"]
        elif c.op == "delete":
            types = ["OpportunityDelete"]
        else:
            before = dict(c.before or {})
            before.pop("contact", None)
            if before == doc:
                return []
            if before.get("pipelineStageId") != doc.get("pipelineStageId"):
                types = ["OpportunityStageUpdate"]
            elif before.get("status") != doc.get("status"):
                types = ["OpportunityStatusUpdate"]
            else:
                types = ["OpportunityUpdate"]
    else:
        return []
    # the record's own `type` (contact type "lead" ...) would clash with the event type
    payload = {k: v for k, v in doc.items() if k not in ("id", "locationId", "type")}
    return [Event("highlevel", t, base.lower(), [c.id], c.at,
                  {"locationId": doc.get("locationId"), "id": c.id, **payload})
            for t in types]


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
