"""Building the generated world's records: the catalogs (users, jobs and their interview plans,
rejection reasons, CRM tags, fields, pipelines, workflows), then candidates chunk by chunk.

Each chunk of CHUNK candidates has its own random stream (seeded by the world's seed and the
chunk number) and its own block of ids per entity, so chunks can be built in any order or in
parallel processes and the world is still byte-identical for a seed. Builders never touch the
store: they return rows in `Store.put_many` form, indexed by the `records` rules.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox import records
from sandbox.records import highlevel_id
from sandbox.store import iso as store_iso
from sandbox.store import parse_ts
from sandbox.world import (
    appointments,
    ats,
    ats_history,
    crm,
    custom_values,
    keap_history,
    messages,
    notes,
)
from sandbox.world.clock import HISTORY_DAYS, ArrivalCurve, iso, next_work_time
from sandbox.world.people import (
    DUPLICATE_FRACTION,
    Person,
    email_variant,
    make_person,
    randrange,
    status_value,
)

CHUNK = 2000                   # candidates per chunk (one random stream, one id block)
JOBS_PER_CANDIDATE = 0.01      # jobs = max(MIN_JOBS, candidates * this)
MIN_JOBS = 10
PROFILE_EDIT_FRACTION = 0.2    # candidates whose profile was edited after creation
# id blocks: per candidate of a chunk, room for this many records of each entity (the most a
# candidate can produce: applications are capped at max_applications(), each application has
# at most one stage row per plan position, one interview per interview stage, two offer
# versions and one rejection)
PEOPLE_PER_CANDIDATE = 3       # the candidate + a newsletter lead + a HighLevel lead
KEAP_PER_CANDIDATE = 3         # contact + Keap duplicate + newsletter lead
HIGHLEVEL_PER_CANDIDATE = 4    # contact + opportunity, for the candidate and for a lead
HIGHLEVEL_CATALOG_IDS = 1000   # HighLevel sequence numbers kept for the catalogs


def max_applications(apc: float) -> int:
    return max(6, math.ceil(apc * 4))


def gh_spans(apc: float) -> dict[str, int]:
    apps = max_applications(apc)
    return {"candidates": 1, "applications": apps,
            "application_stages": apps * len(ats.STAGE_VARIANTS),
            "interviews": apps * len(ats.INTERVIEW_POSITIONS), "offers": apps * 2,
            "rejection_details": apps}


@dataclass(frozen=True)
class Params:
    seed: int
    start: str
    candidates: int
    applications_per_candidate: float


# -- rows ---------------------------------------------------------------------------------------
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical_time(text: str) -> str:
    """The `records.updated_at` text of a doc timestamp (what `records.row_for` computes), with
    a shortcut for the canonical form the generator writes."""
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z":
        return text
    return store_iso(parse_ts(text))


def fast_row(source: str, entity: str, doc: dict[str, Any], seq: int | None, now: str,
             rule: records.Rule | None = None) -> tuple:
    """`records.row_for` for the bulk writer: the same row (see test_world), with the doc
    serialized once, as `Store.put_many` would."""
    rule = rule or records.rule(source, entity)
    updated = doc.get(rule.updated) if rule.updated else None
    if seq is None:
        seq = int(doc["id"]) if rule.numeric_ids else 0
    return (source, entity, doc["id"], _ENCODE(doc),
            canonical_time(updated) if updated else now, seq,
            rule.email(doc) if rule.email else None,
            doc.get(rule.parent) if rule.parent else None)


@dataclass
class Batch:
    """Rows for `Store.put_many`, email lookup keys, and what they hold."""

    rows: list[tuple] = field(default_factory=list)
    keys: list[tuple] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    next_ids: dict[str, int] = field(default_factory=dict)   # "<source>:<entity>" -> next id


class _Writer:
    def __init__(self, now: str):
        self.now = now
        self.batch = Batch()

    def add(self, source: str, entity: str, doc: dict[str, Any], seq: int | None = None) -> None:
        """`seq`: the order key of HighLevel records (their ids are not numbers)."""
        rule = records.RULES[(source, entity)]
        self.batch.rows.append(fast_row(source, entity, doc, seq, self.now, rule))
        self.batch.counts[(source, entity)] += 1
        if rule.email_keys:
            self.batch.keys.extend((source, entity, key, str(doc["id"]))
                                   for key in dict.fromkeys(rule.email_keys(doc)))


class _Ids:
    """Id counters from given starting points; `used()` gives, per counter that was used, the
    id after the highest one taken."""

    def __init__(self, starts: dict[str, int]):
        self.next = dict(starts)
        self.top: dict[str, int] = {}

    def take(self, key: str) -> int:
        n = self.next[key]
        self.next[key] = n + 1
        self.top[key] = n
        return n

    def skip(self, key: str, count: int) -> None:
        """`count` ids taken in one go (catalogs made elsewhere)."""
        for _ in range(count):
            self.take(key)

    def used(self) -> dict[str, int]:
        return {key: n + 1 for key, n in self.top.items()}

    def gh(self, entity: str) -> int:
        return self.take(f"greenhouse:{entity}")


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# -- catalogs -----------------------------------------------------------------------------------
@dataclass
class Catalog:
    """What every chunk needs to know about the world's fixed parts."""

    users: list[int]
    reason_ids: list[int]
    jobs: list[ats.JobPlan]
    hl_pipelines: list[dict[str, Any]]
    hl_fields: list[dict[str, Any]]
    batch: Batch

    @property
    def open_jobs(self) -> list[ats.JobPlan]:
        return [j for j in self.jobs if j.opened is not None]


def build_catalog(params: Params) -> Catalog:
    start = parse_ts(params.start)
    rng = random.Random(f"{params.seed}/catalog")
    ids = _Ids({f"greenhouse:{e}": ats.ID_BASE[e]
                for e in ("users", "rejection_reasons", "jobs", "job_interview_stages")})
    out = _Writer(iso(start))
    users = _users(rng, ids, out, start, params.candidates)
    reasons = ats.rejection_reason_docs(ids.next["greenhouse:rejection_reasons"],
                                        start - timedelta(days=700))
    ids.skip("greenhouse:rejection_reasons", len(reasons))
    for doc in reasons:
        out.add("greenhouse", "rejection_reasons", doc)
    for entity, docs in ats.organization_docs(start - timedelta(days=700)).items():
        for doc in docs:
            out.add("greenhouse", entity, doc)
        ids.top[f"greenhouse:{entity}"] = max(d["id"] for d in docs)   # fixed ids: counter above
    jobs = _jobs(rng, ids, out, start, params.candidates, users)
    for entity, docs in ats_history.catalog_docs(start - timedelta(days=700)).items():
        for doc in docs:
            out.add("greenhouse", entity, doc)
        ids.top[f"greenhouse:{entity}"] = max(d["id"] for d in docs)
    # job posts take their job's id + JOB_POST_OFFSET (what applications name); the counter
    # only says where the ids end
    ids.top["greenhouse:job_posts"] = max(j.id for j in jobs) + ats_history.JOB_POST_OFFSET
    for entity, docs in crm.keap_catalog_docs(start - timedelta(days=720)).items():
        for doc in docs:
            out.add("keap", entity, doc)
    for entity, n in (("tags", len(crm.KEAP_TAGS)), ("tag_categories", len(crm.KEAP_CATEGORIES)),
                      ("custom_fields", len(crm.KEAP_CUSTOM_FIELDS))):
        ids.next[f"keap:{entity}"] = crm.KEAP_ID_BASE[entity]
        ids.skip(f"keap:{entity}", n)
    companies = keap_history.company_docs(params.seed, start - timedelta(days=720))
    for doc in companies:
        out.add("keap", "companies", doc)
    ids.next["keap:companies"] = keap_history.ID_BASE["companies"]
    ids.skip("keap:companies", len(companies))
    stages = keap_history.opportunity_stage_docs(start - timedelta(days=720))
    for doc in stages:          # the fixed ids the opportunities name, in their own counter
        out.add("keap", "opportunity_stages", doc)
    ids.next["keap:opportunity_stages"] = 1
    ids.skip("keap:opportunity_stages", len(stages))
    hl = crm.highlevel_catalog_docs(rng)
    ids.next["highlevel"] = 1
    for entity, docs in hl.items():
        for doc in docs:
            seq = ids.take("highlevel")
            if entity != "workflows":   # workflow ids are UUIDs, not sequence ids
                doc["id"] = highlevel_id(seq)
            out.add("highlevel", entity, doc, seq)
    for doc, n in appointments.calendar_docs():   # fixed, in their own id block
        out.add("highlevel", "calendars", doc, n)
        ids.top["highlevel:calendars"] = n
    for doc, n in custom_values.custom_value_docs(params.seed):   # own stream and id block
        out.add("highlevel", "custom_values", doc, n)
        ids.top["highlevel:custom_values"] = n
    out.batch.stats["plan_edits"] = sum(len(v) - 1 for j in jobs for v in j.positions)
    out.batch.next_ids = ids.used()
    return Catalog(users, [d["id"] for d in reasons], jobs, hl["pipelines"],
                   hl["custom_fields"], out.batch)


def _users(rng: random.Random, ids: _Ids, out: _Writer, start: datetime, n: int) -> list[int]:
    users = []
    for _ in range(min(60, max(20, 20 + n // 2500))):
        uid = ids.gh("users")
        person = make_person(rng, -uid)
        person.first, person.last = person.first.strip(), person.last.strip()
        out.add("greenhouse", "users", ats.user_doc(rng, uid, person, start))
        users.append(uid)
    return users


def _jobs(rng: random.Random, ids: _Ids, out: _Writer, start: datetime, n: int,
          users: list[int]) -> list[ats.JobPlan]:
    jobs = []
    for k in range(max(MIN_JOBS, int(n * JOBS_PER_CANDIDATE))):
        # the first jobs are long-running openings, so early applicants have somewhere to go
        early = k < 3 or rng.random() < 0.6
        created = next_work_time(
            start - timedelta(days=rng.uniform(HISTORY_DAYS + 5, 200) if early
                              else rng.uniform(2, HISTORY_DAYS - 1)), rng)
        status = "open" if k < 3 else crm.pick(rng, ats.JOB_STATUS_WEIGHTS)
        opened = None if status == "draft" else created + timedelta(hours=rng.uniform(1, 72))
        if opened is not None and opened >= start:
            opened = created
        closed = None
        if status == "closed" and opened is not None:
            closed = opened + (start - opened) * rng.uniform(0.4, 0.95)
        job = ats.new_job_plan(rng, ids.gh, created, status, opened, closed, users,
                               edit_until=min(closed or start, start))
        changes = [created, opened or created, closed or created]
        changes += [s.since for versions in job.positions for s in versions]
        doc = ats.job_doc(job, rng, max(changes))
        out.add("greenhouse", "jobs", doc)
        out.add("greenhouse", "job_posts", ats_history.job_post_doc(doc, doc["updated_at"]))
        for doc in ats.stage_docs(job):
            out.add("greenhouse", "job_interview_stages", doc)
        jobs.append(job)
    return jobs


# -- candidates, chunk by chunk -----------------------------------------------------------------
@dataclass
class _Past:
    """A person seen earlier in the chunk, to copy into a duplicate candidate record."""

    person: Person
    email: str


def chunk_starts(params: Params, c: int) -> dict[str, int]:
    """The first id of each entity's block for chunk c."""
    size = CHUNK
    starts = {f"greenhouse:{e}": ats.ID_BASE[e] + c * size * span
              for e, span in gh_spans(params.applications_per_candidate).items()}
    starts["keap:contacts"] = crm.KEAP_ID_BASE["contacts"] + c * size * KEAP_PER_CANDIDATE
    starts["highlevel"] = HIGHLEVEL_CATALOG_IDS + c * size * HIGHLEVEL_PER_CANDIDATE + 1
    starts["person"] = c * size * PEOPLE_PER_CANDIDATE + 1
    for entity, base in notes.ID_BASE.items():
        starts[f"highlevel:{entity}"] = base + c * size * notes.PER_CANDIDATE + 1
    for entity, base in messages.ID_BASE.items():
        starts[f"highlevel:{entity}"] = base + c * size * messages.PER_CANDIDATE[entity] + 1
    for entity, per in ats_history.PER_CANDIDATE.items():
        starts[f"greenhouse:{entity}"] = ats_history.ID_BASE[entity] + c * size * per
    starts["highlevel:appointments"] = (appointments.ID_BASE["appointments"]
                                        + c * size * appointments.PER_CANDIDATE + 1)
    for entity in keap_history.ENTITIES:
        starts[f"keap:{entity}"] = (keap_history.ID_BASE[entity]
                                    + c * size * keap_history.PER_CANDIDATE)
    return starts


def build_chunk(params: Params, catalog: Catalog, c: int) -> Batch:
    """The candidates of chunk c (indexes c*CHUNK ..) with everything they brought along."""
    return _Chunk(params, catalog, c).run()


class _Chunk:
    def __init__(self, params: Params, catalog: Catalog, c: int):
        self.n, self.apc, self.c = params.candidates, params.applications_per_candidate, c
        self.start = parse_ts(params.start)
        self.rng = random.Random(f"{params.seed}/chunk/{c}")
        # notes and tasks on their own stream: the chunk's other records do not depend on them
        self.notes_rng = random.Random(f"{params.seed}/chunk/{c}/highlevel-notes")
        self.messages_rng = random.Random(f"{params.seed}/chunk/{c}/highlevel-messages")
        # so are scorecards, Greenhouse notes, attachments and applied tags
        self.history_rng = random.Random(f"{params.seed}/chunk/{c}/greenhouse-history")
        self.apps: list[dict[str, Any]] = []          # the current candidate's applications
        self.interviews: list[dict[str, Any]] = []    # ... and their interviews
        self.appointments_rng = random.Random(f"{params.seed}/chunk/{c}/highlevel-appointments")
        self.keap_rng = random.Random(f"{params.seed}/chunk/{c}/keap-history")
        self.catalog = catalog
        self.open_jobs = catalog.open_jobs
        self.ids = _Ids(chunk_starts(params, c))
        self.out = _Writer(iso(self.start))
        self.stats = self.out.batch.stats
        self.recent: list[_Past] = []
        self.curve = ArrivalCurve(self.start)
        self.max_apps = max_applications(self.apc)

    def run(self) -> Batch:
        for i in range(self.c * CHUNK, min((self.c + 1) * CHUNK, self.n)):
            self._candidate(i)
        batch = self.out.batch
        batch.next_ids = self.ids.used()
        # in primary-key order, SQLite appends to a few B-tree pages instead of hopping between
        # entities (and, for HighLevel's random-looking ids, all over the table)
        batch.rows.sort(key=lambda row: (row[0], row[1], str(row[2])))
        return batch

    def _candidate(self, i: int) -> None:
        rng = self.rng
        created = self.curve.at((i + rng.random()) / max(self.n, 1))
        past = self._duplicate_of() if rng.random() < DUPLICATE_FRACTION else None
        if past is not None:
            person, email = past.person, email_variant(rng, past.email)
            self.stats["duplicate"] += 1
        else:
            person = self._new_person()
            email = person.email
            for flag in person.flags:
                self.stats[flag] += 1
        cid = self.ids.gh("candidates")
        kind, value = status_value(rng, iso(created))
        self.stats[f"status_{kind}"] += 1
        cand = ats.candidate_doc(rng, cid, person, email, created, value)
        self.apps, self.interviews = [], []
        first_job = self._applications(cand, person, created)
        if rng.random() < PROFILE_EDIT_FRACTION:
            edited = created + (self.start - created) * rng.uniform(0.1, 0.99)
            ats.touch_candidate(cand, edited)
        self.out.add("greenhouse", "candidates", cand)
        for entity, doc in ats_history.generated(self.history_rng, self.ids.take, cand,
                                                 self.apps, self.interviews,
                                                 self.catalog.users, self.start):
            self.out.add("greenhouse", entity, doc)
        if past is None:
            self._crm_for(person, cid, created, first_job)
            if person.email_kind == "valid" and person.email is not None:
                self.recent.append(_Past(person, person.email))
        self._leads(created)

    def _new_person(self) -> Person:
        return make_person(self.rng, self.ids.take("person"))

    def _duplicate_of(self) -> _Past | None:
        if not self.recent:
            return None
        return self.recent[randrange(self.rng, len(self.recent))]

    # -- applications ---------------------------------------------------------------------------
    def _applications(self, cand: dict[str, Any], person: Person,
                      created: datetime) -> ats.JobPlan | None:
        rng, first_job = self.rng, None
        for k in range(min(1 + poisson(rng, self.apc - 1), self.max_apps)):
            applied = created if k == 0 else created + (self.start - created) * rng.random()
            job = self._job_open_at(applied)
            if job is None:
                continue
            first_job = first_job or job
            aid = self.ids.gh("applications")
            if rng.random() < ats.PROSPECT_FRACTION:
                app = ats.prospect_doc(rng, aid, cand["id"], job, applied, person)
                self.out.add("greenhouse", "applications", app)
                self.apps.append(app)
                ats.touch_candidate(cand, applied)
                self.stats["prospect_converted"] += 1
                continue
            app = ats.application_doc(rng, aid, cand["id"], job, applied, person)
            docs = ats.simulate(rng, self.ids.gh, app, job, applied, self.start,
                                self.catalog.users, self.catalog.reason_ids)
            self._emit_application(docs)
            ats.touch_candidate(cand, app["last_activity_at"])
        return first_job

    def _emit_application(self, docs: ats.AppDocs) -> None:
        add = self.out.add
        add("greenhouse", "applications", docs.application)
        self.apps.append(docs.application)
        self.interviews += docs.interviews
        for row in docs.stages:
            if row["current"]:
                row["days_in_stage"] = ats.days_between(row["entered_at"], self.start)
            add("greenhouse", "application_stages", row)
        for doc in docs.interviews:
            add("greenhouse", "interviews", doc)
        for doc in docs.offers:
            add("greenhouse", "offers", doc)
        if docs.rejection is not None:
            add("greenhouse", "rejection_details", docs.rejection)

    def _job_open_at(self, t: datetime) -> ats.JobPlan | None:
        jobs = self.open_jobs
        for _ in range(30):
            job = jobs[randrange(self.rng, len(jobs))]
            if job.open_at(t):
                return job
        return next((j for j in jobs if j.open_at(t)), None)

    # -- CRM contacts ---------------------------------------------------------------------------
    def _crm_for(self, person: Person, cid: int, created: datetime,
                 job: ats.JobPlan | None) -> None:
        if person.email_kind != "valid" or person.email is None:
            return
        rng = self.rng
        if rng.random() < crm.IN_KEAP_FRACTION:
            self._keap_contact(person, cid, created)
        if rng.random() < crm.IN_HIGHLEVEL_FRACTION:
            self._highlevel_contact(person, cid, created, job.name if job else None)

    def _crm_times(self, around: datetime, earliest: datetime) -> tuple[datetime, datetime]:
        rng, start = self.rng, self.start
        created = around + timedelta(days=rng.uniform(-120, 5))
        created = min(max(created, earliest), start - timedelta(hours=1))
        updated = created + (start - created) * rng.random() ** 2
        return created, updated

    def _keap_contact(self, person: Person, cid: int | None, around: datetime,
                      newsletter: bool = False) -> None:
        rng = self.rng
        stale = cid is not None and rng.random() < crm.KEAP_STALE_FRACTION
        email = person.email
        if cid is not None and email is not None and \
                rng.random() < crm.KEAP_EMAIL_VARIANT_FRACTION:
            email = email_variant(rng, email)
            self.stats["keap_email_variant"] += 1
        created, updated = self._crm_times(around, self.start - timedelta(days=400))
        if stale:
            updated = created + (updated - created) * 0.1
            self.stats["keap_stale"] += 1
        doc = crm.keap_contact(rng, self.ids.take("keap:contacts"), person, email, created,
                               updated, stale=stale, candidate_id=cid, newsletter=newsletter)
        self.out.add("keap", "contacts", doc)
        self.stats["keap_for_candidates" if cid is not None else "keap_newsletter_leads"] += 1
        for entity, child in keap_history.generated(self.keap_rng, self.ids.take, doc, created,
                                                    self.start):
            self.out.add("keap", entity, child)
            self.stats[f"keap_{entity}"] += 1
        if cid is not None and doc["email_addresses"] and \
                rng.random() < crm.KEAP_DUPLICATE_FRACTION:
            when = created + (self.start - created) * rng.random()
            self.out.add("keap", "contacts",
                         crm.keap_duplicate(rng, self.ids.take("keap:contacts"), doc, when))
            self.stats["keap_duplicates"] += 1

    def _highlevel_contact(self, person: Person, cid: int | None, around: datetime,
                           role: str | None) -> None:
        rng = self.rng
        created, updated = self._crm_times(around, crm.HL_EPOCH)
        seq = self.ids.take("highlevel")
        contact = crm.highlevel_contact(rng, highlevel_id(seq), person, person.email, created,
                                        updated, self.catalog.hl_fields, candidate_id=cid)
        self.out.add("highlevel", "contacts", contact, seq)
        self.stats["highlevel_for_candidates" if cid is not None else "highlevel_leads"] += 1
        for entity, doc, n in [
                *notes.generated(self.notes_rng, self.ids.take, contact, created, self.start,
                                 role),
                *messages.generated(self.messages_rng, self.ids.take, contact, created,
                                    self.start, role)]:
            self.out.add("highlevel", entity, doc, n)
            self.stats[f"highlevel_{entity}"] += 1
        for doc, n in appointments.generated(self.appointments_rng, self.ids.take, contact,
                                             created, self.start):
            self.out.add("highlevel", "appointments", doc, n)
            self.stats["highlevel_appointments"] += 1
        if rng.random() >= crm.OPPORTUNITY_FRACTION:
            return
        pipelines = self.catalog.hl_pipelines
        pipeline = pipelines[0 if cid is not None else randrange(rng, 1, len(pipelines))]
        opened = created + (self.start - created) * rng.uniform(0.0, 0.5)
        changed = opened + (self.start - opened) * rng.random()
        oseq = self.ids.take("highlevel")
        opp = crm.opportunity(rng, highlevel_id(oseq), contact, pipeline, opened, changed,
                              role or ats.job_name(rng))
        self.out.add("highlevel", "opportunities", opp, oseq)

    def _leads(self, around: datetime) -> None:
        rng = self.rng
        if rng.random() < crm.NEWSLETTER_LEADS_PER_CANDIDATE:
            person = self._new_person()
            if person.email_kind == "valid":
                self._keap_contact(person, None, around, newsletter=True)
        if rng.random() < crm.HIGHLEVEL_LEADS_PER_CANDIDATE:
            person = self._new_person()
            if person.email_kind == "valid":
                self._highlevel_contact(person, None, around, None)
