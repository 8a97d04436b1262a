"""The rest of a Greenhouse candidate's record in the world: scorecards, notes, attachments and
applied candidate tags, and the reference data they name (candidate tags, custom field
definitions, close reasons, job posts). Builders return docs exactly as `GET /v3/<entity>`
returns one item (specs/ats/greenhouse-harvest-v3-schemas, all `additionalProperties: false`).

Everything here draws from its own random streams (`<seed>/chunk/<c>/greenhouse-history`,
`<seed>/catalog/greenhouse-history`; daily life in ats_history_life.py) and its own id blocks,
so a world's other records are byte-identical to a world generated before these existed.

Notes quote the candidate's email or phone now and then (what an erasure must reach); an
attachment's `url` is a download link the sandbox serves (sandbox/greenhouse/files.py), stored
under FILES_ORIGIN and rewritten to the serving address at read time.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sandbox.store import parse_ts
from sandbox.world.clock import iso
from sandbox.world.people import CANDIDATE_TAGS, STATUS_FIELD_KEY, STATUS_FIELD_NAME

# id blocks of their own, above every other Greenhouse entity's (API creates continue above)
ID_BASE = {
    "candidate_tags": 60_001,
    "close_reasons": 70_001,
    "custom_fields": 80_001,
    "scorecards": 1_000_000_001,
    "notes": 2_000_000_001,
    "attachments": 3_000_000_001,
    "applied_candidate_tags": 4_000_000_001,
}
# id room per candidate of a chunk (the most one candidate produces, with margin)
PER_CANDIDATE = {"scorecards": 64, "notes": 8, "attachments": 16, "applied_candidate_tags": 8}
JOB_POST_OFFSET = 900_000_000    # applications name `job_post_id` = job id + this (ats.py)
FILES_ORIGIN = "https://files.sandbox.invalid"   # replaced by the serving origin at read time

NOTE_FRACTION = 0.4              # candidates with notes
MAX_NOTES = 3
QUOTE_FRACTION = 0.15            # notes quoting the candidate's email or phone
RESUME_FRACTION = 0.85           # applications with a resume
COVER_LETTER_FRACTION = 0.2
DRAFT_FRACTION = 0.5             # interviews awaiting feedback with a draft scorecard

TAG_NAMES = list(dict.fromkeys([*CANDIDATE_TAGS, "Talent Pool"]))
TAG_IDS = {name: ID_BASE["candidate_tags"] + i for i, name in enumerate(TAG_NAMES)}
CLOSE_REASONS = ["Hire - New Headcount", "Hire - Backfill", "On Hold", "Not Filling",
                 "Budget Cut"]
# (field_type, name, name_key, value_type, internal_type): the fields records carry
CUSTOM_FIELDS = [
    ("candidate", STATUS_FIELD_NAME, STATUS_FIELD_KEY, "short_text", None),
    ("job", "Employment Type", "employment_type", "single_select", "employment_type"),
    ("offer", "Salary", "salary", "currency", None),
    ("application", "Desired start date", "desired_start_date", "date", None),
]
RATINGS = ["strong_no", "no", "yes", "yes", "strong_yes", "no_decision"]
TAKEAWAYS = [
    "Clear communicator, walked through trade-offs well.",
    "Solid fundamentals; a bit slow on the system design part.",
    "Great culture add, asked thoughtful questions about the team.",
    "Not enough depth for the level; might fit a junior opening.",
    "Strong yes from me 🎉 would love to work with {first}.",
]
NOTE_BODIES = [
    "Spoke with {first} about timing: available in four weeks.",
    "{first} asked about remote work and relocation support.",
    "Reference check came back positive.",
    "Sent the take-home assignment, due Friday.",
    "Candidate prefers afternoon interviews.",
    "候选人对这个职位很感兴趣。",
]
QUOTES = ["{first} asked us to use {email} from now on.",
          "Best number to reach {first}: {phone}",
          "Follow up at {email} or {phone} after the onsite."]
RECRUITING_MAILBOX = "recruiting@talentvault-demo.example"
FILE_LABELS = {"resume": "Resume", "cover_letter": "Cover_Letter",
               "take_home_test": "Take_Home_Test", "other": "Portfolio"}


def _vars(cand: dict[str, Any]) -> dict[str, str]:
    emails = [e["value"] for e in cand.get("email_addresses") or [] if e.get("value")]
    phones = [p["value"] for p in cand.get("phone_numbers") or [] if p.get("value")]
    return {"first": (cand.get("first_name") or "the candidate").strip(),
            "email": emails[0] if emails else "no email on file",
            "phone": phones[0] if phones else "no phone on file"}


# -- reference data -------------------------------------------------------------------------------
def catalog_docs(created: datetime) -> dict[str, list[dict[str, Any]]]:
    """Candidate tags, close reasons and custom field definitions (fixed ids, no randomness)."""
    stamp = iso(created)
    base = {"created_at": stamp, "updated_at": stamp}
    fields = []
    for i, (ftype, name, key, vtype, internal) in enumerate(CUSTOM_FIELDS):
        fields.append({
            "id": ID_BASE["custom_fields"] + i, **base, "field_type": ftype, "sort_order": i,
            "name": name, "value_type": vtype, "private": ftype == "offer", "required": False,
            "require_approval": False, "trigger_new_version": ftype == "offer", "active": True,
            "updated_by_id": None, "internal_type": internal,
            "expose_in_job_board_api": False, "placeholder": None, "name_key": key,
            "description": None,
            "application_type": "all_applications" if ftype == "application" else None,
            "api_only": False if ftype == "job" else None,
            "use_for_job_approvals": False if ftype == "job" else None,
            "use_for_offer_approvals": False if ftype == "job" else None,
            "template_token_string": f"{{{{{key.upper()}}}}}" if ftype == "offer" else None,
            "default_value": None})
    return {
        "candidate_tags": [{"id": TAG_IDS[n], **base, "name": n} for n in TAG_NAMES],
        "close_reasons": [{"id": ID_BASE["close_reasons"] + i, **base, "name": n}
                          for i, n in enumerate(CLOSE_REASONS)],
        "custom_fields": fields,
    }


def job_post_doc(job: dict[str, Any], written: str) -> dict[str, Any]:
    """The job's external post: the id its applications name as `job_post_id`."""
    pid = job["id"] + JOB_POST_OFFSET
    live = job["status"] == "open"
    return {
        "id": pid, "created_at": job["created_at"], "updated_at": written,
        "title": job["name"], "internal": False, "active": True, "live": live,
        "featured": False, "first_published_at": job.get("opened_at"),
        "content": f"<p>Join us as {job['name']}.</p>", "internal_content": None,
        "language": "en",
        "public_url": f"https://boards.greenhouse.io/talentvaultdemo/jobs/{pid}?gh_jid={pid}",
        "demographic_question_set_id": None, "job_id": job["id"], "job_board_id": 7001,
        "questions": [
            {"id": None, "description": None, "answer_type": "short_text", "required": True,
             "private": False, "label": "First Name", "name": "first_name", "options": []},
            {"id": pid * 10 + 1, "description": None, "answer_type": "single_select",
             "required": False, "private": False, "label": "How did you hear about us?",
             "name": f"question_{pid * 10 + 1}",
             "options": [{"id": 1, "label": "LinkedIn"}, {"id": 2, "label": "A friend"}]},
        ],
    }


# -- a candidate's record -------------------------------------------------------------------------
def scorecard_doc(rng: random.Random, sid: int, interview: dict[str, Any], interviewer: int,
                  submitted: datetime | None, cand: dict[str, Any],
                  created: str | None = None) -> dict[str, Any]:
    """A scorecard on an interview: `complete` when submitted, else a `draft`."""
    text = rng.choice(TAKEAWAYS).format(**_vars(cand))
    created = created or interview["ends_at"] or interview["created_at"]
    written = iso(submitted) if submitted else created
    return {
        "id": sid, "created_at": created, "updated_at": written,
        "interview_kit_id": interview["job_interview_id"] * 10 + 2,
        "interviewer_id": interviewer, "interviewed_at": interview["starts_at"],
        "notes": text if submitted else None, "notes_with_tags": text if submitted else None,
        "submitter_id": interviewer,
        "candidate_rating": rng.choice(RATINGS) if submitted else None,
        "private_notes": None, "private_notes_with_tags": None,
        "status": "complete" if submitted else "draft",
        "public_notes": None, "public_notes_with_tags": None,
        "application_id": interview["application_id"],
        "submitted_at": iso(submitted) if submitted else None,
    }


def note_doc(rng: random.Random, nid: int, cand: dict[str, Any], app_id: int | None,
             user: int, at: datetime) -> dict[str, Any]:
    v = _vars(cand)
    x = rng.random()
    kind = "NOTE" if x < 0.7 else "EMAIL" if x < 0.9 else "ACTIVITY"
    quote_it = rng.random() < QUOTE_FRACTION
    body = rng.choice(QUOTES if quote_it else NOTE_BODIES).format(**v)
    stamp = iso(at)
    doc = {"id": nid, "created_at": stamp, "updated_at": stamp, "candidate_id": cand["id"],
           "application_id": app_id, "body": body, "subject": None, "type": kind,
           "user_id": user, "email_from": None, "email_to": None, "email_cc": None,
           "import_hash": None, "body_with_tags": body, "visibility": "publicly_visible",
           "email_attachment_file_names": None}
    if kind == "EMAIL":
        doc.update(subject="Next steps", email_from=RECRUITING_MAILBOX, email_cc=[],
                   email_to=v["email"] if "@" in v["email"] else None,
                   email_attachment_file_names=[])
    elif kind == "ACTIVITY":
        doc.update(user_id=None, body="Candidate profile viewed by the hiring team.",
                   body_with_tags="Candidate profile viewed by the hiring team.",
                   visibility="admin_only_visible")
    return doc


def attachment_doc(aid: int, app: dict[str, Any], cand: dict[str, Any], kind: str,
                   at: datetime) -> dict[str, Any]:
    name = "".join(ch for ch in f"{cand.get('first_name') or ''}_{cand.get('last_name') or ''}"
                   if ch.isalnum() or ch == "_").strip("_") or "candidate"
    filename = f"{name}_{FILE_LABELS[kind]}.pdf"
    stamp = iso(at)
    return {"id": aid, "created_at": stamp, "updated_at": stamp, "application_id": app["id"],
            "candidate_id": app["candidate_id"], "type": kind, "filename": filename,
            "url": f"{FILES_ORIGIN}/_files/greenhouse/attachments/{aid}/{quote(filename)}"}


def applied_tag_doc(tid: int, candidate_id: int, tag: str, at: str) -> dict[str, Any]:
    return {"id": tid, "created_at": at, "updated_at": at, "candidate_tag_id": TAG_IDS[tag],
            "candidate_id": candidate_id}


def file_bytes(doc: dict[str, Any]) -> bytes:
    """The attachment's content: a small PDF-looking file made from its id (no personal data),
    the same at every download."""
    seed = hashlib.sha256(f"attachment/{doc['id']}".encode()).hexdigest()
    body = "".join(f"BT /F1 10 Tf 72 {720 - 12 * i} Td ({seed[i:i + 32]}) Tj ET\n"
                   for i in range(int(seed[:2], 16) % 24 + 4))
    return (f"%PDF-1.4\n% talentvault sandbox attachment {doc['id']} ({doc['type']})\n"
            f"{body}%%EOF\n").encode()


def generated(rng: random.Random, take: Any, cand: dict[str, Any],
              apps: list[dict[str, Any]], interviews: list[dict[str, Any]],
              users: list[int], start: datetime) -> list[tuple[str, dict[str, Any]]]:
    """A generated candidate's scorecards, notes, attachments and applied tags: (entity, doc)
    each. `take("greenhouse:<entity>")` allocates ids in the chunk's blocks."""
    out: list[tuple[str, dict[str, Any]]] = []
    created = parse_ts(cand["created_at"])
    for tag in cand["tags"]:
        out.append(("applied_candidate_tags", applied_tag_doc(
            take("greenhouse:applied_candidate_tags"), cand["id"], tag, cand["created_at"])))
    for iv in interviews:
        if iv["status"] == "complete":
            submitted = parse_ts(iv["updated_at"])
        elif iv["status"] == "awaiting_feedback" and rng.random() < DRAFT_FRACTION:
            submitted = None
        else:
            continue
        out.append(("scorecards", scorecard_doc(rng, take("greenhouse:scorecards"), iv,
                                                rng.choice(users), submitted, cand)))
    for app in apps:
        if app["prospect"]:
            continue
        applied = parse_ts(app["created_at"])
        for kind, chance in (("resume", RESUME_FRACTION), ("cover_letter", COVER_LETTER_FRACTION)):
            if rng.random() < chance:
                out.append(("attachments", attachment_doc(
                    take("greenhouse:attachments"), app, cand, kind, applied)))
    if rng.random() < NOTE_FRACTION:
        times = sorted(created + (start - created) * rng.random()
                       for _ in range(rng.randint(1, MAX_NOTES)))
        for at in times:
            app_id = rng.choice(apps)["id"] if apps and rng.random() < 0.5 else None
            out.append(("notes", note_doc(rng, take("greenhouse:notes"), cand, app_id,
                                          rng.choice(users), min(at, start - timedelta(
                                              milliseconds=1)))))
    return out
