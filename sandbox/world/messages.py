"""HighLevel conversations and their messages in the world: SMS, emails and calls, the ones a
generated world starts with and the daily life that adds, reads and deletes them.

Both draw from their own random streams and id counters (`<seed>/chunk/<c>/highlevel-messages`,
`<seed>/<day>/highlevel-messages`; ids in their own HighLevel id blocks), so a world's other
records are the same as before messages existed: same seed, same contacts, notes and events.

A contact has at most one conversation (HighLevel keeps one per contact and location); each
message carries the conversation, the contact, a direction, a status and `dateAdded`; its
`dateUpdated` moves when the status does (delivered -> read). Some bodies quote the person's
email address or phone number (what an erasure must reach). The conversation's `last*` fields
follow its newest message. Times are stored as ISO text; the API serves the conversation's as
epoch milliseconds (sandbox/highlevel/conversations.py).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from typing import Any

from sandbox.highlevel.common import LOCATION_ID
from sandbox.highlevel.conversations import delete_conversation
from sandbox.records import highlevel_id
from sandbox.store import Store
from sandbox.world.clock import iso
from sandbox.world.crm import HL_USER_IDS
from sandbox.world.day import Day, play_stream
from sandbox.world.notes import person_vars

# HighLevel id blocks of generated conversations and messages (API-created ones continue above)
ID_BASE = {"conversations": 10 * 10 ** 12, "messages": 11 * 10 ** 12}
PER_CANDIDATE = {"conversations": 2, "messages": 16}   # id room per candidate of a chunk
CONVERSATION_FRACTION = 0.4    # contacts with a conversation
MAX_MESSAGES = 6
QUOTE_FRACTION = 0.1           # message bodies quoting the contact's email or phone

# messageType, numeric type, share of messages (HighLevel: 1 call, 2 SMS, 3 email)
KINDS = (("TYPE_SMS", 2, 0.55), ("TYPE_EMAIL", 3, 0.3), ("TYPE_CALL", 1, 0.15))
SMS_OUT = ("Hi {first}, thanks for applying! Are you free for a quick call this week?",
           "Reminder: your interview is tomorrow at 10:00.",
           "Hi {first}, could you send us your availability?")
SMS_IN = ("Yes, Tuesday works for me.", "Thanks! See you then 👍", "Can we move it to Friday?",
          "我下周有空。")
EMAIL_OUT = ("Dear {first},\n\nthank you for your application for the {role} role. We would like "
             "to invite you to a first interview.\n\nBest regards",
             "Hello {first},\n\nplease find the job description attached.\n\nKind regards")
EMAIL_IN = ("Hello,\n\nthank you, I am available on Monday or Wednesday.\n\nBest,\n{first}",
            "Hi, attached is my updated CV. Regards, {first}")
SUBJECTS = ("Your application for the {role} role", "Interview invitation",
            "Re: next steps", "Documents for your application")
QUOTES = ("You can also reach me at {email}.", "My new number is {phone}, please use it.",
          "Please write to {email} or call {phone}.")
CALL_STATUSES = ("completed", "completed", "no-answer", "voicemail", "busy")

# daily life, per candidate of the world's size per day (weekends: a third of that); each kind
# happens at least once a day when there is something to act on, as the other events
RATES = {"highlevel_messages_outbound": 0.01, "highlevel_messages_inbound": 0.006,
         "highlevel_calls": 0.002, "highlevel_messages_read": 0.004,
         "highlevel_conversations_deleted": 0.0002}
WEEKEND_FACTOR = 0.3


def conversation_doc(cid: str, contact: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"id": cid, "contactId": contact["id"], "locationId": LOCATION_ID,
            "type": "TYPE_PHONE", "unreadCount": 0, "dateAdded": iso(at), "dateUpdated": iso(at),
            "lastMessageDate": iso(at), "lastMessageBody": "", "lastMessageType": "TYPE_SMS",
            "lastMessageDirection": "outbound", "assignedTo": HL_USER_IDS[0]}


def message_doc(rng: random.Random, mid: str, conversation: dict[str, Any],
                contact: dict[str, Any], at: datetime, *, direction: str,
                kind: tuple[str, int, float] | None = None, role: str | None = None
                ) -> dict[str, Any]:
    """One message of `conversation`; `kind` drawn when not given."""
    if kind is None:
        r, kind = rng.random(), KINDS[-1]
        for k in KINDS:
            if r < k[2]:
                kind = k
                break
            r -= k[2]
    message_type, type_no, _ = kind
    v = person_vars(contact, role)
    doc: dict[str, Any] = {
        "id": mid, "type": type_no, "messageType": message_type, "locationId": LOCATION_ID,
        "contactId": contact["id"], "conversationId": conversation["id"], "dateAdded": iso(at),
        "dateUpdated": iso(at), "direction": direction, "contentType": "text/plain",
        "attachments": [], "source": "app", "userId": rng.choice(HL_USER_IDS)}
    if message_type == "TYPE_CALL":
        doc["status"] = "connected"
        doc["meta"] = {"callDuration": str(rng.randint(0, 900)),
                       "callStatus": rng.choice(CALL_STATUSES)}
        return doc
    templates = {("TYPE_SMS", "outbound"): SMS_OUT, ("TYPE_SMS", "inbound"): SMS_IN,
                 ("TYPE_EMAIL", "outbound"): EMAIL_OUT,
                 ("TYPE_EMAIL", "inbound"): EMAIL_IN}[(message_type, direction)]
    body = rng.choice(templates).format(**v)
    if rng.random() < QUOTE_FRACTION:
        body += " " + rng.choice(QUOTES).format(**v)
    doc["body"] = body
    doc["status"] = "delivered" if direction == "outbound" else "read"
    if message_type == "TYPE_EMAIL":
        doc["contentType"] = "text/html"
        doc["meta"] = {"email": {"messageIds": [mid]}}
        # the headers GET /conversations/messages/email/{id} serves (not the export)
        person = contact.get("email") or "unknown@example.invalid"
        ours = "recruiting@acme-talent.example"
        doc.update({"subject": rng.choice(SUBJECTS).format(**v), "threadId": mid,
                    "from": ours if direction == "outbound" else person,
                    "to": [person if direction == "outbound" else ours],
                    "provider": "Leadconnector Gmail"})
    return doc


def follow(conversation: dict[str, Any], message: dict[str, Any],
           updated: str | None = None) -> None:
    """The conversation's `last*` fields after `message` arrived (saved at `updated`)."""
    conversation.update({
        "lastMessageDate": message["dateAdded"], "dateUpdated": updated or message["dateAdded"],
        "lastMessageBody": message.get("body") or "", "lastMessageType": message["messageType"],
        "lastMessageDirection": message["direction"]})
    if message["direction"] == "inbound":
        conversation["unreadCount"] = conversation.get("unreadCount", 0) + 1


def generated(rng: random.Random, take: Any, contact: dict[str, Any], created: datetime,
              start: datetime, role: str | None) -> list[tuple[str, dict[str, Any], int]]:
    """A generated contact's conversation and messages: (entity, doc, id counter value) each.
    `take` allocates counter values ("highlevel:conversations" / "highlevel:messages")."""
    if rng.random() >= CONVERSATION_FRACTION:
        return []
    times = sorted(created + (start - created) * rng.random()
                   for _ in range(rng.randint(1, MAX_MESSAGES)))
    n = take("highlevel:conversations")
    conversation = conversation_doc(highlevel_id(n), contact, times[0])
    out: list[tuple[str, dict[str, Any], int]] = []
    for i, at in enumerate(times):
        m = take("highlevel:messages")
        doc = message_doc(rng, highlevel_id(m), conversation, contact, at, role=role,
                          direction="outbound" if i == 0 or rng.random() < 0.55 else "inbound")
        follow(conversation, doc)
        out.append(("messages", doc, m))
    conversation["unreadCount"] = 0   # a recruiter has read the history
    return [("conversations", conversation, n), *out]


# -- daily life ---------------------------------------------------------------------------------
def _conversation_of(day: Day, contact: dict[str, Any]) -> dict[str, Any]:
    rows = day.store.select("highlevel", "conversations", "parent = ?", (contact["id"],))
    if rows:
        return rows[0].doc
    return conversation_doc(day.hl_id("conversations"), contact, day.stamp())


def _message(direction: str, kind: tuple[str, int, float] | None = None):
    def event(day: Day) -> bool:
        if direction == "inbound" or kind is not None:
            picked = day.pick("highlevel", "conversations")
            contact = picked and day.store.get("highlevel", "contacts", picked.doc["contactId"])
            if picked is None or contact is None:
                return False
            conversation = picked.doc
        else:
            found = day.pick("highlevel", "contacts")
            if found is None:
                return False
            contact = found.doc
            conversation = _conversation_of(day, contact)
        doc = message_doc(day.rng, day.hl_id("messages"), conversation, contact, day.stamp(),
                          direction=direction, kind=kind)
        day.save("highlevel", "messages", doc)
        follow(conversation, doc, iso(day.stamp()))
        day.save("highlevel", "conversations", conversation)
        return True
    return event


def message_read(day: Day) -> bool:
    """The person reads an outbound SMS or email: its status moves, and `dateUpdated`."""
    picked = day.pick("highlevel", "messages",
                      "json_extract(doc, '$.direction') = 'outbound' "
                      "AND json_extract(doc, '$.status') = 'delivered'")
    if picked is None:
        return False
    picked.doc.update({"status": "read", "dateUpdated": iso(day.stamp())})
    day.save("highlevel", "messages", picked.doc)
    return True


def conversation_deleted(day: Day) -> bool:
    """A recruiter deletes a conversation: its messages go with it."""
    picked = day.pick("highlevel", "conversations")
    if picked is None:
        return False
    delete_conversation(day.store, picked.id, day.at)
    return True


EVENTS = {"highlevel_messages_outbound": _message("outbound"),
          "highlevel_messages_inbound": _message("inbound"),
          "highlevel_calls": _message("outbound", KINDS[2]),
          "highlevel_messages_read": message_read,
          "highlevel_conversations_deleted": conversation_deleted}


def play_day(store: Store, day: datetime, seed: int, size: int) -> Counter[str]:
    """The day's messages, on their own random stream (the caller holds the day's transaction
    and moves the clock after)."""
    rng = random.Random(f"{seed}/{day.date().isoformat()}/highlevel-messages")
    return play_stream(store, day, rng, size, RATES, EVENTS, WEEKEND_FACTOR)
