"""HighLevel contact notes and tasks in the world: the ones a generated world starts with, and the
daily life that adds, edits, completes and deletes them.

Both draw from their own random streams and id counters (`<seed>/chunk/<c>/highlevel-notes`,
`<seed>/<day>/highlevel-notes`; ids in their own HighLevel id blocks), so a world's other
records are the same as before notes existed: same seed, same contacts, candidates and events.

What recruiters write: call summaries, interview feedback, reminders; some bodies quote the
person's email address or phone number (what an erasure must reach), a few carry emoji or
non-Latin text. Tasks have a title, a body, a due date, an assignee and a completed flag and no
time of their own (HighLevel's TaskSchema); notes carry `dateAdded` (an edit keeps it).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sandbox.records import highlevel_id
from sandbox.store import Store
from sandbox.world.clock import iso
from sandbox.world.crm import HL_USER_IDS
from sandbox.world.day import Day, deleted, play_stream

# HighLevel id blocks of generated notes and tasks (API-created ones continue above them)
ID_BASE = {"notes": 6 * 10 ** 12, "tasks": 7 * 10 ** 12}
PER_CANDIDATE = 8              # id room per candidate of a chunk (its contacts' notes or tasks)
NOTE_FRACTION = 0.35           # contacts with notes
TASK_FRACTION = 0.2            # contacts with tasks
MAX_NOTES = 3
MAX_TASKS = 2
QUOTE_FRACTION = 0.15          # notes quoting the contact's email or phone

NOTE_BODIES = (
    "Called {first}, left a voicemail.",
    "Spoke with {first}: interested in the {role} role, available from next month.",
    "Interview feedback: strong communication, needs a second technical round.",
    "{first} asked to be contacted after the holidays.",
    "Sent the job description and the benefits overview.",
    "Not a fit for this opening, keep for future roles.",
    "Great call 🎉 {first} will send references tomorrow.",
    "候选人对远程工作很感兴趣。",
)
QUOTES = ("{first} prefers email: {email}", "Best number to reach {first}: {phone}",
          "Follow up at {email} or {phone}.")
TASK_TITLES = ("Follow up with {first}", "Schedule phone screen", "Send offer details",
               "Check references", "Ask {first} for availability")

# daily life, per candidate of the world's size per day (weekends: a third of that); each kind
# happens at least once a day when there is something to act on, as the other events
RATES = {"highlevel_notes_added": 0.004, "highlevel_notes_edited": 0.0005,
         "highlevel_notes_deleted": 0.0002, "highlevel_tasks_added": 0.002,
         "highlevel_tasks_completed": 0.0015, "highlevel_tasks_deleted": 0.0002}
WEEKEND_FACTOR = 0.3


def person_vars(contact: dict[str, Any], role: str | None = None) -> dict[str, str]:
    return {"first": contact.get("firstName") or "the candidate",
            "email": contact.get("email") or "no email on file",
            "phone": contact.get("phone") or "no phone on file",
            "role": role or "open"}


def note_body(rng: random.Random, contact: dict[str, Any], role: str | None = None) -> str:
    template = rng.choice(QUOTES if rng.random() < QUOTE_FRACTION else NOTE_BODIES)
    return template.format(**person_vars(contact, role))


def note_doc(nid: str, contact: dict[str, Any], body: str, user: str, at: datetime
             ) -> dict[str, Any]:
    return {"id": nid, "contactId": contact["id"], "body": body, "userId": user,
            "dateAdded": iso(at)}


def task_doc(rng: random.Random, tid: str, contact: dict[str, Any], at: datetime,
             done: bool) -> dict[str, Any]:
    v = person_vars(contact)
    return {"id": tid, "contactId": contact["id"], "title": rng.choice(TASK_TITLES).format(**v),
            "body": f"Re: {v['first']}", "assignedTo": rng.choice(HL_USER_IDS),
            "dueDate": iso(at + timedelta(days=rng.randint(1, 14), hours=rng.randint(0, 8))),
            "completed": done}


def generated(rng: random.Random, take: Any, contact: dict[str, Any], created: datetime,
              start: datetime, role: str | None) -> list[tuple[str, dict[str, Any], int]]:
    """A generated contact's notes and tasks: (entity, doc, id counter value) each. `take`
    allocates counter values per entity ("highlevel:notes" / "highlevel:tasks")."""
    out = []
    if rng.random() < NOTE_FRACTION:
        times = sorted(created + (start - created) * rng.random()
                       for _ in range(rng.randint(1, MAX_NOTES)))
        for at in times:
            n = take("highlevel:notes")
            out.append(("notes", note_doc(highlevel_id(n), contact, note_body(rng, contact, role),
                                          rng.choice(HL_USER_IDS), at), n))
    if rng.random() < TASK_FRACTION:
        for _ in range(rng.randint(1, MAX_TASKS)):
            at = created + (start - created) * rng.random()
            n = take("highlevel:tasks")
            done = at + timedelta(days=14) < start and rng.random() < 0.7
            out.append(("tasks", task_doc(rng, highlevel_id(n), contact, at, done), n))
    return out


# -- daily life ---------------------------------------------------------------------------------
def _contact(day: Day) -> dict[str, Any] | None:
    picked = day.pick("highlevel", "contacts")
    return picked.doc if picked else None


def note_added(day: Day) -> bool:
    contact = _contact(day)
    if contact is None:
        return False
    doc = note_doc(day.hl_id("notes"), contact, note_body(day.rng, contact),
                   day.rng.choice(HL_USER_IDS), day.at)
    day.save("highlevel", "notes", doc)
    return True


def note_edited(day: Day) -> bool:
    picked = day.pick("highlevel", "notes")
    if picked is None:
        return False
    picked.doc["body"] = f"{picked.doc.get('body', '')} Update: {day.rng.choice(NOTE_BODIES)}"
    day.save("highlevel", "notes", picked.doc)   # dateAdded stays: HighLevel keeps it on edit
    return True


def task_added(day: Day) -> bool:
    contact = _contact(day)
    if contact is None:
        return False
    day.save("highlevel", "tasks", task_doc(day.rng, day.hl_id("tasks"), contact, day.at, False))
    return True


def task_completed(day: Day) -> bool:
    picked = day.pick("highlevel", "tasks", "json_extract(doc, '$.completed') = 0")
    if picked is None:
        return False
    picked.doc["completed"] = True
    day.save("highlevel", "tasks", picked.doc)
    return True


EVENTS = {"highlevel_notes_added": note_added, "highlevel_notes_edited": note_edited,
          "highlevel_notes_deleted": deleted("highlevel", "notes"),
          "highlevel_tasks_added": task_added,
          "highlevel_tasks_completed": task_completed,
          "highlevel_tasks_deleted": deleted("highlevel", "tasks")}


def play_day(store: Store, day: datetime, seed: int, size: int) -> Counter[str]:
    """The day's notes and tasks, on their own random stream (the caller holds the day's
    transaction and moves the clock after)."""
    rng = random.Random(f"{seed}/{day.date().isoformat()}/highlevel-notes")
    return play_stream(store, day, rng, size, RATES, EVENTS, WEEKEND_FACTOR)
