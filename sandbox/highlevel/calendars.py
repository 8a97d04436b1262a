"""HighLevel calendars and appointments (calendars.json; one listing from contacts.json).

GET    /calendars/?locationId=                  {calendars: [CalendarDTO]}
POST   /calendars/                              {calendar}            locationId, name required
GET    /calendars/{calendarId}                  {calendar}
DELETE /calendars/{calendarId}                  {success: true}       its appointments go with it
GET    /calendars/events?locationId=&calendarId=|userId=|groupId=&startTime=&endTime=
                                                {events: [CalendarEventDTO]}  by start, unpaged
POST   /calendars/events/appointments           the appointment   calendarId, locationId,
                                                                  contactId, startTime required
GET    /calendars/events/appointments/{eventId} {event}
PUT    /calendars/events/appointments/{eventId} the appointment
DELETE /calendars/events/{eventId}              201 {succeeded: true}
GET    /contacts/{contactId}/appointments       {events: [GetEventSchema]}  (contacts.json)

Calls under /calendars need `Version: 2021-04-15` (what calendars.json names; the gate in
vendor.py checks it), the contact's listing `2021-07-28` (contacts.json). The events listing
takes epoch milliseconds and returns the appointments whose start lies in [startTime, endTime]
(cancelled ones included; deleted ones are gone), sorted by start; it has no paging and no
"changed since" filter. Every error these operations document is a 400 (BadRequestDTO, a string
message): a missing or malformed parameter, an unknown body property, an unknown calendar,
appointment or contact. HighLevel's docs do not say what deleting a calendar does to its
appointments; here they are deleted with it (tombstones, no webhooks), as a contact's are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox import records
from sandbox.highlevel.common import (
    LOCATION_ID,
    NO_ACCESS,
    SOURCE,
    Handler,
    HighLevelError,
    from_millis,
    json_body,
    now_iso,
    query_params,
    routes,
)
from sandbox.highlevel.contacts import get_contact
from sandbox.store import Store, iso, parse_ts

CALENDAR_FIELDS = ("isActive", "locationId", "groupId", "teamMembers", "eventType", "name",
                   "description", "slug", "widgetSlug", "calendarType", "widgetType",
                   "eventTitle", "eventColor", "locationConfigurations", "slotDuration",
                   "slotDurationUnit", "slotInterval", "slotIntervalUnit", "slotBuffer",
                   "slotBufferUnit", "preBuffer", "preBufferUnit", "appoinmentPerSlot",
                   "appoinmentPerDay", "allowBookingAfter", "allowBookingAfterUnit",
                   "allowBookingFor", "allowBookingForUnit", "openHours", "enableRecurring",
                   "formId", "stickyContact", "autoConfirm", "allowReschedule",
                   "allowCancellation", "notes", "availabilities", "availabilityType")
EDIT_FIELDS = ("title", "meetingLocationType", "meetingLocationId", "overrideLocationConfig",
               "appointmentStatus", "assignedUserId", "description", "address",
               "ignoreDateRange", "toNotify", "ignoreFreeSlotValidation", "rrule", "calendarId",
               "startTime", "endTime")
CREATE_FIELDS = (*EDIT_FIELDS, "locationId", "contactId")
# what the appointment keeps of a request (the rest steers booking rules the sandbox skips)
STORED = ("title", "appointmentStatus", "assignedUserId", "description", "address",
          "calendarId", "startTime", "endTime")
STATUSES = ("new", "confirmed", "cancelled", "showed", "noshow", "invalid")
EVENTS_PARAMS = ("locationId", "userId", "calendarId", "groupId", "startTime", "endTime")
# GetEventSchema (contacts.json): the contact's listing carries these, `status` too
CONTACT_EVENT_FIELDS = ("id", "calendarId", "title", "assignedUserId", "notes", "startTime",
                        "endTime", "address", "locationId", "contactId", "groupId",
                        "appointmentStatus", "users", "dateAdded", "dateUpdated",
                        "assignedResources")


def bad(*messages: str) -> HighLevelError:
    return HighLevelError(400, ", ".join(messages))


def _location(value: Any) -> None:
    if value in (None, ""):
        raise bad("locationId should not be empty")
    if value != LOCATION_ID:
        raise HighLevelError(403, NO_ACCESS)


def _time(value: Any, name: str) -> str:
    try:
        return iso(parse_ts(value))
    except (TypeError, ValueError):
        raise bad(f"{name} must be a valid ISO 8601 date string") from None


def _strings(body: dict[str, Any], names: Iterable[str]) -> None:
    wrong = [f"{n} must be a string" for n in names
             if n in body and not isinstance(body[n], str)]
    if wrong:
        raise bad(*wrong)


def get_calendar(store: Store, calendar_id: str) -> dict[str, Any]:
    doc = store.get(SOURCE, "calendars", calendar_id)
    if doc is None:
        raise bad(f"Calendar not found: {calendar_id}")
    return doc


def get_appointment(store: Store, event_id: str) -> dict[str, Any]:
    doc = store.get(SOURCE, "appointments", event_id)
    if doc is None:
        raise bad(f"Appointment not found: {event_id}")
    return doc


# -- calendars ----------------------------------------------------------------------------------
async def list_calendars(store: Store, request: Request) -> Response:
    params = query_params(request, ("locationId", "groupId", "showDrafted"))
    _location(params.get("locationId"))
    rows = [r.doc for r in store.select(SOURCE, "calendars")]
    if params.get("groupId"):
        rows = [d for d in rows if d.get("groupId") == params["groupId"]]
    if params.get("showDrafted") == "false":
        rows = [d for d in rows if d.get("isActive", True)]
    return JSONResponse({"calendars": rows})


async def create_calendar(store: Store, request: Request) -> Response:
    body = await json_body(request, CALENDAR_FIELDS)
    _location(body.get("locationId"))
    if not (isinstance(body.get("name"), str) and body["name"].strip()):
        raise bad("name should not be empty")
    _strings(body, ("name", "description", "slug", "groupId", "calendarType", "eventTitle"))
    now_iso(store)   # every write moves the clock
    doc = {"id": records.next_highlevel_id(store, "calendars"), "isActive": True, **body}
    records.save(store, SOURCE, "calendars", doc)
    return JSONResponse({"calendar": doc})


async def read_calendar(store: Store, request: Request) -> Response:
    return JSONResponse({"calendar": get_calendar(store, request.path_params["calendarId"])})


async def delete_calendar(store: Store, request: Request) -> Response:
    calendar_id = request.path_params["calendarId"]
    get_calendar(store, calendar_id)
    at = now_iso(store)
    with store.transaction():
        store.delete(SOURCE, "calendars", calendar_id, at=at)
        for row in store.select(SOURCE, "appointments",
                                "json_extract(doc, '$.calendarId') = ?", (calendar_id,)):
            store.delete(SOURCE, "appointments", row.id, at=at)
    return JSONResponse({"success": True})


# -- appointments -------------------------------------------------------------------------------
async def list_events(store: Store, request: Request) -> Response:
    p = query_params(request, EVENTS_PARAMS)
    _location(p.get("locationId"))
    missing = [f"{n} should not be empty" for n in ("startTime", "endTime") if not p.get(n)]
    if missing:
        raise bad(*missing)
    if not any(p.get(n) for n in ("calendarId", "userId", "groupId")):
        raise bad("Either of calendarId, userId or groupId is required")
    lo, hi = from_millis(p["startTime"], "startTime"), from_millis(p["endTime"], "endTime")
    where, args = ["json_extract(doc, '$.startTime') >= ?",
                   "json_extract(doc, '$.startTime') <= ?"], [lo, hi]
    for name in ("calendarId", "groupId"):
        if p.get(name):
            where.append(f"json_extract(doc, '$.{name}') = ?")
            args.append(p[name])
    rows = [r.doc for r in store.select(SOURCE, "appointments", " AND ".join(where), args,
                                        order="json_extract(doc, '$.startTime'), id")]
    if p.get("userId"):
        rows = [d for d in rows if p["userId"] == d.get("assignedUserId")
                or p["userId"] in (d.get("users") or [])]
    return JSONResponse({"events": rows})


def _checked(store: Store, body: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The appointment after a create or edit body: types, status, calendar and times."""
    _strings(body, ("title", "assignedUserId", "description", "address", "calendarId",
                    "startTime", "endTime", "meetingLocationType", "meetingLocationId",
                    "rrule"))
    if "appointmentStatus" in body and body["appointmentStatus"] not in STATUSES:
        raise bad(f"appointmentStatus must be one of the following values: {', '.join(STATUSES)}")
    calendar = get_calendar(store, body.get("calendarId") or doc.get("calendarId") or "")
    out = {**doc, **{k: body[k] for k in STORED if k in body}}
    start = _time(out.get("startTime"), "startTime")
    if "endTime" in body or "endTime" not in doc:
        end = (_time(body["endTime"], "endTime") if body.get("endTime") else
               iso(parse_ts(start) + timedelta(minutes=calendar.get("slotDuration") or 30)))
    else:   # moved without an end: the same length
        end = iso(parse_ts(start) + (parse_ts(doc["endTime"]) - parse_ts(doc["startTime"])))
    if end < start:
        raise bad("endTime must be after startTime")
    out.update(startTime=start, endTime=end, groupId=calendar.get("groupId") or "")
    return out


async def create_appointment(store: Store, request: Request) -> Response:
    body = await json_body(request, CREATE_FIELDS)
    missing = [f"{n} should not be empty" for n in ("calendarId", "locationId", "contactId",
                                                    "startTime") if not body.get(n)]
    if missing:
        raise bad(*missing)
    _location(body["locationId"])
    contact = get_contact(store, body["contactId"])
    calendar = get_calendar(store, body["calendarId"])
    team = [m.get("userId") for m in calendar.get("teamMembers") or [] if m.get("userId")]
    user = body.get("assignedUserId") or (team[0] if team else "")
    stamp = now_iso(store)
    doc = _checked(store, body, {
        "id": records.next_highlevel_id(store, "appointments"), "calendarId": calendar["id"],
        "locationId": LOCATION_ID, "contactId": contact["id"],
        "title": calendar.get("name") or "Appointment",
        "appointmentStatus": "confirmed" if calendar.get("autoConfirm", True) else "new",
        "assignedUserId": user, "users": [user] if user else [], "dateAdded": stamp})
    doc["dateUpdated"] = stamp
    records.save(store, SOURCE, "appointments", doc)
    return JSONResponse(doc)


async def read_appointment(store: Store, request: Request) -> Response:
    return JSONResponse({"event": get_appointment(store, request.path_params["eventId"])})


async def update_appointment(store: Store, request: Request) -> Response:
    doc = get_appointment(store, request.path_params["eventId"])
    body = await json_body(request, EDIT_FIELDS)
    out = _checked(store, body, doc)
    if "assignedUserId" in body:
        out["users"] = [body["assignedUserId"]]
    if out != doc:
        out["dateUpdated"] = now_iso(store)
        records.save(store, SOURCE, "appointments", out)
    return JSONResponse(out)


async def delete_event(store: Store, request: Request) -> Response:
    await json_body(request, ())   # DeleteAppointmentSchema: an empty object
    doc = get_appointment(store, request.path_params["eventId"])
    store.delete(SOURCE, "appointments", doc["id"], at=now_iso(store))
    return JSONResponse({"succeeded": True}, status_code=201)


async def contact_appointments(store: Store, request: Request) -> Response:
    contact_id = request.path_params["contactId"]
    get_contact(store, contact_id)
    rows = store.select(SOURCE, "appointments", "parent = ?", (contact_id,),
                        order="json_extract(doc, '$.startTime'), id")
    return JSONResponse({"events": [
        {**{k: r.doc[k] for k in CONTACT_EVENT_FIELDS if k in r.doc},
         "status": r.doc.get("appointmentStatus")} for r in rows]})


def _bad_requests(handler: Handler) -> Handler:
    """calendars.json documents 400 for every bad request of these operations: the shared
    parsers' 422s (unknown properties, epoch milliseconds) come out as 400s."""
    async def run(store: Store, request: Request) -> Response:
        try:
            return await handler(store, request)
        except HighLevelError as e:
            if e.status != 422:
                raise
            raise bad(*([e.message] if isinstance(e.message, str) else e.message)) from None
    return run


def calendar_routes(store: Store) -> list:
    # the fixed paths before /calendars/{calendarId}, which would take "events" for an id
    return routes(store, [(path, _bad_requests(handler), methods) for path, handler, methods in [
        ("/calendars/events", list_events, ["GET"]),
        ("/calendars/events/appointments", create_appointment, ["POST"]),
        ("/calendars/events/appointments/{eventId}", read_appointment, ["GET"]),
        ("/calendars/events/appointments/{eventId}", update_appointment, ["PUT"]),
        ("/calendars/events/{eventId}", delete_event, ["DELETE"]),
        ("/calendars/", list_calendars, ["GET"]),
        ("/calendars/", create_calendar, ["POST"]),
        ("/calendars/{calendarId}", read_calendar, ["GET"]),
        ("/calendars/{calendarId}", delete_calendar, ["DELETE"]),
        ("/contacts/{contactId}/appointments", contact_appointments, ["GET"]),
    ]])
