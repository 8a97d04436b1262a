"""HighLevel calendars and appointments (interview schedules) in the world: the calendars a
generated world has, the appointments it starts with, and the daily life that books, reschedules,
cancels, marks and deletes them.

Everything here draws from its own random streams (`<seed>/chunk/<c>/highlevel-appointments`,
`<seed>/<day>/highlevel-appointments`) and its own HighLevel id blocks (ID_BASE), so a world's
other records are the same as before calendars existed: same seed, same days, same records.

A calendar is configuration (CalendarDTO: name, type, slot duration, team members); it has no
time of its own. An appointment (CalendarEventDTO) belongs to a calendar and a contact, carries
`startTime` / `endTime` (event time) and `dateAdded` / `dateUpdated`; its status is one of
HighLevel's `appointmentStatus` values (confirmed, cancelled, showed, noshow here). Some
appointment notes quote the person's email (what an erasure must reach).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sandbox.credentials import HIGHLEVEL_LOCATION_ID
from sandbox.records import highlevel_id
from sandbox.store import Store
from sandbox.world.clock import iso, midnight
from sandbox.world.crm import HL_USER_IDS
from sandbox.world.day import Day, play_stream

# HighLevel id blocks of generated calendars and appointments (API-created ones continue above)
ID_BASE = {"calendars": 8 * 10 ** 12, "appointments": 9 * 10 ** 12}
GROUP_ID = highlevel_id(ID_BASE["calendars"])          # the calendars' group ("Interviews")
PER_CANDIDATE = 4              # id room per candidate of a chunk (its contact's appointments)
APPOINTMENT_FRACTION = 0.3     # HighLevel contacts with appointments
MAX_APPOINTMENTS = 3
QUOTE_FRACTION = 0.15          # appointment notes quoting the contact's email
AHEAD_DAYS = 21                # a booking is for the next weeks
UPCOMING_FRACTION = 0.4       # contacts whose latest appointment was booked in the last days
UNMARKED_DAYS = 7              # half the past week's appointments are not marked showed yet
# (name, minutes, meeting location type of the calendar)
CALENDARS = (("Phone screen", 30, "phone"), ("Technical interview", 60, "gmeet"),
             ("Onsite interview", 120, "address"))
ADDRESSES = {"phone": "+1 555 0100", "gmeet": "https://meet.google.com/tlv-intv-rvw",
             "address": "500 Market St, San Francisco"}
NOTES = ("Candidate asked for a morning slot.", "Bring the portfolio.",
         "Panel: hiring manager and a senior engineer.", "Rescheduled once already.")

# daily life, per candidate of the world's size per day (weekends: a third of that); each kind
# happens at least once a day when there is something to act on, as the other events
RATES = {"highlevel_appointments_booked": 0.003, "highlevel_appointments_rescheduled": 0.001,
         "highlevel_appointments_cancelled": 0.0006, "highlevel_appointments_marked": 0.002,
         "highlevel_appointments_deleted": 0.0002}
WEEKEND_FACTOR = 0.3


def calendar_ids() -> list[str]:
    return [highlevel_id(ID_BASE["calendars"] + 1 + k) for k in range(len(CALENDARS))]


def calendar_docs() -> list[tuple[dict[str, Any], int]]:
    """The world's calendars with their id counter values (fixed: no randomness)."""
    out = []
    for k, (name, minutes, kind) in enumerate(CALENDARS):
        n = ID_BASE["calendars"] + 1 + k
        slug = name.lower().replace(" ", "-")
        out.append(({
            "id": highlevel_id(n), "locationId": HIGHLEVEL_LOCATION_ID, "groupId": GROUP_ID,
            "name": name, "description": f"{name} with a recruiter ({minutes} min)",
            "slug": slug, "widgetSlug": slug, "calendarType": "round_robin",
            "eventType": "RoundRobin_OptimizeForAvailability", "widgetType": "default",
            "eventTitle": "{{contact.name}} - " + name, "eventColor": "#039be5",
            "teamMembers": [{"userId": u, "priority": 0.5} for u in HL_USER_IDS[:3]],
            "locationConfigurations": [{"kind": "custom", "location": ADDRESSES[kind]}],
            "slotDuration": minutes, "slotDurationUnit": "mins", "slotInterval": 30,
            "slotIntervalUnit": "mins", "appoinmentPerSlot": 1, "allowReschedule": True,
            "allowCancellation": True, "autoConfirm": True, "isActive": True,
            "openHours": [{"daysOfTheWeek": [1, 2, 3, 4, 5],
                           "hours": [{"openHour": 9, "openMinute": 0, "closeHour": 17,
                                      "closeMinute": 0}]}],
        }, n))
    return out


def _slot(rng: random.Random, day: datetime) -> datetime:
    """A working-hours start on that day (UTC 14:00-21:30, on the half hour)."""
    return midnight(day) + timedelta(hours=14, minutes=30 * rng.randint(0, 15))


def appointment_doc(rng: random.Random, aid: str, contact: dict[str, Any], start: datetime,
                    at: datetime, status: str) -> dict[str, Any]:
    k = rng.randrange(len(CALENDARS))
    name, minutes, kind = CALENDARS[k]
    first = contact.get("firstName") or "the candidate"
    notes = rng.choice(NOTES)
    if contact.get("email") and rng.random() < QUOTE_FRACTION:
        notes = f"Send the invite to {contact['email']}."
    user = rng.choice(HL_USER_IDS)
    return {"id": aid, "calendarId": calendar_ids()[k], "locationId": HIGHLEVEL_LOCATION_ID,
            "contactId": contact["id"], "groupId": GROUP_ID, "title": f"{name} with {first}",
            "appointmentStatus": status, "assignedUserId": user, "users": [user],
            "address": ADDRESSES[kind], "notes": notes, "startTime": iso(start),
            "endTime": iso(start + timedelta(minutes=minutes)), "dateAdded": iso(at),
            "dateUpdated": iso(at)}


def generated(rng: random.Random, take: Any, contact: dict[str, Any], created: datetime,
              start: datetime) -> list[tuple[dict[str, Any], int]]:
    """A generated contact's appointments: (doc, id counter value) each. Past ones were shown
    up to, missed or cancelled (half of the last week's are not marked yet); a few lie ahead of
    the world's start, confirmed."""
    if rng.random() >= APPOINTMENT_FRACTION:
        return []
    out = []
    count = rng.randint(1, MAX_APPOINTMENTS)
    for k in range(count):
        booked = created + (start - created) * rng.random()
        if k == count - 1 and rng.random() < UPCOMING_FRACTION:   # the next step is booked
            booked = max(created, start - timedelta(days=rng.uniform(0.1, 5)))
        when = _slot(rng, booked + timedelta(days=rng.randint(1, AHEAD_DAYS)))
        if when >= start or (when > start - timedelta(days=UNMARKED_DAYS)
                             and rng.random() < 0.5):
            status = "confirmed"   # ahead, or not marked yet
        else:
            status = rng.choices(("showed", "noshow", "cancelled"), (6, 2, 2))[0]
        n = take("highlevel:appointments")
        doc = appointment_doc(rng, highlevel_id(n), contact, when, booked, status)
        if status != "confirmed":   # marked after the event (or cancelled before it)
            marked_at = (booked + (when - booked) / 2 if status == "cancelled"
                         else min(when + timedelta(hours=2), start - timedelta(minutes=1)))
            doc["dateUpdated"] = iso(max(booked, marked_at))
        out.append((doc, n))
    return out


# -- daily life ---------------------------------------------------------------------------------
def _touch(day: Day, doc: dict[str, Any]) -> None:
    doc["dateUpdated"] = iso(day.stamp())
    day.save("highlevel", "appointments", doc)


def booked(day: Day) -> bool:
    picked = day.pick("highlevel", "contacts")
    if picked is None:
        return False
    when = _slot(day.rng, day.at + timedelta(days=day.rng.randint(1, AHEAD_DAYS)))
    doc = appointment_doc(day.rng, day.hl_id("appointments"), picked.doc, when,
                          day.stamp(), "confirmed")
    day.save("highlevel", "appointments", doc)
    return True


def _upcoming(day: Day) -> Any:
    return day.pick("highlevel", "appointments",
                    "json_extract(doc, '$.appointmentStatus') = 'confirmed' "
                    "AND json_extract(doc, '$.startTime') > ?", (iso(day.at),))


def rescheduled(day: Day) -> bool:
    picked = _upcoming(day)
    if picked is None:
        return False
    doc = picked.doc
    length = datetime.fromisoformat(doc["endTime"]) - datetime.fromisoformat(doc["startTime"])
    when = _slot(day.rng, day.at + timedelta(days=day.rng.randint(1, AHEAD_DAYS)))
    doc["startTime"], doc["endTime"] = iso(when), iso(when + length)
    _touch(day, doc)
    return True


def cancelled(day: Day) -> bool:
    picked = _upcoming(day)
    if picked is None:
        return False
    picked.doc["appointmentStatus"] = "cancelled"
    _touch(day, picked.doc)
    return True


def marked(day: Day) -> bool:
    """A confirmed appointment that took place is marked showed or no-show."""
    picked = day.pick("highlevel", "appointments",
                      "json_extract(doc, '$.appointmentStatus') = 'confirmed' "
                      "AND json_extract(doc, '$.startTime') < ?", (iso(day.at),))
    if picked is None:
        return False
    picked.doc["appointmentStatus"] = day.rng.choices(("showed", "noshow"), (4, 1))[0]
    _touch(day, picked.doc)
    return True


def deleted(day: Day) -> bool:
    picked = day.pick("highlevel", "appointments")
    return picked is not None and day.delete("highlevel", "appointments", picked.id)


EVENTS = {"highlevel_appointments_booked": booked,
          "highlevel_appointments_rescheduled": rescheduled,
          "highlevel_appointments_cancelled": cancelled,
          "highlevel_appointments_marked": marked,
          "highlevel_appointments_deleted": deleted}


def play_day(store: Store, day: datetime, seed: int, size: int) -> Counter[str]:
    """The day's appointment changes, on their own random stream."""
    rng = random.Random(f"{seed}/{day.date().isoformat()}/highlevel-appointments")
    return play_stream(store, day, rng, size, RATES, EVENTS, WEEKEND_FACTOR)
