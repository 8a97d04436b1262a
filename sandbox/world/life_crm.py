"""Daily-life events in the CRMs: people in the marketing team edit, add and delete Keap and
HighLevel contacts and move HighLevel opportunities through their pipelines.

Each changed record gets a fresh write stamp as its update time (`update_time` in Keap,
`dateUpdated` / `updatedAt` in HighLevel). Each event returns True when it acted.
"""

from __future__ import annotations

from typing import Any

from sandbox.highlevel.conversations import delete_for_contact
from sandbox.keap.history import cascade_contact
from sandbox.records import highlevel_id
from sandbox.world import crm
from sandbox.world.clock import iso
from sandbox.world.day import PERSON_INDEX_BASE, Day
from sandbox.world.people import (
    LAST_NAMES,
    WORK_DOMAINS,
    e164,
    make_person,
    make_phone,
    status_value,
)

KEAP_EDIT_KINDS = ("name", "phone", "email", "tags", "custom_field")
HIGHLEVEL_EDIT_KINDS = ("name", "phone", "tags", "custom_field")


# -- Keap ---------------------------------------------------------------------------------------
def keap_edit(day: Day) -> bool:
    """Someone edits a Keap contact: a name, a phone, a second email, tags or a custom field."""
    picked = day.pick("keap", "contacts")
    if picked is None:
        return False
    doc, rng = picked.doc, day.rng
    kind = rng.choice(KEAP_EDIT_KINDS)
    if kind == "name":
        if rng.random() < 0.5:
            doc["family_name"] = rng.choice(LAST_NAMES)
        else:
            first = doc.get("given_name") or ""
            doc["given_name"] = crm.NICKNAMES.get(first, first.strip().title() or "Alex")
    elif kind == "phone":
        phones = [p for p in doc.get("phone_numbers", []) if p.get("field") != "PHONE2"]
        phones.append({"number": make_phone(rng)[0], "field": "PHONE2", "type": "Mobile"})
        doc["phone_numbers"] = phones
    elif kind == "email":
        _add_keap_email(doc, day)
    elif kind == "tags":
        tag = crm.keap_tag_id(rng.choice(crm.CANDIDATE_TAGS + crm.NEWSLETTER_TAGS))
        tags = doc.get("tag_ids", [])
        doc["tag_ids"] = (sorted((t for t in tags if t != tag), key=int) if tag in tags
                          else sorted([*tags, tag], key=int))
    else:
        fields = [f for f in doc.get("custom_fields", []) if f["id"] != crm.keap_field_id(1)]
        fields.append({"id": crm.keap_field_id(1), "content": rng.choice(
            ["Phone Screen", "Onsite", "Offer", "Hired", "Rejected"])})
        doc["custom_fields"] = fields
    doc["update_time"] = crm.keap_time(day.stamp())
    day.save("keap", "contacts", doc)
    return True


def _add_keap_email(doc: dict[str, Any], day: Day) -> None:
    emails = doc.get("email_addresses", [])
    used = {e.get("field") for e in emails}
    slot = next((f for f in ("EMAIL1", "EMAIL2", "EMAIL3") if f not in used), None)
    if slot is None:
        return
    name = "".join(c for c in (doc.get("given_name") or "").lower() if c.isascii()
                   and c.isalnum()) or "contact"
    email = f"{name}.k{doc['id']}@{day.rng.choice(WORK_DOMAINS)}"
    doc["email_addresses"] = [*emails, {"email": email, "field": slot,
                                        "email_opt_status": "UNENGAGED_MARKETABLE",
                                        "is_opt_in": False}]


def keap_deletion(day: Day) -> bool:
    """A Keap contact is deleted, and its notes, tasks, emails and opportunities with it."""
    picked = day.pick("keap", "contacts")
    if picked is None:
        return False
    cascade_contact(day.store, picked.id, day.at)
    return day.delete("keap", "contacts", picked.id)


def keap_new_lead(day: Day) -> bool:
    """A newsletter signup: a Keap contact who never applied anywhere."""
    kid = day.keap_id("contacts")
    person = make_person(day.rng, PERSON_INDEX_BASE["keap"] + kid)
    email = person.email if person.email_kind == "valid" else None
    doc = crm.keap_contact(day.rng, kid, person, email, day.at, day.stamp(), newsletter=True)
    doc["create_time"] = crm.keap_time(day.at)
    day.save("keap", "contacts", doc)
    return True


# -- HighLevel ------------------------------------------------------------------------------------
def highlevel_edit(day: Day) -> bool:
    """Someone edits a HighLevel contact; its opportunities show the new contact summary (their
    own `updatedAt` does not move: the summary is joined in, not an edit of the opportunity)."""
    picked = day.pick("highlevel", "contacts")
    if picked is None:
        return False
    doc, rng = picked.doc, day.rng
    kind = rng.choice(HIGHLEVEL_EDIT_KINDS)
    if kind == "name":
        doc["lastName"] = rng.choice(LAST_NAMES)
        _names(doc)
    elif kind == "phone":
        phone = e164(make_phone(rng)[0])
        if phone:
            doc["phone"] = phone
    elif kind == "tags":
        tag = rng.choice(crm.HL_TAGS)
        tags = doc.get("tags", [])
        doc["tags"] = sorted(t for t in tags if t != tag) if tag in tags else sorted(
            [*tags, tag])
    else:
        _set_status_field(day, doc)
    doc["dateUpdated"] = iso(day.stamp())
    day.save("highlevel", "contacts", doc)
    for row in day.store.select("highlevel", "opportunities", "parent = ?", (doc["id"],)):
        row.doc["contact"] = crm.embedded_contact(doc)
        day.save("highlevel", "opportunities", row.doc)
    return True


def _names(doc: dict[str, Any]) -> None:
    first, last = doc.get("firstName", ""), doc.get("lastName", "")
    doc.update(name=f"{first} {last}".strip(), firstNameLowerCase=first.lower(),
               lastNameLowerCase=last.lower(), fullNameLowerCase=f"{first} {last}".strip().lower())


def _set_status_field(day: Day, doc: dict[str, Any]) -> None:
    field = day.store.select("highlevel", "custom_fields",
                             "json_extract(doc, '$.fieldKey') = 'contact.candidate_status'",
                             limit=1)
    if not field:
        return
    _, value = status_value(day.rng, iso(day.at))
    others = [f for f in doc.get("customFields", []) if f["id"] != field[0].id]
    doc["customFields"] = others + ([{"id": field[0].id, "value": value}] if value else [])


def highlevel_deletion(day: Day) -> bool:
    """A HighLevel contact is deleted, and its opportunities, notes, tasks, appointments and
    conversations with it."""
    picked = day.pick("highlevel", "contacts")
    if picked is None:
        return False
    for entity in ("opportunities", "notes", "tasks", "appointments"):
        for row in day.store.select("highlevel", entity, "parent = ?", (picked.id,)):
            day.delete("highlevel", entity, row.id)
    delete_for_contact(day.store, picked.id, day.at)
    return day.delete("highlevel", "contacts", picked.id)


def highlevel_new_lead(day: Day) -> bool:
    """Someone fills in a HighLevel form: a contact who never applied anywhere."""
    n = day.store.next_id("highlevel", "contacts")
    person = make_person(day.rng, PERSON_INDEX_BASE["highlevel"] + n % 10 ** 8)
    fields = [r.doc for r in day.store.select("highlevel", "custom_fields")]
    email = person.email if person.email_kind == "valid" else None
    doc = crm.highlevel_contact(day.rng, highlevel_id(n), person, email, day.at, day.stamp(),
                                fields)
    doc["dateAdded"] = iso(day.at)
    day.save("highlevel", "contacts", doc)
    return True


def opportunity_move(day: Day) -> bool:
    """An open opportunity moves to the next stage of its pipeline, or is won, lost or
    abandoned."""
    picked = day.pick("highlevel", "opportunities", "json_extract(doc, '$.status') = 'open'")
    if picked is None:
        return False
    opp, rng = picked.doc, day.rng
    pipeline = day.store.get("highlevel", "pipelines", opp["pipelineId"])
    stages = sorted((pipeline or {}).get("stages", []), key=lambda s: s.get("position", 0))
    ids = [s["id"] for s in stages]
    at = iso(day.at)
    x = rng.random()
    if x < 0.7 and opp["pipelineStageId"] in ids[:-1]:
        opp["pipelineStageId"] = ids[ids.index(opp["pipelineStageId"]) + 1]
        opp["lastStageChangeAt"] = at
        if opp["pipelineStageId"] == ids[-1]:
            opp["status"], opp["lastStatusChangeAt"] = "won", at
    else:
        opp["status"] = "lost" if x < 0.9 else "abandoned"
        opp["lastStatusChangeAt"] = at
        if opp["status"] == "lost":
            opp["lostReasonId"] = rng.choice(crm.HL_LOST_REASON_IDS)
    opp["lastActionDate"] = at
    opp["updatedAt"] = iso(day.stamp())
    day.save("highlevel", "opportunities", opp)
    return True
