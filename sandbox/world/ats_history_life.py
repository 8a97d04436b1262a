"""Daily life of the rest of the Greenhouse candidate record (world/ats_history.py).

On its own random stream (`<seed>/<day>/greenhouse-history`, played after the day's other
events): scorecards are drafted and submitted after interviews, notes added (some quoting the
candidate's email or phone), attachments uploaded. Mirrored, without drawing randomness, from
the day's other events (so they stay the same): a tag added to a candidate is applied
(`applied_candidate_tags`), a new job gets its post, a closed job's post goes offline, a merge
moves the duplicate's notes and attachments to the survivor, a deletion takes them along.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from typing import Any

from sandbox.store import Store
from sandbox.world import ats_history as h
from sandbox.world.clock import iso
from sandbox.world.day import IN_PROCESS, Day, play_stream

# per candidate of the world's size per day (weekends: WEEKEND_FACTOR of that); each kind at
# least once a day when there is something to act on
RATES = {"greenhouse_scorecards_submitted": 0.004, "greenhouse_notes_added": 0.004,
         "greenhouse_attachments_added": 0.002}
WEEKEND_FACTOR = 0.3
# an interview held whose scorecard is missing or still a draft
FEEDBACK_DUE = (
    "json_extract(doc, '$.status') IN ('complete', 'awaiting_feedback') AND NOT EXISTS ("
    "SELECT 1 FROM records s WHERE s.source = 'greenhouse' AND s.entity = 'scorecards' "
    "AND s.parent = CAST(json_extract(records.doc, '$.application_id') AS TEXT) "
    "AND json_extract(s.doc, '$.interviewed_at') = json_extract(records.doc, '$.starts_at') "
    "AND json_extract(s.doc, '$.status') = 'complete')")


def new_id(day: Day, entity: str) -> int:
    return day.store.next_id("greenhouse", entity, start=h.ID_BASE[entity])


# -- mirrored from the day's other events (no randomness) ----------------------------------------
def tags_applied(day: Day, cand: dict[str, Any], before: list[str]) -> None:
    """The candidate's tags not in `before` are applied now."""
    for tag in cand["tags"]:
        if tag not in before and tag in h.TAG_IDS:
            day.save("greenhouse", "applied_candidate_tags", h.applied_tag_doc(
                new_id(day, "applied_candidate_tags"), cand["id"], tag, iso(day.stamp())))


def merged(day: Day, survivor: dict[str, Any], dup_id: int, before: list[str],
           moved_apps: list[str]) -> None:
    """Greenhouse moves the duplicate's notes to the survivor, and the attachments of the
    applications that moved; its tags were joined into the survivor's (applied there)."""
    for note in day.children("notes", dup_id):
        note.doc.update(candidate_id=survivor["id"], updated_at=iso(day.stamp()))
        day.save("greenhouse", "notes", note.doc)
    for app_id in moved_apps:
        for row in day.children("attachments", app_id):
            row.doc.update(candidate_id=survivor["id"], updated_at=iso(day.stamp()))
            day.save("greenhouse", "attachments", row.doc)
    for row in day.children("applied_candidate_tags", dup_id):
        day.delete("greenhouse", "applied_candidate_tags", row.id)
    tags_applied(day, survivor, before)


def candidate_deleted(day: Day, cid: str | int, app_ids: list[str]) -> None:
    """A deleted candidate's notes, tags, and their applications' scorecards and attachments."""
    for app_id in app_ids:
        for entity in ("scorecards", "attachments"):
            for row in day.children(entity, app_id):
                day.delete("greenhouse", entity, row.id)
    for entity in ("notes", "applied_candidate_tags"):
        for row in day.children(entity, cid):
            day.delete("greenhouse", entity, row.id)


def job_posted(day: Day, job: dict[str, Any]) -> None:
    day.save("greenhouse", "job_posts", h.job_post_doc(job, iso(day.stamp())))


def job_post_closed(day: Day, job: dict[str, Any]) -> None:
    post = day.store.get("greenhouse", "job_posts", job["id"] + h.JOB_POST_OFFSET)
    if post is not None:
        post.update(live=False, updated_at=iso(day.stamp()))
        day.save("greenhouse", "job_posts", post)


# -- the stream's own events ----------------------------------------------------------------------
def scorecard_submitted(day: Day) -> bool:
    """An interviewer drafts or submits the scorecard of a past interview."""
    picked = day.pick("greenhouse", "interviews", FEEDBACK_DUE)
    if picked is None:
        return False
    iv = picked.doc
    found = day.store.select("greenhouse", "scorecards",
                             "parent = ? AND json_extract(doc, '$.interviewed_at') = ?",
                             (str(iv["application_id"]), iv["starts_at"]))
    stamp = day.stamp()
    app = day.store.get("greenhouse", "applications", iv["application_id"]) or {}
    cand = day.store.get("greenhouse", "candidates", app.get("candidate_id")) or {"id": None}
    done = iv["status"] == "complete" or bool(found)
    sid = int(found[0].id) if found else new_id(day, "scorecards")
    created = found[0].doc["created_at"] if found else iso(stamp)
    doc = h.scorecard_doc(day.rng, sid, iv, found[0].doc["interviewer_id"] if found
                          else day.rng.choice(day.users()), stamp if done else None, cand,
                          created)
    doc["updated_at"] = iso(stamp)
    day.save("greenhouse", "scorecards", doc)
    return True


def note_added(day: Day) -> bool:
    picked = day.pick("greenhouse", "candidates")
    if picked is None:
        return False
    apps = day.children("applications", picked.id)
    app_id = int(day.rng.choice(apps).id) if apps and day.rng.random() < 0.5 else None
    doc = h.note_doc(day.rng, new_id(day, "notes"), picked.doc, app_id,
                     day.rng.choice(day.users()), day.stamp())
    day.save("greenhouse", "notes", doc)
    return True


def attachment_added(day: Day) -> bool:
    picked = day.pick("greenhouse", "applications", IN_PROCESS)
    if picked is None:
        return False
    cand = day.store.get("greenhouse", "candidates", picked.doc["candidate_id"])
    if cand is None:
        return False
    kind = day.rng.choice(["resume", "cover_letter", "take_home_test", "other"])
    day.save("greenhouse", "attachments", h.attachment_doc(
        new_id(day, "attachments"), picked.doc, cand, kind, day.stamp()))
    return True


EVENTS = {"greenhouse_scorecards_submitted": scorecard_submitted,
          "greenhouse_notes_added": note_added,
          "greenhouse_attachments_added": attachment_added}


def play_day(store: Store, day: datetime, seed: int, size: int) -> Counter[str]:
    """The day's own events (the caller holds the day's transaction, moves the clock after)."""
    rng = random.Random(f"{seed}/{day.date().isoformat()}/greenhouse-history")
    return play_stream(store, day, rng, size, RATES, EVENTS, WEEKEND_FACTOR)
