"""Daily-life events in Greenhouse: applications, stage moves, interviews, offers, hires,
rejections, withdrawals, profile edits, merges, deletions, jobs and interview-plan edits (and,
mirrored without randomness, what they mean for tags, notes, attachments and job posts:
world/ats_history_life.py).

Each event acts at `day.at` (the event time: entered_at, rejected_at, resolved_at ...) and gives
every record it writes a fresh stamp (`day.stamp()`) as its `updated_at`, so an incremental
extract by update time sees every change. Each returns True when it found something to act on.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sandbox.world import ats
from sandbox.world import ats_history_life as history
from sandbox.world.clock import iso, plus_days
from sandbox.world.day import IN_PROCESS, OPEN_JOB, PERSON_INDEX_BASE, Day
from sandbox.world.people import (
    DUPLICATE_FRACTION,
    STATUS_FIELD_KEY,
    STATUS_FIELD_NAME,
    Person,
    email_variant,
    make_person,
    make_phone,
    status_value,
)

# stage name -> plan position, to know which stages hold interviews
POSITION_OF = {name: i for i, names in enumerate(ats.STAGE_VARIANTS) for name in names}
JOB_CLOSES_ON_HIRE = 0.2


# -- candidates and applications ----------------------------------------------------------------
def new_candidate(day: Day) -> bool:
    """Someone applies for the first time (now and then a person who is already a candidate,
    typing their email differently: a duplicate record)."""
    job = day.pick("greenhouse", "jobs", OPEN_JOB, avoid_touched=False)
    if job is None:
        return False
    cid = day.gh_id("candidates")
    person, email = _duplicate_person(day) if day.rng.random() < DUPLICATE_FRACTION else (
        None, None)
    if person is None:
        person = make_person(day.rng, PERSON_INDEX_BASE["candidate"] + cid)
        email = person.email
    _, value = status_value(day.rng, iso(day.at))
    cand = ats.candidate_doc(day.rng, cid, person, email, day.at, value)
    if not _apply(day, cand, person, job.doc):
        return False
    history.tags_applied(day, cand, [])
    return True


def _duplicate_person(day: Day) -> tuple[Person | None, str | None]:
    row = day.pick("greenhouse", "candidates", "email LIKE '%_@_%._%'", avoid_touched=False)
    if row is None:
        return None, None
    doc = row.doc
    email = doc["email_addresses"][0]["value"]
    first, last = doc["first_name"] or "", doc["last_name"] or ""
    person = Person(index=-1, first=first, last=last, ascii_first="x", ascii_last="y",
                    email=email, email_kind="valid", work_email=None,
                    phones=[p["value"] for p in doc["phone_numbers"]],
                    company=doc["company"], title=doc["title"], time_zone=doc["time_zone"])
    return person, email_variant(day.rng, email)


def new_application(day: Day) -> bool:
    """An existing candidate applies to another job."""
    cand = day.pick("greenhouse", "candidates")
    job = day.pick("greenhouse", "jobs", OPEN_JOB, avoid_touched=False)
    if cand is None or job is None:
        return False
    doc = cand.doc
    person = Person(index=-1, first=doc["first_name"] or "", last=doc["last_name"] or "",
                    ascii_first="x", ascii_last="y", email=None, email_kind="none",
                    work_email=None)
    return _apply(day, doc, person, job.doc)


def _apply(day: Day, cand: dict[str, Any], person: Person, job: dict[str, Any]) -> bool:
    """The candidate applies to the job: an application in its first stage (False when the
    job has no interview plan to enter)."""
    stages = day.job_stages(job["id"])
    if not stages:
        return False
    plan = ats.JobPlan(job["id"], job["name"], job["status"], day.at, day.at, None,
                       recruiter_id=day.rng.choice(day.users()),
                       coordinator_id=day.rng.choice(day.users()))
    app = ats.application_doc(day.rng, day.gh_id("applications"), cand["id"], plan, day.at,
                              person)
    row = ats.enter_stage(app, stages[0]["id"], stages[0]["name"],
                          day.gh_id("application_stages"), day.at, day.stamp())
    app["updated_at"] = iso(day.stamp())
    _touch_candidate(day, cand)
    day.save("greenhouse", "application_stages", row)
    day.save("greenhouse", "applications", app)
    return True


def _touch_candidate(day: Day, cand: dict[str, Any]) -> None:
    cand["last_activity_at"] = iso(day.at)
    cand["updated_at"] = iso(day.stamp())
    day.save("greenhouse", "candidates", cand)


def _candidate_of(day: Day, app: dict[str, Any]) -> None:
    cand = day.store.get("greenhouse", "candidates", app["candidate_id"])
    if cand is not None:
        _touch_candidate(day, cand)


def _current_row(day: Day, app_id: int) -> dict[str, Any] | None:
    rows = day.children("application_stages", app_id, "json_extract(doc, '$.current') = 1")
    return rows[-1].doc if rows else None


def _close_row(day: Day, app_id: int) -> None:
    row = _current_row(day, app_id)
    if row is not None:
        ats.exit_stage(row, day.at, day.stamp())
        day.save("greenhouse", "application_stages", row)


# -- stage moves, interviews, offers --------------------------------------------------------------
def stage_move(day: Day) -> bool:
    """An application advances to the next stage of its job's plan: the stage row closes, a new
    one opens; interview stages get an interview, the Offer stage an offer."""
    picked = day.pick("greenhouse", "applications",
                      IN_PROCESS + " AND json_extract(doc, '$.stage_name') != 'Offer'")
    if picked is None:
        return False
    app = picked.doc
    stages = day.job_stages(app["job_id"], active_only=False)
    current = next((s for s in stages if s["id"] == app["stage_id"]), None)
    order = current["sort_order"] if current else -1
    ahead = [s for s in stages if s["active"] and s["sort_order"] > order]
    if not ahead:
        return False
    stage = ahead[0]
    _close_row(day, app["id"])
    row = ats.enter_stage(app, stage["id"], stage["name"], day.gh_id("application_stages"),
                          day.at, day.stamp())
    app["needs_decision"] = False
    app["updated_at"] = iso(day.stamp())
    day.save("greenhouse", "application_stages", row)
    day.save("greenhouse", "applications", app)
    _candidate_of(day, app)
    if stage["sort_order"] == max(s["sort_order"] for s in stages):
        offer = ats.offer_doc(day.rng, day.gh_id("offers"), app, 1, day.at, day.stamp())
        day.save("greenhouse", "offers", offer)
    elif POSITION_OF.get(stage["name"]) in ats.INTERVIEW_POSITIONS:
        starts = plus_days(day.at, day.rng.uniform(1, 4), day.rng)
        doc = ats.interview_doc(day.rng, day.gh_id("interviews"), app, stage["id"], day.at,
                                starts, day.rng.choice(day.users()))
        doc["updated_at"] = iso(day.stamp())
        day.save("greenhouse", "interviews", doc)
    return True


def interview_progress(day: Day) -> bool:
    """An interview moves on: gets scheduled, takes place, or its feedback comes in."""
    picked = day.pick("greenhouse", "interviews",
                      "json_extract(doc, '$.status') IN ('to_be_scheduled', 'awaiting_feedback')"
                      " OR (json_extract(doc, '$.status') = 'scheduled' "
                      "AND json_extract(doc, '$.ends_at') < ?)", (iso(day.at),))
    if picked is None:
        return False
    doc = picked.doc
    if doc["status"] == "to_be_scheduled":
        starts = plus_days(day.at, day.rng.uniform(1, 4), day.rng)
        doc.update(status="scheduled", starts_at=iso(starts),
                   ends_at=iso(starts + timedelta(hours=1)),
                   organizer_id=day.rng.choice(day.users()), scheduled_at=iso(day.at),
                   external_event_id=f"evt{doc['id']:x}", availability_received_at=iso(day.at))
    else:
        doc["status"] = "complete" if doc["status"] == "awaiting_feedback" or \
            day.rng.random() < 0.7 else "awaiting_feedback"
    doc["updated_at"] = iso(day.stamp())
    day.save("greenhouse", "interviews", doc)
    return True


def _open_offer(day: Day) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An unresolved offer whose application is still in process."""
    for _ in range(10):
        picked = day.pick("greenhouse", "offers", "json_extract(doc, '$.status') = 'Created'")
        if picked is None:
            return None
        app = day.store.get("greenhouse", "applications", picked.doc["application_id"])
        if app is not None and app["status"] == "in_process":
            return picked.doc, app
    return None


def offer_accepted(day: Day) -> bool:
    """The candidate accepts: the offer resolves, the application is hired; sometimes that fills
    the job and it closes."""
    found = _open_offer(day)
    if found is None:
        return False
    offer, app = found
    offer.update(status="Accepted", resolved_at=iso(day.at), updated_at=iso(day.stamp()))
    day.save("greenhouse", "offers", offer)
    _close_row(day, app["id"])
    ats.finish(app, "hired", day.at, day.stamp())
    day.save("greenhouse", "applications", app)
    _candidate_of(day, app)
    if day.rng.random() < JOB_CLOSES_ON_HIRE:
        job = day.store.get("greenhouse", "jobs", app["job_id"])
        if job is not None and job["status"] == "open":
            job.update(status="closed", closed_at=iso(day.at), updated_at=iso(day.stamp()))
            day.save("greenhouse", "jobs", job)
    return True


def offer_declined(day: Day) -> bool:
    """The candidate declines: the offer is rejected and so is the application (a reason of
    type "They rejected us")."""
    found = _open_offer(day)
    if found is None:
        return False
    offer, app = found
    offer.update(status="Rejected", resolved_at=iso(day.at), updated_at=iso(day.stamp()))
    day.save("greenhouse", "offers", offer)
    _reject(day, app, ats.OFFER_DECLINED)
    return True


def offer_revised(day: Day) -> bool:
    """A new version of an offer: the old one is deprecated."""
    found = _open_offer(day)
    if found is None:
        return False
    offer, app = found
    offer.update(status="Deprecated", updated_at=iso(day.stamp()))
    day.save("greenhouse", "offers", offer)
    new = ats.offer_doc(day.rng, day.gh_id("offers"), app, offer["version"] + 1, day.at,
                        day.stamp())
    day.save("greenhouse", "offers", new)
    return True


def rejection(day: Day) -> bool:
    """The hiring team rejects an application (a "We rejected them" reason)."""
    return _reject_one(day, ats.WE_REJECT)


def withdrawal(day: Day) -> bool:
    """The candidate withdraws: in v3 a rejection with a "They rejected us" reason."""
    return _reject_one(day, ats.THEY_WITHDRAW)


def _reject_one(day: Day, reasons: list[int]) -> bool:
    picked = day.pick("greenhouse", "applications",
                      IN_PROCESS + " AND json_extract(doc, '$.stage_name') != 'Offer'")
    if picked is None:
        return False
    _reject(day, picked.doc, reasons)
    return True


def _reject(day: Day, app: dict[str, Any], reasons: list[int]) -> None:
    names = {ats.REJECTION_REASONS[i][0] for i in reasons}
    rows = day.store.select("greenhouse", "rejection_reasons")
    wanted = [int(r.id) for r in rows if r.doc["name"] in names] or [int(r.id) for r in rows]
    reason = day.rng.choice(wanted) if wanted else None
    _close_row(day, app["id"])
    ats.finish(app, "rejected", day.at, day.stamp())
    day.save("greenhouse", "applications", app)
    by = None if day.rng.random() < 0.1 else day.rng.choice(day.users())
    detail = ats.rejection_doc(day.gh_id("rejection_details"), app["id"], reason, day.at, by,
                               None, day.stamp())
    day.save("greenhouse", "rejection_details", detail)
    _candidate_of(day, app)


# -- candidate records ------------------------------------------------------------------------
def candidate_edit(day: Day) -> bool:
    """A recruiter edits a profile: a phone, the "Candidate Status" field, a tag, a title."""
    picked = day.pick("greenhouse", "candidates")
    if picked is None:
        return False
    doc, rng = picked.doc, day.rng
    kind = rng.randrange(4)
    tags_before = doc["tags"]
    if kind == 0:
        doc["phone_numbers"] = doc["phone_numbers"] + [
            {"value": make_phone(rng)[0], "type": "mobile"}]
    elif kind == 1:
        fields = doc.get("custom_fields") or {}
        fields[STATUS_FIELD_KEY] = {"name": STATUS_FIELD_NAME, "type": "short_text",
                                    "value": status_value(rng, iso(day.at))[1]}
        doc["custom_fields"] = fields
    elif kind == 2:
        tag = rng.choice(["Silver Medalist", "Boomerang", "Referral", "Talent Pool"])
        doc["tags"] = sorted(set(doc["tags"]) | {tag})
    else:
        doc["title"] = rng.choice(["Senior Software Engineer", "Team Lead", "Consultant", None])
    doc["updated_at"] = iso(day.stamp())
    day.save("greenhouse", "candidates", doc)
    history.tags_applied(day, doc, tags_before)
    return True


def merge(day: Day) -> bool:
    """A recruiter merges a duplicate candidate record into the older one: the duplicate ceases
    to exist (tombstone with merged_into), its applications (and their offers) move over."""
    pair = _duplicate_pair(day)
    if pair is None:
        return False
    survivor, dup = pair
    moved = day.children("applications", dup["id"])
    for app_row in moved:
        app = app_row.doc
        app["candidate_id"] = survivor["id"]
        app["updated_at"] = iso(day.stamp())
        day.save("greenhouse", "applications", app)
        for offer_row in day.children("offers", app["id"]):
            offer = offer_row.doc
            offer["candidate_id"] = survivor["id"]
            offer["updated_at"] = iso(day.stamp())
            day.save("greenhouse", "offers", offer)
    tags_before = survivor["tags"]
    values = {p["value"] for p in survivor["phone_numbers"]}
    survivor["phone_numbers"] += [p for p in dup["phone_numbers"] if p["value"] not in values]
    survivor["tags"] = sorted(set(survivor["tags"]) | set(dup["tags"]))
    latest = max(survivor["last_activity_at"] or "", dup["last_activity_at"] or "")
    survivor["last_activity_at"] = latest or None
    survivor["updated_at"] = iso(day.stamp())
    day.save("greenhouse", "candidates", survivor)
    day.delete("greenhouse", "candidates", dup["id"], merged_into=survivor["id"])
    history.merged(day, survivor, dup["id"], tags_before, [a.id for a in moved])
    return True


def _duplicate_pair(day: Day) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Two live candidate records with the same normalized email (oldest first): the first
    shared email at or after a random candidate's, walking the email index."""
    probe = day.pick("greenhouse", "candidates", "email IS NOT NULL", avoid_touched=False)
    if probe is None:
        return None
    for cond in ("email >= ?", "email < ?"):
        found = day.store.conn.execute(
            "SELECT email FROM records WHERE source = 'greenhouse' AND entity = 'candidates' "
            f"AND email IS NOT NULL AND {cond} GROUP BY email HAVING count(*) > 1 "
            "ORDER BY email LIMIT 1", (probe.email,)).fetchone()
        if found:
            # by the email index: left alone, SQLite walks every candidate in seq order
            same = day.store.conn.execute(
                "SELECT doc FROM records INDEXED BY records_email WHERE source = 'greenhouse' "
                "AND entity = 'candidates' AND email = ? ORDER BY seq, id LIMIT 2",
                (found[0],)).fetchall()
            return json.loads(same[0][0]), json.loads(same[1][0])
    return None


def deletion(day: Day) -> bool:
    """A candidate is deleted (e.g. a GDPR request): with every application and its children."""
    picked = day.pick("greenhouse", "candidates")
    if picked is None:
        return False
    apps = day.children("applications", picked.id)
    for app_row in apps:
        for entity in ("application_stages", "interviews", "offers", "rejection_details"):
            for child in day.children(entity, app_row.id):
                day.delete("greenhouse", entity, child.id)
        day.delete("greenhouse", "applications", app_row.id)
    day.delete("greenhouse", "candidates", picked.id)
    history.candidate_deleted(day, picked.id, [a.id for a in apps])
    return True


# -- jobs -------------------------------------------------------------------------------------
def job_opened(day: Day) -> bool:
    """A new requisition opens, with its interview plan (named the way this job's team likes)."""
    users = day.users()
    job = ats.new_job_plan(day.rng, lambda entity: day.gh_id(entity), day.at, "open", day.at,
                           None, users)
    doc = ats.job_doc(job, day.rng, day.stamp())
    doc["created_at"] = iso(day.at)
    day.save("greenhouse", "jobs", doc)
    for stage in ats.stage_docs(job):
        stage["created_at"] = stage["updated_at"] = iso(day.stamp())
        day.save("greenhouse", "job_interview_stages", stage)
    history.job_posted(day, doc)
    return True


def job_closed(day: Day) -> bool:
    picked = day.pick("greenhouse", "jobs", OPEN_JOB)
    if picked is None:
        return False
    picked.doc.update(status="closed", closed_at=iso(day.at), updated_at=iso(day.stamp()))
    day.save("greenhouse", "jobs", picked.doc)
    history.job_post_closed(day, picked.doc)
    return True


def plan_edit(day: Day) -> bool:
    """A job's interview plan is edited: a stage is replaced by one named differently (the old
    stage stays, inactive, so history still resolves; applications in it stay there)."""
    picked = day.pick("greenhouse", "jobs", OPEN_JOB)
    if picked is None:
        return False
    middle = [s for s in day.job_stages(int(picked.id))
              if len(ats.STAGE_VARIANTS[POSITION_OF.get(s["name"], 0)]) > 1]
    if not middle:
        return False
    old = day.rng.choice(middle)
    old.update(active=False, updated_at=iso(day.stamp()))
    day.save("greenhouse", "job_interview_stages", old)
    position = POSITION_OF[old["name"]]
    written = iso(day.stamp())
    new = {"id": day.gh_id("job_interview_stages"), "created_at": written,
           "updated_at": written, "job_id": old["job_id"], "sort_order": old["sort_order"],
           "name": ats.pick_stage_name(day.rng, position, old["name"]), "active": True}
    day.save("greenhouse", "job_interview_stages", new)
    return True
