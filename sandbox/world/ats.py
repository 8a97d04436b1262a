"""Greenhouse Harvest v3 records of the sandbox world: catalogs, doc builders, and the life of an
application (stage moves, interviews, offers, rejections), shared by the generator and `tick`.

Every builder returns a doc exactly as `GET /v3/<entity>` returns one item (the per-item schemas
in specs/ats/greenhouse-harvest-v3-schemas, several with `additionalProperties: false`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.store import parse_ts
from sandbox.world.clock import iso, next_work_time, plus_days
from sandbox.world.people import (
    CANDIDATE_TAGS,
    STATUS_FIELD_KEY,
    STATUS_FIELD_NAME,
    Person,
    address,
    choice,
    randrange,
)

# First id of each Greenhouse entity: distinct ranges make an id used for the wrong entity stand
# out. Counters `next_id:greenhouse:<entity>` continue from here (API creates use them too).
ID_BASE = {
    "users": 1,                      # user 1 is the sandbox client's acting user (`sub`)
    "rejection_reasons": 10_001,
    "jobs": 100_001,
    "job_interview_stages": 1_000_001,
    "candidates": 10_000_001,
    "applications": 50_000_001,
    "application_stages": 200_000_001,
    "interviews": 400_000_001,
    "offers": 600_000_001,
    "rejection_details": 700_000_001,
}
DEPARTMENT_IDS = [4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008]
OFFICE_IDS = [5001, 5002, 5003, 5004, 5005, 5006]
SOURCE_IDS = {30001: "LinkedIn", 30002: "Indeed", 30003: "Referral", 30004: "Company Website",
              30005: "Agency", 30006: "Career Fair", 30007: "Glassdoor"}
SOURCE_ID_LIST = list(SOURCE_IDS)
DEPARTMENT_NAMES = ["Engineering", "Product", "Design", "Sales", "Marketing", "Customer Success",
                    "Finance", "People"]
OFFICE_NAMES = ["San Francisco", "New York", "London", "Berlin", "Toronto", "Remote (US)"]
OFFICE_LOCATIONS = ["San Francisco, CA, USA", "New York, NY, USA", "London, UK",
                    "Berlin, Germany", "Toronto, ON, Canada", None]
# each source's sourcing strategy (Greenhouse's reporting categories)
SOURCE_TYPES = {"LinkedIn": (1, "Prospecting"), "Indeed": (2, "Third-party boards"),
                "Referral": (3, "Referral"), "Company Website": (4, "Company marketing"),
                "Agency": (5, "Agencies"), "Career Fair": (6, "In person event"),
                "Glassdoor": (2, "Third-party boards")}

# The interview plan: one row per position; Application Review first and Offer last always.
# Names DRIFT: each job picks a variant per position (index 0 is the canonical name), and plan
# edits later replace a stage by another variant (the old one stays, inactive).
STAGE_VARIANTS: list[list[str]] = [
    ["Application Review"],
    ["Recruiter Screen", "Recruiter Phone Screen", "Initial Screen"],
    ["Phone Interview", "Phone Screen", "Hiring Manager Screen"],
    ["Technical Interview", "Technical Screen", "Take Home Test"],
    ["Onsite", "On-site", "Onsite Interview", "Final Round"],
    ["Reference Check", "References"],
    ["Offer"],
]
CANONICAL_NAME_FRACTION = 0.6     # a job's stage uses the canonical name, else a variant
OPTIONAL_POSITIONS = {3: 0.35, 5: 0.3}   # position -> chance a job's plan leaves it out
INTERVIEW_POSITIONS = {1, 2, 3, 4}       # stages that hold an interview
PLAN_EDIT_FRACTION = 0.15         # jobs whose plan was edited during the history window
# leaving a stage: P(reject), P(withdraw); the rest advance
REJECT_AT = {0: 0.50, 1: 0.35, 2: 0.30, 3: 0.35, 4: 0.30, 5: 0.10}
WITHDRAW_AT = 0.05
OFFER_ACCEPT = 0.8
OFFER_REVISION = 0.1              # offers that get a second version before resolution
DWELL_DAYS = {0: (0.5, 6.0), "default": (2.0, 8.0)}
PROSPECT_FRACTION = 0.02          # applications that are converted prospects (status converted)
JOB_STATUS_WEIGHTS = {"open": 0.70, "closed": 0.25, "draft": 0.05}

JOB_TITLES = ["Backend Engineer", "Frontend Engineer", "Data Engineer", "Data Scientist",
              "Product Manager", "Product Designer", "Account Executive", "Sales Development Rep",
              "Customer Success Manager", "Recruiter", "QA Engineer", "Site Reliability Engineer",
              "Marketing Manager", "Financial Analyst", "Support Specialist", "Security Engineer"]
JOB_LEVELS = ["", "Senior ", "Staff ", "Junior ", "Lead ", "Principal "]
JOB_REGIONS = ["", "", " - EMEA", " - Remote", " - NYC", " (Contract)"]
USER_TITLES = ["Recruiter", "Senior Recruiter", "Recruiting Coordinator", "Sourcer",
               "Hiring Manager", "Head of Talent", "Recruiting Operations"]
INTERVIEWER_TAGS = [(1, "Senior Engineer"), (2, "Bar Raiser"), (3, "Culture Interview"),
                    (4, "Sales Panel")]
QUESTIONS = ["How did you hear about us?", "Are you authorized to work in this country?",
             "Desired salary?", "LinkedIn profile"]
ANSWERS = ["LinkedIn", "A friend", "Yes", "No", "120k", "negotiable", None, ""]

# (name, type key): the reason types are fixed by Greenhouse
REASON_TYPES = {
    "WE_REJECTED_THEM": (1, "We rejected them"),
    "THEY_REJECTED_US": (2, "They rejected us"),
    "NONE_SPECIFIED": (3, "None specified"),
    "SECURITY_CONCERN": (4, "Security concern"),
}
REJECTION_REASONS = [
    ("Lacking skill(s)/qualification(s)", "WE_REJECTED_THEM"),
    ("Not a cultural fit", "WE_REJECTED_THEM"),
    ("Hired another candidate", "WE_REJECTED_THEM"),
    ("Position filled", "WE_REJECTED_THEM"),
    ("Underqualified", "WE_REJECTED_THEM"),
    ("Wasn't interested", "THEY_REJECTED_US"),
    ("Didn't like offer", "THEY_REJECTED_US"),
    ("Withdrew", "THEY_REJECTED_US"),
    ("Accepted another offer", "THEY_REJECTED_US"),
    ("Compensation expectations", "THEY_REJECTED_US"),
    ("Other", "NONE_SPECIFIED"),
    ("Spam", "SECURITY_CONCERN"),
]
WE_REJECT = [0, 1, 2, 3, 4, 10]           # indexes into REJECTION_REASONS
THEY_WITHDRAW = [5, 7, 8, 9]
OFFER_DECLINED = [6, 8, 9]

NewId = Callable[[str], int]              # entity -> a fresh Greenhouse id


def ts(t: datetime | None) -> str | None:
    return iso(t) if t is not None else None


# -- catalogs -----------------------------------------------------------------------------------
def organization_docs(created: datetime) -> dict[str, list[dict[str, Any]]]:
    """Departments, offices and sources: the ids jobs, candidates and applications name (the
    same constants as before these entities were served, so every other record is unchanged)."""
    stamp = iso(created)
    base = {"created_at": stamp, "updated_at": stamp}
    return {
        "departments": [{"id": i, **base, "name": n, "parent_id": None, "external_id": None}
                        for i, n in zip(DEPARTMENT_IDS, DEPARTMENT_NAMES, strict=True)],
        "offices": [{"id": i, **base, "name": n, "parent_id": None, "external_id": None,
                     "location": where, "primary_in_house_contact_user_id": None}
                    for i, n, where in zip(OFFICE_IDS, OFFICE_NAMES, OFFICE_LOCATIONS,
                                           strict=True)],
        "sources": [{"id": i, **base, "name": n,
                     "type": {"id": SOURCE_TYPES[n][0], "name": SOURCE_TYPES[n][1]}}
                    for i, n in SOURCE_IDS.items()],
    }


def rejection_reason_docs(first_id: int, created: datetime) -> list[dict[str, Any]]:
    docs = []
    stamp = iso(created)
    for i, (name, key) in enumerate(REJECTION_REASONS):
        type_id, type_name = REASON_TYPES[key]
        docs.append({"id": first_id + i, "created_at": stamp, "updated_at": stamp,
                     "name": name, "type": {"id": type_id, "key": key, "name": type_name}})
    return docs


def user_doc(rng: random.Random, uid: int, person: Person, start: datetime) -> dict[str, Any]:
    created = start - timedelta(days=randrange(rng, 200, 1200))
    updated = start - timedelta(days=randrange(rng, 5, 150), seconds=randrange(rng, 86400))
    first, last = person.first.strip(), person.last.strip()
    email = f"{person.ascii_first}.{person.ascii_last}{uid}@talentvault-demo.example"
    tags = [{"id": i, "name": n} for i, n in INTERVIEWER_TAGS if rng.random() < 0.2]
    return {
        "id": uid, "created_at": iso(created), "updated_at": iso(max(created, updated)),
        "first_name": first, "last_name": last, "primary_email": email,
        "job_title": USER_TITLES[uid % len(USER_TITLES)] if uid > 2 else "Head of Talent",
        "agency_id": None, "name": f"{first} {last}",
        "deactivated": uid > 5 and rng.random() < 0.05, "site_admin": uid <= 2,
        "employee_id": f"E{10000 + uid}" if rng.random() < 0.7 else None,
        "linked_candidate_ids": [], "office_ids": [choice(rng, OFFICE_IDS)],
        "department_ids": [choice(rng, DEPARTMENT_IDS)] if rng.random() < 0.6 else [],
        "interviewer_tags": tags, "emails": [email], "custom_fields": {},
    }


# -- jobs and their interview plans ------------------------------------------------------------
@dataclass
class Stage:
    id: int
    name: str
    position: int
    since: datetime          # the stage is on the plan from here ...
    until: datetime | None   # ... to here (None: still active)


@dataclass
class JobPlan:
    """A job and its interview plan through time (what the generator needs to route
    applications without reading the store)."""

    id: int
    name: str
    status: str
    created: datetime
    opened: datetime | None
    closed: datetime | None
    positions: list[list[Stage]] = field(default_factory=list)
    recruiter_id: int | None = None
    coordinator_id: int | None = None

    def open_at(self, t: datetime) -> bool:
        return (self.opened is not None and self.opened <= t
                and (self.closed is None or t < self.closed))

    def stage_at(self, position: int, t: datetime) -> Stage:
        versions = self.positions[position]
        for s in versions:
            if s.since <= t and (s.until is None or t < s.until):
                return s
        return versions[-1]


def job_name(rng: random.Random) -> str:
    return f"{choice(rng, JOB_LEVELS)}{choice(rng, JOB_TITLES)}{choice(rng, JOB_REGIONS)}"


def pick_stage_name(rng: random.Random, position: int, avoid: str | None = None) -> str:
    variants = [v for v in STAGE_VARIANTS[position] if v != avoid] or STAGE_VARIANTS[position]
    if avoid is None and rng.random() < CANONICAL_NAME_FRACTION:
        return variants[0]
    return choice(rng, variants)


def new_job_plan(rng: random.Random, new_id: NewId, created: datetime, status: str,
                 opened: datetime | None, closed: datetime | None, users: list[int],
                 edit_until: datetime | None = None) -> JobPlan:
    """A job with an interview plan; with `edit_until`, maybe a plan edit before that time
    (a stage replaced by a differently named one: the drift of stage names over time)."""
    job = JobPlan(new_id("jobs"), job_name(rng), status, created, opened, closed,
                  recruiter_id=choice(rng, users), coordinator_id=choice(rng, users))
    for position in range(len(STAGE_VARIANTS)):
        if rng.random() < OPTIONAL_POSITIONS.get(position, 0.0):
            continue
        name = pick_stage_name(rng, position)
        job.positions.append([Stage(new_id("job_interview_stages"), name, position, created,
                                    None)])
    if edit_until is not None and opened is not None and rng.random() < PLAN_EDIT_FRACTION:
        edit_plan(rng, job, new_id, opened + (edit_until - opened) * rng.uniform(0.2, 0.9))
    return job


def edit_plan(rng: random.Random, job: JobPlan, new_id: NewId, at: datetime) -> Stage | None:
    """Replace one middle stage by a differently named one from `at` on."""
    middle = [i for i, versions in enumerate(job.positions)
              if len(STAGE_VARIANTS[versions[-1].position]) > 1]
    if not middle:
        return None
    versions = job.positions[choice(rng, middle)]
    old = versions[-1]
    old.until = at
    new = Stage(new_id("job_interview_stages"), pick_stage_name(rng, old.position, old.name),
                old.position, at, None)
    versions.append(new)
    return new


def job_doc(job: JobPlan, rng: random.Random, updated: datetime) -> dict[str, Any]:
    return {
        "id": job.id, "created_at": iso(job.created), "updated_at": iso(updated),
        "name": job.name,
        "requisition_id": f"REQ-{job.id % 100000:05d}" if rng.random() < 0.8 else None,
        "notes": "<p>Hiring plan approved.</p>" if rng.random() < 0.3 else None,
        "confidential": False, "status": job.status, "opened_at": ts(job.opened),
        "closed_at": ts(job.closed), "is_template": False, "copied_from_id": None,
        "department_id": choice(rng, DEPARTMENT_IDS),
        "office_ids": [choice(rng, OFFICE_IDS)] if rng.random() < 0.9 else [],
        "custom_fields": {"employment_type": {
            "name": "Employment Type", "type": "single_select",
            "value": choice(rng, ["Full-time", "Full-time", "Contract", "Part-time"])}},
    }


def stage_docs(job: JobPlan) -> list[dict[str, Any]]:
    docs = []
    for sort_order, versions in enumerate(job.positions):
        for s in versions:
            changed = s.until or s.since
            docs.append({"id": s.id, "created_at": iso(s.since), "updated_at": iso(changed),
                         "job_id": job.id, "sort_order": sort_order, "name": s.name,
                         "active": s.until is None})
    return docs


# -- candidates -------------------------------------------------------------------------------
def candidate_doc(rng: random.Random, cid: int, person: Person, email: str | None,
                  created: datetime, status_value: str | None) -> dict[str, Any]:
    """A candidate record (timestamps are refreshed by `touch_candidate`)."""
    emails = []
    if email is not None:
        emails.append({"value": email, "type": "personal"})
    if person.work_email:
        emails.append({"value": person.work_email, "type": "work"})
    phone_types = ["mobile", "home", "work", "other"]
    stamp = iso(created)
    return {
        "id": cid, "created_at": stamp, "updated_at": stamp,
        "first_name": person.first, "last_name": person.last,
        "preferred_name": person.first.strip()[:3] if rng.random() < 0.03 else None,
        "company": person.company, "title": person.title, "last_activity_at": stamp,
        "private": rng.random() < 0.01, "can_email": rng.random() < 0.9,
        "time_zone": person.time_zone,
        "tags": sorted(rng.sample(CANDIDATE_TAGS, choice(rng, [0, 0, 0, 1, 2]))),
        "linked_user_ids": [],
        "phone_numbers": [{"value": p, "type": phone_types[i % 4]}
                          for i, p in enumerate(person.phones)],
        "addresses": ([{"value": address(rng, person), "type": "home"}]
                      if rng.random() < 0.3 else []),
        "email_addresses": emails,
        "website_addresses": ([{"value": f"https://{person.ascii_first}.example.com",
                                "type": "personal"}] if rng.random() < 0.1 else []),
        "social_media_addresses": ([{"value": f"https://linkedin.example/in/"
                                     f"{person.ascii_first}-{person.ascii_last}"}]
                                   if rng.random() < 0.2 else []),
        "custom_fields": {STATUS_FIELD_KEY: {"name": STATUS_FIELD_NAME, "type": "short_text",
                                             "value": status_value}},
    }


def touch_candidate(doc: dict[str, Any], t: datetime | str) -> None:
    """Activity on one of the candidate's applications at `t` (a datetime or canonical text)."""
    stamp = t if isinstance(t, str) else iso(t)
    if doc["last_activity_at"] is None or doc["last_activity_at"] < stamp:
        doc["last_activity_at"] = stamp
    if doc["updated_at"] < stamp:
        doc["updated_at"] = stamp


# -- applications and their life ---------------------------------------------------------------
@dataclass
class AppDocs:
    """Every record one application produced."""

    application: dict[str, Any]
    stages: list[dict[str, Any]] = field(default_factory=list)
    interviews: list[dict[str, Any]] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)
    rejection: dict[str, Any] | None = None


def application_doc(rng: random.Random, aid: int, cid: int, job: JobPlan, applied: datetime,
                    person: Person) -> dict[str, Any]:
    source_id = choice(rng, SOURCE_ID_LIST)
    stamp = iso(applied)
    return {
        "id": aid, "created_at": stamp, "updated_at": stamp,
        "agency_note_id": None, "candidate_id": cid, "coordinator_id": job.coordinator_id,
        "job_id": job.id, "job_post_id": job.id + 900_000_000, "recruiter_id": job.recruiter_id,
        "referrer_id": (800_000 + randrange(rng, 1000)) if source_id == 30003 else None,
        "source_id": source_id, "stage_id": None, "stage_name": None, "status": "in_process",
        "needs_decision": False, "prospect": False, "rejected_at": None,
        "last_activity_at": stamp, "location_address": person.city,
        "answers": [{"question": q, "answer": choice(rng, ANSWERS)}
                    for q in QUESTIONS[: randrange(rng, 0, 3)]],
        "prospective_job_ids": [], "custom_fields": {},
    }


def prospect_doc(rng: random.Random, aid: int, cid: int, job: JobPlan, t: datetime,
                 person: Person) -> dict[str, Any]:
    """A prospect application that was later converted into a candidate application."""
    doc = application_doc(rng, aid, cid, job, t, person)
    doc.update(job_id=None, job_post_id=None, status="converted", prospect=True,
               prospective_job_ids=[job.id], answers=[])
    return doc


def touch_application(app: dict[str, Any], t: datetime, write: datetime | None = None) -> None:
    app["last_activity_at"] = stamp = iso(t)
    app["updated_at"] = iso(write) if write else stamp


def enter_stage(app: dict[str, Any], stage_id: int, stage_name: str, row_id: int, t: datetime,
                write: datetime | None = None) -> dict[str, Any]:
    """Move `app` into a stage at `t`: returns the new application_stages row (current)."""
    app["stage_id"], app["stage_name"] = stage_id, stage_name
    touch_application(app, t, write)
    written = app["updated_at"]
    return {"id": row_id, "created_at": written, "updated_at": written,
            "application_id": app["id"], "job_interview_stage_id": stage_id,
            "entered_at": app["last_activity_at"], "exited_at": None, "days_in_stage": 0,
            "current": True}


def exit_stage(row: dict[str, Any], t: datetime, write: datetime | None = None) -> None:
    row["exited_at"] = stamp = iso(t)
    row["current"] = False
    row["days_in_stage"] = days_between(row["entered_at"], t)
    row["updated_at"] = iso(write) if write else stamp


def days_between(entered: str, t: datetime) -> int:
    return max(0, (t - parse_ts(entered)).days)


def finish(app: dict[str, Any], status: str, t: datetime, write: datetime | None = None) -> None:
    """A terminal state: hired or rejected (stage_id/stage_name are null then, per v3)."""
    app["status"] = status
    app["stage_id"], app["stage_name"] = None, None
    app["needs_decision"] = False
    if status == "rejected":
        app["rejected_at"] = iso(t)
    touch_application(app, t, write)


def rejection_doc(rid: int, app_id: int, reason_id: int, t: datetime, by: int | None,
                  note_id: int | None, write: datetime | None = None) -> dict[str, Any]:
    stamp = iso(t)
    written = iso(write) if write else stamp
    return {"id": rid, "created_at": written, "updated_at": written,
            "application_id": app_id, "rejected_by_id": by, "rejection_note_id": note_id,
            "rejection_reason_id": reason_id, "rejected_at": stamp,
            "question_custom_fields": None}


def interview_doc(rng: random.Random, iid: int, app: dict[str, Any], stage_id: int,
                  created: datetime, starts: datetime | None, organizer: int) -> dict[str, Any]:
    """An interview; `starts` None means still to be scheduled."""
    scheduled = starts is not None
    video = rng.random() < 0.7
    stamp = iso(created)
    return {
        "id": iid, "created_at": stamp, "updated_at": stamp,
        "job_id": app["job_id"], "application_id": app["id"],
        "job_interview_id": stage_id * 10 + 1,   # the plan's interview slot of that stage
        "starts_at": ts(starts), "ends_at": ts(starts + timedelta(hours=1)) if starts else None,
        "location": (None if video else choice(rng, ["HQ - Room 4B", "Cafe Lobby", "Zoom"]))
        if scheduled else None,
        "status": "scheduled" if scheduled else "to_be_scheduled",
        "organizer_id": organizer if scheduled else None,
        "scheduled_at": stamp if scheduled else None,
        "all_day_start_on": None, "all_day_end_on": None,
        "external_event_id": f"evt{iid:x}" if scheduled else None,
        "video_conferencing_url": (f"https://meet.example/{iid:x}" if video and scheduled
                                   else None),
        "availability_received_at": stamp if scheduled else None,
    }


def offer_doc(rng: random.Random, oid: int, app: dict[str, Any], version: int, t: datetime,
              write: datetime | None = None) -> dict[str, Any]:
    starts = (t + timedelta(days=randrange(rng, 14, 45))).date().isoformat()
    written = iso(write or t)
    return {
        "id": oid, "created_at": written, "updated_at": written,
        "version": version, "application_id": app["id"], "job_id": app["job_id"],
        "candidate_id": app["candidate_id"],
        "opening_id": (app["job_id"] * 10 + 1) if rng.random() < 0.7 else None,
        "status": "Created", "starts_on": starts,
        "sent_on": (t + timedelta(days=1)).date().isoformat() if rng.random() < 0.8 else None,
        "resolved_at": None,
        "custom_fields": {"salary": {"name": "Salary", "type": "currency",
                                     "value": {"amount": randrange(rng, 60, 220) * 1000,
                                               "unit": "USD"}}},
    }


def dwell(rng: random.Random, position: int) -> float:
    low, high = DWELL_DAYS.get(position, DWELL_DAYS["default"])
    return rng.uniform(low, high)


def simulate(rng: random.Random, new_id: NewId, app: dict[str, Any], job: JobPlan,
             applied: datetime, until: datetime, users: list[int],
             reason_ids: list[int]) -> AppDocs:
    """Play an application's history from `applied` up to `until` (the world's start)."""
    out = AppDocs(app)
    position, t = 0, applied
    while True:
        stage = job.stage_at(position, t)
        row = enter_stage(app, stage.id, stage.name, new_id("application_stages"), t)
        out.stages.append(row)
        if position == len(job.positions) - 1:
            _offer_phase(rng, new_id, out, app, t, until, users, reason_ids)
            return out
        leave = plus_days(t, dwell(rng, stage.position), rng)
        if stage.position in INTERVIEW_POSITIONS:
            _interview(rng, new_id, out, app, stage, t, leave, until, users)
        if leave >= until:
            app["needs_decision"] = rng.random() < 0.3
            return out
        x = rng.random()
        if x < REJECT_AT.get(stage.position, 0.2) + WITHDRAW_AT:
            reasons = WE_REJECT if x < REJECT_AT.get(stage.position, 0.2) else THEY_WITHDRAW
            _reject(rng, new_id, out, app, row, leave, users, reason_ids[choice(rng, reasons)])
            return out
        exit_stage(row, leave)
        position, t = position + 1, leave


def _interview(rng: random.Random, new_id: NewId, out: AppDocs, app: dict[str, Any],
               stage: Stage, entered: datetime, leave: datetime, until: datetime,
               users: list[int]) -> None:
    """The stage's interview: before the application left the stage, or still to come."""
    bound = min(leave, until)
    created = next_work_time(entered + timedelta(hours=rng.uniform(1, 30)), rng)
    if created >= bound:
        return
    if leave < until:
        starts: datetime | None = created + (leave - created) * rng.uniform(0.2, 0.8)
    else:
        starts = plus_days(created, rng.uniform(0.5, 4), rng) if rng.random() < 0.9 else None
    doc = interview_doc(rng, new_id("interviews"), app, stage.id, created, starts,
                        choice(rng, users))
    if starts is not None and starts + timedelta(hours=1) < until:
        done = min(starts + timedelta(hours=rng.uniform(1, 40)), until - timedelta(minutes=1))
        current = leave >= until
        doc["status"] = ("awaiting_feedback" if current and rng.random() < 0.3
                         else "complete")
        doc["updated_at"] = iso(max(done, created))
    out.interviews.append(doc)


def _offer_phase(rng: random.Random, new_id: NewId, out: AppDocs, app: dict[str, Any],
                 entered: datetime, until: datetime, users: list[int],
                 reason_ids: list[int]) -> None:
    offer = offer_doc(rng, new_id("offers"), app, 1, entered)
    out.offers.append(offer)
    if rng.random() < OFFER_REVISION:
        revised = plus_days(entered, rng.uniform(1, 4), rng)
        if revised < until:
            offer["status"], offer["updated_at"] = "Deprecated", iso(revised)
            offer = offer_doc(rng, new_id("offers"), app, 2, revised)
            out.offers.append(offer)
            entered = revised
    resolved = plus_days(entered, rng.uniform(2, 7), rng)
    if resolved >= until:
        app["needs_decision"] = True
        return
    offer["resolved_at"] = offer["updated_at"] = iso(resolved)
    row = out.stages[-1]
    if rng.random() < OFFER_ACCEPT:
        offer["status"] = "Accepted"
        exit_stage(row, resolved)
        finish(app, "hired", resolved)
    else:
        offer["status"] = "Rejected"
        _reject(rng, new_id, out, app, row, resolved, users,
                reason_ids[choice(rng, OFFER_DECLINED)])


def _reject(rng: random.Random, new_id: NewId, out: AppDocs, app: dict[str, Any],
            row: dict[str, Any], t: datetime, users: list[int], reason_id: int) -> None:
    exit_stage(row, t)
    finish(app, "rejected", t)
    by = None if rng.random() < 0.1 else choice(rng, users)
    note = (900_000_000 + app["id"] % 10_000_000) if rng.random() < 0.4 else None
    out.rejection = rejection_doc(new_id("rejection_details"), app["id"], reason_id, t, by, note)
