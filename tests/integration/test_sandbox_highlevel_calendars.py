"""The emulated HighLevel calendars and appointments (issue 17: the sandbox first, with contract
tests), over a real socket: every reply checked against specs/highlevel/calendars.json (and
contacts.json for a contact's appointments); calendars created, read, listed and deleted (their
appointments with them); appointments booked, read, rescheduled, cancelled and deleted; the events
listing's window and required parameters; `Version: 2021-04-15` on /calendars; 400s in
HighLevel's shape for what the spec documents as bad requests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sandbox import credentials
from tests.conftest import Sandbox
from tests.integration.contract import assert_openapi_conforms, openapi_violations
from tests.integration.test_sandbox_highlevel import (
    BAD_REQUEST,
    CONTACTS_SPEC,
    LOCATION,
    UNAUTHORIZED,
    reply_schema,
)

CALENDARS_SPEC = Path(__file__).resolve().parents[2] / "specs" / "highlevel" / "calendars.json"
HEADERS = {"Authorization": f"Bearer {credentials.HIGHLEVEL_TOKEN}", "Version": "2021-04-15"}
CONTACTS_HEADERS = {**HEADERS, "Version": "2021-07-28"}
# CalendarEventDTO declares these `type: object` while its examples (and HighLevel's replies)
# are ISO-8601 strings: a defect of the spec, checked here as strings instead
SPEC_TIME_OBJECTS = ("startTime", "endTime", "dateAdded", "dateUpdated")
EVENT = "/calendars/events/appointments/{eventId}"


def ms(text: str) -> str:
    return str(int(datetime.fromisoformat(text).timestamp() * 1000))


@pytest.fixture
def hl(sandbox: Sandbox):
    with httpx.Client(base_url=sandbox.url("/highlevel"), headers=HEADERS, timeout=30) as client:
        yield client


def conforms(r: httpx.Response, path: str, method: str, status: int) -> dict:
    assert r.status_code == status, r.text
    problems = [p for p in openapi_violations(r.json(), CALENDARS_SPEC,
                                              reply_schema(path, method, status))
                if not (p.split(":")[0].split("/")[-1] in SPEC_TIME_OBJECTS
                        and "is not of type 'object'" in p)]
    assert not problems, f"{method} {path} breaks its schema:\n  " + "\n  ".join(problems)
    return r.json()


def is_bad_request(r: httpx.Response, text: str) -> None:
    assert r.status_code == 400, r.text
    assert_openapi_conforms(r.json(), CONTACTS_SPEC, BAD_REQUEST, "400 body")
    assert text in r.json()["message"], r.json()


def times_are_iso(event: dict) -> None:
    for name in SPEC_TIME_OBJECTS:
        assert datetime.fromisoformat(event[name]).tzinfo is not None, (name, event[name])


def new_contact(hl: httpx.Client, email: str) -> str:
    r = hl.post("/contacts/", headers=CONTACTS_HEADERS,
                json={"locationId": LOCATION, "firstName": "Ada", "email": email})
    assert r.status_code == 201, r.text
    return r.json()["contact"]["id"]


def new_calendar(hl: httpx.Client, name: str = "Phone screen") -> dict:
    return conforms(hl.post("/calendars/", json={
        "locationId": LOCATION, "name": name, "slotDuration": 30, "autoConfirm": True,
        "teamMembers": [{"userId": "RecruiterUser0000001", "priority": 0.5}]}),
        "/calendars/", "post", 200)["calendar"]


def book(hl: httpx.Client, calendar: str, contact: str, start: str, **more) -> dict:
    return conforms(hl.post("/calendars/events/appointments", json={
        "calendarId": calendar, "locationId": LOCATION, "contactId": contact,
        "startTime": start, **more}), "/calendars/events/appointments", "post", 200)


def test_calendars_are_created_listed_read_and_deleted_with_their_appointments(
        sandbox: Sandbox, hl: httpx.Client) -> None:
    screen, onsite = new_calendar(hl), new_calendar(hl, "Onsite interview")
    assert screen["locationId"] == LOCATION and screen["name"] == "Phone screen"
    listed = conforms(hl.get("/calendars/", params={"locationId": LOCATION}), "/calendars/",
                      "get", 200)["calendars"]
    assert [c["id"] for c in listed] == [screen["id"], onsite["id"]]
    read = conforms(hl.get(f"/calendars/{screen['id']}"), "/calendars/{calendarId}", "get", 200)
    assert read["calendar"] == screen
    contact = new_contact(hl, "cal-a@example.com")
    kept = book(hl, onsite["id"], contact, "2026-02-02T15:00:00Z")
    gone = book(hl, screen["id"], contact, "2026-02-03T15:00:00Z")
    assert conforms(hl.delete(f"/calendars/{screen['id']}"), "/calendars/{calendarId}",
                    "delete", 200) == {"success": True}
    is_bad_request(hl.get(f"/calendars/{screen['id']}"), "Calendar not found")
    assert [c["id"] for c in hl.get("/calendars/", params={"locationId": LOCATION}).json()[
        "calendars"]] == [onsite["id"]]
    # HighLevel does not say; the sandbox deletes a deleted calendar's appointments with it
    assert {t["id"] for t in sandbox.admin("GET", "/tombstones/highlevel/appointments")} == {
        gone["id"]}
    assert hl.get(EVENT.format(eventId=kept["id"])).status_code == 200


def test_appointments_are_booked_read_moved_cancelled_and_deleted(hl: httpx.Client) -> None:
    cal = new_calendar(hl)
    contact = new_contact(hl, "cal-b@example.com")
    made = book(hl, cal["id"], contact, "2026-02-02T15:00:00+01:00", title="Phone screen")
    assert (made["calendarId"], made["contactId"], made["appointmentStatus"]) == (
        cal["id"], contact, "confirmed")
    assert made["startTime"] == "2026-02-02T14:00:00.000Z"
    assert made["endTime"] == "2026-02-02T14:30:00.000Z"    # the calendar's slot duration
    read = conforms(hl.get(EVENT.format(eventId=made["id"])), EVENT, "get", 200)["event"]
    times_are_iso(read)
    assert read["dateAdded"] == read["dateUpdated"] and read["users"] == [read["assignedUserId"]]
    moved = conforms(hl.put(EVENT.format(eventId=made["id"]),
                            json={"startTime": "2026-02-04T16:00:00Z"}), EVENT, "put", 200)
    assert (moved["startTime"], moved["endTime"]) == ("2026-02-04T16:00:00.000Z",
                                                      "2026-02-04T16:30:00.000Z")
    assert moved["dateUpdated"] > read["dateUpdated"] and moved["dateAdded"] == read["dateAdded"]
    cancelled = conforms(hl.put(EVENT.format(eventId=made["id"]),
                                json={"appointmentStatus": "cancelled"}), EVENT, "put", 200)
    assert cancelled["appointmentStatus"] == "cancelled"
    # a contact's appointments (contacts.json), with the older `status` beside the new field
    r = hl.get(f"/contacts/{contact}/appointments", headers=CONTACTS_HEADERS)
    assert r.status_code == 200
    assert_openapi_conforms(r.json(), CONTACTS_SPEC, reply_schema(
        "/contacts/{contactId}/appointments", "get", 200))
    [listed] = r.json()["events"]
    assert (listed["id"], listed["status"], listed["startTime"]) == (
        made["id"], "cancelled", "2026-02-04T16:00:00.000Z")
    delete = hl.request("DELETE", f"/calendars/events/{made['id']}", json={})
    assert conforms(delete, "/calendars/events/{eventId}", "delete", 201) == {"succeeded": True}
    is_bad_request(hl.get(EVENT.format(eventId=made["id"])), "Appointment not found")
    assert hl.get(f"/contacts/{contact}/appointments",
                  headers=CONTACTS_HEADERS).json() == {"events": []}


def test_the_events_listing_is_a_window_of_start_times(hl: httpx.Client) -> None:
    a, b = new_calendar(hl), new_calendar(hl, "Onsite interview")
    contact = new_contact(hl, "cal-c@example.com")
    early = book(hl, a["id"], contact, "2026-02-02T15:00:00Z",
                 assignedUserId="UserAAAAAAAAAAAAAAAA")
    late = book(hl, a["id"], contact, "2026-02-09T15:00:00Z")
    other = book(hl, b["id"], contact, "2026-02-03T15:00:00Z")
    base = {"locationId": LOCATION}

    def events(**params) -> list[str]:
        body = conforms(hl.get("/calendars/events", params={**base, **params}),
                        "/calendars/events", "get", 200)
        for e in body["events"]:
            times_are_iso(e)
        return [e["id"] for e in body["events"]]

    week = {"startTime": ms("2026-02-02T00:00:00+00:00"),
            "endTime": ms("2026-02-08T23:59:59.999+00:00")}
    assert events(calendarId=a["id"], **week) == [early["id"]]
    assert events(calendarId=b["id"], **week) == [other["id"]]
    assert events(groupId="", userId="UserAAAAAAAAAAAAAAAA", **week) == [early["id"]]
    # both ends inclusive
    assert events(calendarId=a["id"], startTime=ms("2026-02-09T15:00:00+00:00"),
                  endTime=ms("2026-02-09T15:00:00+00:00")) == [late["id"]]


def test_missing_or_bad_parameters_are_400s(hl: httpx.Client) -> None:
    cal = new_calendar(hl)
    contact = new_contact(hl, "cal-d@example.com")
    window = {"locationId": LOCATION, "calendarId": cal["id"],
              "startTime": "1770000000000", "endTime": "1771000000000"}
    for params, text in (
            ({k: v for k, v in window.items() if k != "startTime"}, "startTime should not be"),
            ({k: v for k, v in window.items() if k != "endTime"}, "endTime should not be"),
            ({k: v for k, v in window.items() if k != "calendarId"},
             "Either of calendarId, userId or groupId is required"),
            ({k: v for k, v in window.items() if k != "locationId"}, "locationId should not"),
            ({**window, "startTime": "yesterday"}, "startTime must be a number"),
            ({**window, "limit": "5"}, "property limit should not exist")):
        is_bad_request(hl.get("/calendars/events", params=params), text)
    is_bad_request(hl.get("/calendars/", params={}), "locationId should not be empty")
    is_bad_request(hl.post("/calendars/", json={"locationId": LOCATION}), "name should not")
    booking = {"calendarId": cal["id"], "locationId": LOCATION, "contactId": contact,
               "startTime": "2026-02-02T15:00:00Z"}
    for body, text in (
            ({k: v for k, v in booking.items() if k != "startTime"}, "startTime should not"),
            ({k: v for k, v in booking.items() if k != "contactId"}, "contactId should not"),
            ({**booking, "appointmentStatus": "booked"}, "appointmentStatus must be one of"),
            ({**booking, "startTime": "soon"}, "startTime must be a valid ISO 8601"),
            ({**booking, "calendarId": "NoSuchCalendar000000"}, "Calendar not found"),
            ({**booking, "colour": "red"}, "property colour should not exist")):
        is_bad_request(hl.post("/calendars/events/appointments", json=body), text)
    made = book(hl, cal["id"], contact, "2026-02-02T15:00:00Z")
    # the contact is not editable; an unknown appointment is a 400
    is_bad_request(hl.put(EVENT.format(eventId=made["id"]), json={"contactId": contact}),
                   "property contactId should not exist")
    is_bad_request(hl.get(EVENT.format(eventId="NoSuchEvent000000000")), "Appointment not found")
    is_bad_request(hl.get("/contacts/NoSuchContact000000/appointments",
                          headers=CONTACTS_HEADERS), "")


def test_calendars_want_their_own_api_version(hl: httpx.Client) -> None:
    r = hl.get("/calendars/", params={"locationId": LOCATION},
               headers={"Version": "2021-07-28"})
    assert r.status_code == 401 and r.json()["message"] == "version header is invalid"
    assert_openapi_conforms(r.json(), CONTACTS_SPEC, UNAUTHORIZED, "401 body")
    assert hl.get("/calendars/", params={"locationId": LOCATION}).status_code == 200


def test_a_deleted_contact_takes_its_appointments(sandbox: Sandbox, hl: httpx.Client) -> None:
    cal = new_calendar(hl)
    contact = new_contact(hl, "cal-leaving@example.com")
    made = book(hl, cal["id"], contact, "2026-02-02T15:00:00Z")
    assert hl.delete(f"/contacts/{contact}", headers=CONTACTS_HEADERS).status_code == 200
    assert made["id"] in {t["id"] for t in
                          sandbox.admin("GET", "/tombstones/highlevel/appointments")}
    assert hl.get("/calendars/events", params={
        "locationId": LOCATION, "calendarId": cal["id"], "startTime": "0",
        "endTime": "4102444800000"}).json() == {"events": []}
