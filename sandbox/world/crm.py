"""Keap (REST v2) and HighLevel (API v2) records of the sandbox world: catalogs and doc builders,
shared by the generator and `tick`.

Keap docs follow the `Contact`, `Tag`, `TagCategory` and `CustomFieldMetaData` schemas of
specs/keap/keap-rest-v2.openapi.yml (ids are strings of digits; timestamps ISO-8601 UTC).
HighLevel docs follow `GetContectByIdSchema`, `SearchOpportunitiesResponseSchema`,
`PipelinesResponseSchema`, `WorkflowSchema` and the location `CustomFieldSchema` /
`LocationTagsSchema` (ids of 20 characters from `records.highlevel_id`).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.credentials import HIGHLEVEL_LOCATION_ID
from sandbox.records import highlevel_id
from sandbox.world.clock import iso
from sandbox.world.people import (
    LAST_NAMES,
    Person,
    choice,
    e164,
    email_variant,
    make_phone,
    pick_weighted,
    randrange,
)

# -- overlap between the ATS and the CRMs (fractions of distinct people with a valid email) ---
IN_KEAP_FRACTION = 0.60          # already a Keap contact
KEAP_EMAIL_VARIANT_FRACTION = 0.15  # ... whose Keap email differs in case/whitespace
KEAP_STALE_FRACTION = 0.25       # ... whose Keap name/phone is an older version
KEAP_DUPLICATE_FRACTION = 0.04   # ... who has a second Keap contact (same email, other case)
NEWSLETTER_LEADS_PER_CANDIDATE = 0.25  # Keap-only contacts (newsletter leads), per candidate
IN_HIGHLEVEL_FRACTION = 0.30     # a HighLevel contact
HIGHLEVEL_LEADS_PER_CANDIDATE = 0.05  # HighLevel-only contacts, per candidate
OPPORTUNITY_FRACTION = 0.70      # HighLevel contacts with an opportunity
OPPORTUNITY_STATUS_WEIGHTS = {"open": 0.60, "won": 0.15, "lost": 0.20, "abandoned": 0.05}

KEAP_ID_BASE = {"contacts": 1001, "tags": 101, "tag_categories": 11, "custom_fields": 1}
KEAP_OWNER_IDS = ["7", "8", "9", "12"]
KEAP_CATEGORIES = ["Lead Source", "Newsletter", "Candidate"]
# (name, category name or None, description)
KEAP_TAGS = [
    ("LinkedIn", "Lead Source", "Came from LinkedIn"),
    ("Job Board", "Lead Source", "Indeed, Glassdoor and friends"),
    ("Referral", "Lead Source", "Referred by an employee"),
    ("Website", "Lead Source", "Careers site form"),
    ("Career Fair", "Lead Source", "Met at a career fair"),
    ("Newsletter - Weekly Jobs", "Newsletter", "Weekly job alert subscriber"),
    ("Newsletter - Monthly Digest", "Newsletter", "Monthly digest subscriber"),
    ("Unsubscribed", "Newsletter", "Opted out of newsletters"),
    ("Candidate", "Candidate", "Applied to a job at least once"),
    ("Active Applicant", "Candidate", "Has an application in process"),
    ("Past Applicant", "Candidate", "All applications closed"),
    ("Hired", "Candidate", "Hired through the ATS"),
    ("Talent Pool", "Candidate", "Worth a call for future roles"),
    ("VIP", None, "Handle with care"),
    ("Imported 2024", None, "Spreadsheet import, 2024"),
]
LEAD_SOURCE_TAGS = [0, 1, 2, 3, 4]
NEWSLETTER_TAGS = [5, 6]
CANDIDATE_TAGS = [8, 9, 10, 12]
# (label, field_name, field_type, options)
KEAP_CUSTOM_FIELDS = [
    ("ATS Candidate ID", "ATSCandidateID", "TEXT", []),
    ("Last Stage", "LastStage", "TEXT", []),
    ("Applied Job", "AppliedJob", "TEXT", []),
    ("Candidate Source", "CandidateSource", "DROPDOWN",
     ["LinkedIn", "Indeed", "Referral", "Website", "Other"]),
    ("Last Application Date", "LastApplicationDate", "DATE", []),
    ("Newsletter Frequency", "NewsletterFrequency", "DROPDOWN", ["Weekly", "Monthly"]),
]
NICKNAMES = {"Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Jennifer": "Jen",
             "Michael": "Mike", "Christopher": "Chris", "Patricia": "Pat", "Joseph": "Joe",
             "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony", "Steven": "Steve",
             "Joshua": "Josh", "Stephanie": "Steph", "Katherine": "Kate", "Thomas": "Tom"}

HL_PIPELINES = [
    ("Candidate Pipeline", ["New Applicant", "Screening", "Interviewing", "Offer", "Hired"]),
    ("Talent Community", ["Subscribed", "Engaged", "Re-engaged", "Dormant"]),
    ("Client Hiring Deals", ["Lead", "Qualified", "Proposal", "Signed"]),
]
HL_WORKFLOWS = [("New applicant nurture", "published"), ("Interview reminders", "published"),
                ("Offer follow-up", "published"), ("Re-engage silver medalists", "draft"),
                ("Newsletter welcome", "published")]
HL_TAGS = ["candidate", "applicant", "newsletter", "hot lead", "referral", "do not contact",
           "engineering", "sales", "talent community", "hired"]
# (name, fieldKey, dataType, picklistOptions)
HL_CUSTOM_FIELDS = [
    ("Candidate Status", "contact.candidate_status", "TEXT", []),
    ("ATS Candidate ID", "contact.ats_candidate_id", "TEXT", []),
    ("Applied Role", "contact.applied_role", "TEXT", []),
    ("Source Channel", "contact.source_channel", "SINGLE_OPTIONS",
     ["LinkedIn", "Indeed", "Referral", "Website"]),
    ("Last Application Date", "contact.last_application_date", "DATE", []),
]
HL_SOURCES = ["Careers Page", "LinkedIn", "Referral", "public api", "Facebook Lead Ad", "Import"]
HL_LOST_REASON_IDS = [highlevel_id(n, salt=0x1057) for n in range(1, 5)]
HL_USER_IDS = [highlevel_id(n, salt=0x05E2) for n in range(1, 7)]
HL_EPOCH = datetime(2024, 6, 1, tzinfo=UTC)   # when the sandbox HighLevel location was set up


def keap_time(t: datetime) -> str:
    """Keap v2 timestamps: ISO-8601 UTC with a Z (milliseconds, like the sandbox's Keap API
    writes them, so a contact's `update_time` sorts the same whoever wrote it)."""
    return iso(t)


def det_uuid(rng: random.Random) -> str:
    """A UUID4-shaped id drawn from `rng` (deterministic, unlike uuid.uuid4)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# -- Keap catalogs ----------------------------------------------------------------------------
def keap_catalog_docs(created: datetime) -> dict[str, list[dict[str, Any]]]:
    """Tag categories, tags and contact custom-field definitions of the sandbox Keap app."""
    stamp = keap_time(created)
    categories = [{"id": str(KEAP_ID_BASE["tag_categories"] + i), "name": name,
                   "create_time": stamp, "update_time": stamp}
                  for i, name in enumerate(KEAP_CATEGORIES)]
    by_name = {c["name"]: c["id"] for c in categories}
    tags = []
    for i, (name, category, description) in enumerate(KEAP_TAGS):
        tag: dict[str, Any] = {"id": str(KEAP_ID_BASE["tags"] + i), "name": name,
                               "description": description}
        if category:
            tag["category"] = {"id": by_name[category]}
        tag.update(create_time=stamp, update_time=stamp)
        tags.append(tag)
    fields = []
    for i, (label, name, kind, options) in enumerate(KEAP_CUSTOM_FIELDS):
        fid = KEAP_ID_BASE["custom_fields"] + i
        fields.append({
            "id": str(fid), "label": label,
            "options": [{"id": f"{fid}{j:02d}", "label": o} for j, o in enumerate(options)],
            "record_type": "CONTACT", "field_type": kind, "group_id": "1",
            "group_name": "Recruiting", "field_name": name,
        })
    return {"tag_categories": categories, "tags": tags, "custom_fields": fields}


def keap_tag_id(index: int) -> str:
    return str(KEAP_ID_BASE["tags"] + index)


def keap_field_id(index: int) -> str:
    return str(KEAP_ID_BASE["custom_fields"] + index)


# -- Keap contacts ----------------------------------------------------------------------------
def keap_contact(rng: random.Random, kid: int, person: Person, email: str | None,
                 created: datetime, updated: datetime, *, stale: bool = False,
                 candidate_id: int | None = None, newsletter: bool = False) -> dict[str, Any]:
    """A Keap contact for a person (`stale`: names/phone as they were years ago)."""
    first, last = person.first.strip(), person.last.strip()
    phones = list(person.phones)
    if stale:
        first = NICKNAMES.get(first, first[:1] + "." if rng.random() < 0.3 else first)
        if rng.random() < 0.5:
            last = choice(rng, LAST_NAMES)   # an older (maiden, misspelt) last name
        phones = [make_phone(rng)[0]] if rng.random() < 0.7 else phones
    emails = []
    if email is not None:
        emails.append({"email": email, "field": "EMAIL1",
                       "email_opt_status": "SINGLE_OPT_IN" if newsletter else
                       choice(rng, ["UNENGAGED_MARKETABLE", "NON_MARKETABLE", "CONFIRMED"]),
                       "is_opt_in": newsletter or rng.random() < 0.3})
    tags = [keap_tag_id(choice(rng, LEAD_SOURCE_TAGS))] if rng.random() < 0.6 else []
    if newsletter:
        tags.append(keap_tag_id(choice(rng, NEWSLETTER_TAGS)))
    if candidate_id is not None:
        tags += [keap_tag_id(i) for i in CANDIDATE_TAGS if rng.random() < 0.3]
    fields = []
    if candidate_id is not None and rng.random() < 0.5:
        fields.append({"id": keap_field_id(0), "content": str(candidate_id)})
    if rng.random() < 0.3:
        fields.append({"id": keap_field_id(3), "content": choice(rng,
            ["LinkedIn", "Indeed", "Referral", "Website", "Other"])})
    doc: dict[str, Any] = {
        "id": str(kid), "given_name": first, "family_name": last,
        "email_addresses": emails,
        "phone_numbers": [{"number": p[:40], "field": f"PHONE{i + 1}",
                           "type": ["Mobile", "Work", "Home"][i % 3]}
                          for i, p in enumerate(phones[:5])],
        "addresses": [],
        "tag_ids": sorted(dict.fromkeys(tags), key=int),
        "custom_fields": fields,
        "source_type": choice(rng, ["WEBFORM", "IMPORT", "API", "MANUAL", "LANDING_PAGE"]),
        "owner_id": choice(rng, KEAP_OWNER_IDS),
        "create_time": keap_time(created), "update_time": keap_time(updated),
    }
    if person.title and rng.random() < 0.4:
        doc["job_title"] = person.title
    return doc


def keap_duplicate(rng: random.Random, kid: int, original: dict[str, Any],
                   created: datetime) -> dict[str, Any]:
    """A second Keap contact for the same person: the email differs only in case/spacing."""
    dup = dict(original)
    email = original["email_addresses"][0]["email"]
    dup["id"] = str(kid)
    dup["email_addresses"] = [{**original["email_addresses"][0],
                               "email": email_variant(rng, email)}]
    dup["tag_ids"] = [t for t in original["tag_ids"] if rng.random() < 0.5]
    dup["custom_fields"] = []
    dup["create_time"] = dup["update_time"] = keap_time(created)
    return dup


# -- HighLevel catalogs -----------------------------------------------------------------------
def highlevel_catalog_docs(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Pipelines (with stages), workflows, contact custom fields and location tags."""
    loc = HIGHLEVEL_LOCATION_ID
    pipelines = []
    for i, (name, stages) in enumerate(HL_PIPELINES):
        pipelines.append({
            "id": highlevel_id(i + 1), "name": name,
            "stages": [{"id": det_uuid(rng), "name": s, "position": j,
                        "showInFunnel": True, "showInPieChart": True}
                       for j, s in enumerate(stages)],
            "showInFunnel": True, "showInPieChart": i == 0, "locationId": loc,
            "colorRenderMode": "dot",
        })
    workflows = []
    for i, (name, status) in enumerate(HL_WORKFLOWS):
        created = HL_EPOCH + timedelta(days=7 * i, hours=15)
        workflows.append({"id": det_uuid(rng), "name": name, "status": status,
                          "version": 1 + i % 3, "createdAt": iso(created),
                          "updatedAt": iso(created + timedelta(days=30 + i)),
                          "locationId": loc})
    fields = [{"id": highlevel_id(i + 1), "name": name, "fieldKey": key, "placeholder": name,
               "dataType": kind, "position": i * 50, "picklistOptions": options,
               "picklistImageOptions": [], "isAllowedCustomOption": False,
               "isMultiFileAllowed": False, "maxFileLimit": 0, "locationId": loc,
               "model": "contact"}
              for i, (name, key, kind, options) in enumerate(HL_CUSTOM_FIELDS)]
    tags = [{"id": highlevel_id(i + 1), "name": name, "locationId": loc}
            for i, name in enumerate(HL_TAGS)]
    return {"pipelines": pipelines, "workflows": workflows, "custom_fields": fields,
            "tags": tags}


# -- HighLevel contacts and opportunities -----------------------------------------------------
def highlevel_contact(rng: random.Random, hid: str, person: Person, email: str | None,
                      created: datetime, updated: datetime, fields: list[dict[str, Any]],
                      candidate_id: int | None = None) -> dict[str, Any]:
    first, last = person.first.strip(), person.last.strip()
    phone = e164(person.phones[0]) if person.phones else None
    tags = sorted({choice(rng, HL_TAGS) for _ in range(randrange(rng, 0, 3))})
    if candidate_id is not None and "candidate" not in tags and rng.random() < 0.6:
        tags.append("candidate")
    by_key = {f.get("fieldKey"): f for f in fields}
    ats_field, channel = by_key.get("contact.ats_candidate_id"), by_key.get(
        "contact.source_channel")
    custom = []
    if candidate_id is not None and ats_field and rng.random() < 0.5:
        custom.append({"id": ats_field["id"], "value": str(candidate_id)})
    if channel and channel.get("picklistOptions") and rng.random() < 0.3:
        custom.append({"id": channel["id"], "value": choice(rng, channel["picklistOptions"])})
    doc: dict[str, Any] = {
        "id": hid, "name": f"{first} {last}".strip(), "locationId": HIGHLEVEL_LOCATION_ID,
        "firstName": first, "lastName": last,
        "firstNameLowerCase": first.lower(), "lastNameLowerCase": last.lower(),
        "fullNameLowerCase": f"{first} {last}".strip().lower(),
    }
    if email is not None:
        doc["email"] = email.strip()
        doc["emailLowerCase"] = email.strip().lower()
    if phone:
        doc["phone"] = phone
    doc.update({
        "companyName": person.company or "", "timezone": "America/New_York",
        "dnd": False, "type": "lead", "source": choice(rng, HL_SOURCES),
        "assignedTo": choice(rng, HL_USER_IDS), "country": "US", "tags": sorted(tags),
        "dateAdded": iso(created), "dateUpdated": iso(updated), "customFields": custom,
    })
    return doc


def embedded_contact(contact: dict[str, Any]) -> dict[str, Any]:
    """The `contact` summary an opportunity carries."""
    out = {"id": contact["id"], "name": contact.get("name", ""),
           "companyName": contact.get("companyName", ""), "email": contact.get("email", ""),
           "phone": contact.get("phone", ""), "tags": list(contact.get("tags", []))}
    return out


def opportunity(rng: random.Random, oid: str, contact: dict[str, Any],
                pipeline: dict[str, Any], created: datetime, changed: datetime,
                role: str) -> dict[str, Any]:
    status = pick(rng, OPPORTUNITY_STATUS_WEIGHTS)
    stages = pipeline["stages"]
    stage = stages[-1] if status == "won" else choice(rng, stages[:-1] or stages)
    doc: dict[str, Any] = {
        "id": oid, "name": f"{contact.get('name') or 'Unknown'} - {role}",
        "monetaryValue": float(choice(rng, [0, 0, 5000, 12000, 18000, 25000])),
        "pipelineId": pipeline["id"], "pipelineStageId": stage["id"],
        "assignedTo": choice(rng, HL_USER_IDS), "status": status,
        "source": choice(rng, HL_SOURCES), "lastStatusChangeAt": iso(changed),
        "lastStageChangeAt": iso(changed), "lastActionDate": iso(changed),
        "indexVersion": "1", "createdAt": iso(created), "updatedAt": iso(changed),
        "contactId": contact["id"], "locationId": HIGHLEVEL_LOCATION_ID,
        "contact": embedded_contact(contact), "notes": [], "tasks": [], "calendarEvents": [],
        "customFields": [], "followers": [],
    }
    if status == "lost":
        doc["lostReasonId"] = choice(rng, HL_LOST_REASON_IDS)
    return doc


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return pick_weighted(rng, weights)
