"""Keap notes, tasks, emails, opportunities and companies in the world: the ones a generated
world starts with, and the daily life that adds, edits, completes, moves and deletes them.

All of it draws from its own random streams and id blocks (`<seed>/chunk/<c>/keap-history`,
`<seed>/<day>/keap-history`, `<seed>/keap-companies`; ids in their own Keap id blocks), so a
world's other records are the same as before these existed: same seed, same contacts,
candidates and events.

Docs follow the Keap v2 schemas (specs/keap): `Note`, `Task`, `EmailSentWithContent` (the body
as the API returns it: base64 `plain_content` / `html_content`), `RestV2Opportunity` (the
contact summary as it was when the opportunity was last written), `Company`. Some note and
email bodies quote the contact's email address or phone number (what an erasure must reach).
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sandbox.keap.history import USERS, basic_user
from sandbox.store import Store
from sandbox.world.clock import iso
from sandbox.world.crm import KEAP_OWNER_IDS
from sandbox.world.day import Day, deleted, play_stream

# Keap id blocks of generated records (API-created ones continue above them); companies are a
# catalog with ids from 1
ID_BASE = {"notes": 2 * 10 ** 9, "tasks": 3 * 10 ** 9, "emails": 4 * 10 ** 9,
           "opportunities": 5 * 10 ** 9, "companies": 1}
ENTITIES = ("notes", "tasks", "emails", "opportunities")
PER_CANDIDATE = 10             # id room per candidate of a chunk (its contacts' records)
NOTE_FRACTION, MAX_NOTES = 0.4, 3
TASK_FRACTION, MAX_TASKS = 0.2, 2
EMAIL_FRACTION, MAX_EMAILS = 0.3, 3
OPPORTUNITY_FRACTION = 0.1
QUOTE_FRACTION = 0.15          # note and email bodies quoting the contact's email or phone
COMPANIES = ("Acme Staffing", "Northwind Traders", "Globex Recruiting", "Initech",
             "Umbrella Health", "Stark Logistics", "Wayne Analytics", "Hooli Talent")
STAGES = [("1", "New Lead", 10, 1), ("2", "Screening", 25, 2), ("3", "Interviewing", 50, 3),
          ("4", "Offer", 80, 4), ("5", "Placed", 100, 5)]
SENDER = "recruiting@sandbox-keap.example"

NOTE_TEXTS = (
    "Called {first}, left a voicemail.",
    "Spoke with {first}: interested in new roles, available from next month.",
    "Interview feedback: strong communication, needs a second technical round.",
    "{first} asked to be contacted after the holidays.",
    "Sent the job description and the benefits overview.",
    "Great call 🎉 {first} will send references tomorrow.",
    "Candidat très motivé, disponible immédiatement.",
)
QUOTES = ("{first} prefers email: {email}", "Best number to reach {first}: {phone}",
          "Follow up at {email} or {phone}.")
NOTE_TYPES = ("Call", "Email", "Appointment", "Other")
TASK_TITLES = ("Follow up with {first}", "Schedule phone screen", "Send offer details",
               "Check references")
SUBJECTS = ("Your application", "Next steps", "Interview invitation", "Thanks for your time")
EMAIL_TEXTS = ("Hi {first},\n\nthanks for your interest. We will be in touch shortly.",
               "Hi {first},\n\ncould you share your availability for a call next week?",
               "Hi {first},\n\nplease find the role description attached.")
EMAIL_QUOTES = ("Hi {first},\n\nwe will write to {email} with the details.",
                "Hi {first},\n\nwe tried to call you at {phone}; please call back.")

# daily life, per candidate of the world's size per day (weekends: a third of that); each kind
# happens at least once a day when there is something to act on
RATES = {"keap_notes_added": 0.004, "keap_notes_edited": 0.0008, "keap_notes_deleted": 0.0002,
         "keap_tasks_added": 0.002, "keap_tasks_completed": 0.0015,
         "keap_tasks_deleted": 0.0002, "keap_emails_logged": 0.003,
         "keap_emails_deleted": 0.0001, "keap_opportunities_added": 0.0005,
         "keap_opportunities_moved": 0.001, "keap_companies_edited": 0.0003}
WEEKEND_FACTOR = 0.3


def _vars(contact: dict[str, Any]) -> dict[str, str]:
    emails = [e.get("email") for e in contact.get("email_addresses") or [] if e.get("email")]
    phones = [p.get("number") for p in contact.get("phone_numbers") or [] if p.get("number")]
    return {"first": contact.get("given_name") or "there",
            "email": emails[0] if emails else "no email on file",
            "phone": phones[0] if phones else "no phone on file"}


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


# -- docs ---------------------------------------------------------------------------------------
def note_doc(rng: random.Random, nid: int, contact: dict[str, Any], at: datetime
             ) -> dict[str, Any]:
    text = rng.choice(QUOTES if rng.random() < QUOTE_FRACTION else NOTE_TEXTS)
    user = rng.choice(KEAP_OWNER_IDS)
    return {"id": str(nid), "title": rng.choice(("Phone screen", "Call summary", "Feedback")),
            "text": text.format(**_vars(contact)), "type": rng.choice(NOTE_TYPES),
            "contact_id": contact["id"], "assigned_to_user": basic_user(user),
            "create_time": iso(at), "update_time": iso(at), "created_by_user_id": user,
            "last_updated_by_user_id": user, "custom_fields": []}


def task_doc(rng: random.Random, tid: int, contact: dict[str, Any], at: datetime,
             done: bool) -> dict[str, Any]:
    v = _vars(contact)
    user = rng.choice(KEAP_OWNER_IDS)
    due = at + timedelta(days=rng.randint(1, 14), hours=rng.randint(0, 8))
    doc = {"id": str(tid), "title": rng.choice(TASK_TITLES).format(**v),
           "description": f"Re: {v['first']}", "type": rng.choice(("CALL", "EMAIL", "OTHER")),
           "priority": rng.choice(("CRITICAL", "ESSENTIAL", "NONESSENTIAL")),
           "completed": done, "create_time": iso(at), "modification_time": iso(at),
           "due_time": iso(due), "assigned_to_user_id": user, "created_by_user_id": user,
           "last_updated_by_user_id": user, "contact_id": contact["id"], "accepted": False,
           "custom_fields": []}
    if done:
        doc["completion_time"] = doc["modification_time"] = iso(min(due, at + timedelta(days=3)))
    return doc


def email_doc(rng: random.Random, eid: int, contact: dict[str, Any], at: datetime
              ) -> dict[str, Any]:
    v = _vars(contact)
    body = rng.choice(EMAIL_QUOTES if rng.random() < QUOTE_FRACTION else EMAIL_TEXTS)
    text = body.format(**v)
    doc = {"id": str(eid), "subject": rng.choice(SUBJECTS), "headers": "X-Mailer: Keap",
           "contact_id": contact["id"], "sent_to_address": v["email"],
           "sent_to_cc_address_list": [], "sent_to_bcc_address_list": [],
           "sent_from_address": SENDER, "sent_from_reply_address": SENDER, "sent_time": iso(at),
           "original_provider": "INFUSIONSOFT", "original_provider_id": f"msg{eid:x}",
           "plain_content": b64(text),
           "html_content": b64("<p>" + text.replace("\n", "<br>") + "</p>")}
    if rng.random() < 0.5:
        doc["opened_time"] = iso(at + timedelta(minutes=rng.randint(5, 600)))
    return doc


def stage(k: int) -> dict[str, Any]:
    sid, name, probability, order = STAGES[k]
    return {"id": sid, "name": name, "details": {"probability": probability,
                                                 "stage_order": order, "target_num_days": 14}}


def opportunity_stage_docs(created: datetime) -> list[dict[str, Any]]:
    """The Keap app's opportunity stages (`RestOpportunityStage`): the fixed STAGES the
    opportunities name, with the ids they carry (a catalog drawing on no random stream)."""
    at = iso(created)
    return [{"id": sid, "name": name, "order": order, "target_number_days": 14,
             "probability": probability, "created_time": at, "updated_time": at,
             "checklist_items": []} for sid, name, probability, order in STAGES]


def opportunity_doc(rng: random.Random, oid: int, contact: dict[str, Any], at: datetime
                    ) -> dict[str, Any]:
    v = _vars(contact)
    user = rng.choice(KEAP_OWNER_IDS)
    low = rng.randint(20, 80) * 1000
    summary = {"id": contact["id"], "first_name": contact.get("given_name") or "",
               "last_name": contact.get("family_name") or ""}
    if v["email"] != "no email on file":
        summary["email"] = v["email"]
    return {"id": str(oid), "contact": summary, "stage": stage(rng.randrange(3)),
            "user": {"id": user, "first_name": USERS[user][0], "last_name": USERS[user][1]},
            "opportunity_title": f"Placement: {v['first']}",
            "next_action_time": iso(at + timedelta(days=rng.randint(1, 10))),
            "next_action_notes": "Check in", "opportunity_notes": "",
            "estimated_close_time": iso(at + timedelta(days=rng.randint(20, 90))),
            "include_in_forecast": True, "projected_revenue_low": float(low),
            "projected_revenue_high": float(low + 10_000), "custom_fields": [],
            "created_time": iso(at), "last_updated_time": iso(at), "lead_source": "Referral"}


def company_docs(seed: int, created: datetime) -> list[dict[str, Any]]:
    """The Keap app's companies (a small catalog on its own random stream)."""
    rng = random.Random(f"{seed}/keap-companies")
    out = []
    for i, name in enumerate(COMPANIES):
        slug = name.lower().replace(" ", "")
        at = iso(created + timedelta(days=rng.randint(0, 300)))
        out.append({"id": str(ID_BASE["companies"] + i), "company_name": name,
                    "email_address": {"email": f"hr@{slug}.example", "field": "EMAIL1"},
                    "phone_number": {"number": f"555-01{i:02d}", "field": "PHONE1",
                                     "type": "Work"},
                    "address": {"line1": f"{rng.randint(1, 999)} Main St",
                                "locality": "Springfield", "country_code": "USA",
                                "region_code": "US-IL", "postal_code": "62701",
                                "field": "BILLING"},
                    "website": f"https://{slug}.example", "notes": "Hiring partner",
                    "owner_id": rng.choice(KEAP_OWNER_IDS), "custom_fields": [],
                    "create_time": at, "update_time": at})
    return out


def generated(rng: random.Random, take: Any, contact: dict[str, Any], created: datetime,
              start: datetime) -> list[tuple[str, dict[str, Any]]]:
    """A generated contact's notes, tasks, emails and opportunity: (entity, doc) each. `take`
    allocates ids per entity ("keap:notes", ...)."""
    out: list[tuple[str, dict[str, Any]]] = []

    def times(k: int) -> list[datetime]:
        return sorted(created + (start - created) * rng.random() for _ in range(k))

    if rng.random() < NOTE_FRACTION:
        out += [("notes", note_doc(rng, take("keap:notes"), contact, at))
                for at in times(rng.randint(1, MAX_NOTES))]
    if rng.random() < TASK_FRACTION:
        for at in times(rng.randint(1, MAX_TASKS)):
            done = at + timedelta(days=14) < start and rng.random() < 0.7
            out.append(("tasks", task_doc(rng, take("keap:tasks"), contact, at, done)))
    if contact.get("email_addresses") and rng.random() < EMAIL_FRACTION:
        out += [("emails", email_doc(rng, take("keap:emails"), contact, at))
                for at in times(rng.randint(1, MAX_EMAILS))]
    if rng.random() < OPPORTUNITY_FRACTION:
        [at] = times(1)
        out.append(("opportunities", opportunity_doc(rng, take("keap:opportunities"), contact,
                                                     at)))
    return out


# -- daily life ---------------------------------------------------------------------------------
def _contact(day: Day) -> dict[str, Any] | None:
    picked = day.pick("keap", "contacts")
    return picked.doc if picked else None


def _id(day: Day, entity: str) -> int:
    return day.store.next_id("keap", entity, start=ID_BASE[entity])


def _added(entity: str, make: Any, needs_email: bool = False):
    def event(day: Day) -> bool:
        contact = _contact(day)
        if contact is None or (needs_email and not contact.get("email_addresses")):
            return False
        day.save("keap", entity, make(day.rng, _id(day, entity), contact, day.at))
        return True
    return event


def note_edited(day: Day) -> bool:
    picked = day.pick("keap", "notes")
    if picked is None:
        return False
    doc = picked.doc
    doc["text"] = f"{doc.get('text', '')} Update: {day.rng.choice(NOTE_TEXTS)}"
    doc["update_time"] = iso(day.stamp())
    day.save("keap", "notes", doc)
    return True


def task_completed(day: Day) -> bool:
    picked = day.pick("keap", "tasks", "json_extract(doc, '$.completed') = 0")
    if picked is None:
        return False
    picked.doc.update(completed=True, completion_time=iso(day.at),
                      modification_time=iso(day.stamp()))
    day.save("keap", "tasks", picked.doc)
    return True


def opportunity_moved(day: Day) -> bool:
    picked = day.pick("keap", "opportunities",
                      "CAST(json_extract(doc, '$.stage.id') AS INTEGER) < ?", (len(STAGES),))
    if picked is None:
        return False
    doc = picked.doc
    doc["stage"] = stage(int(doc["stage"]["id"]))   # ids are 1-based: the next stage
    doc["last_updated_time"] = iso(day.stamp())
    day.save("keap", "opportunities", doc)
    return True


def company_edited(day: Day) -> bool:
    picked = day.pick("keap", "companies")
    if picked is None:
        return False
    picked.doc["notes"] = day.rng.choice(("Hiring partner", "Paused hiring", "Key account",
                                          "New contact person"))
    picked.doc["update_time"] = iso(day.stamp())
    day.save("keap", "companies", picked.doc)
    return True


EVENTS = {"keap_notes_added": _added("notes", note_doc), "keap_notes_edited": note_edited,
          "keap_notes_deleted": deleted("keap", "notes"),
          "keap_tasks_added": _added("tasks", lambda r, i, c, t: task_doc(r, i, c, t, False)),
          "keap_tasks_completed": task_completed,
          "keap_tasks_deleted": deleted("keap", "tasks"),
          "keap_emails_logged": _added("emails", email_doc, needs_email=True),
          "keap_emails_deleted": deleted("keap", "emails"),
          "keap_opportunities_added": _added("opportunities", opportunity_doc),
          "keap_opportunities_moved": opportunity_moved,
          "keap_companies_edited": company_edited}


def play_day(store: Store, day: datetime, seed: int, size: int) -> Counter[str]:
    """The day's Keap notes, tasks, emails, opportunities and companies, on their own random
    stream (the caller holds the day's transaction and moves the clock after)."""
    rng = random.Random(f"{seed}/{day.date().isoformat()}/keap-history")
    return play_stream(store, day, rng, size, RATES, EVENTS, WEEKEND_FACTOR)
