"""The synthetic world: deterministic, valid against the vendors' specs, messy as documented,
consistent (timestamps, references, id counters), alive (`tick`), and loadable from fixtures."""

from __future__ import annotations

import json
import shutil
import sqlite3
import unicodedata
from collections import Counter
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from email_validator import EmailNotValidError, validate_email
from openapi_schema_validator import OAS30Validator, OAS31Validator

from sandbox import fixtures, records
from sandbox.highlevel.conversations import served_conversation, served_message
from sandbox.store import Store, iso, parse_ts
from sandbox.world import appointments, ats, crm, keap_history, life, messages, notes, people
from sandbox.world import build as world_build
from sandbox.world import generate as world
from sandbox.world.clock import WORK_END_HOUR, WORK_START_HOUR
from tests.conftest import SPECS

EXAMPLES = Path(world.__file__).parents[1] / "examples"
START = "2026-01-05"
SIZE = 400
SEED = 11

GH_SCHEMAS = SPECS / "ats" / "greenhouse-harvest-v3-schemas"
KEAP_SCHEMAS = {"contacts": "Contact", "tags": "Tag", "tag_categories": "TagCategory",
                "custom_fields": "CustomFieldMetaData", "notes": "Note", "tasks": "Task",
                "emails": "EmailSentWithContent", "opportunities": "RestV2Opportunity",
                "opportunity_stages": "RestOpportunityStage", "companies": "Company"}
HL_SCHEMAS = {"contacts": ("contacts", "GetContectByIdSchema"),
              "opportunities": ("opportunities", "SearchOpportunitiesResponseSchema"),
              "pipelines": ("opportunities", "PipelinesResponseSchema"),
              "workflows": ("workflows", "WorkflowSchema"),
              "custom_fields": ("locations", "CustomFieldSchema"),
              "tags": ("locations", "LocationTagsSchema"),
              "custom_values": ("locations", "CustomValueSchema"),
              "notes": ("contacts", "GetNoteSchema"),
              "tasks": ("contacts", "TaskSchema"),
              "conversations": ("conversations", "ConversationSchema"),
              "messages": ("conversations", "GetMessageResponseDto"),
              "calendars": ("calendars", "CalendarDTO"),
              "appointments": ("calendars", "CalendarEventDTO")}
# what the API serves of a stored doc, where that differs from the stored form
SERVED = {("highlevel", "conversations"): served_conversation,
          ("highlevel", "messages"): lambda _store, doc: served_message(doc)}
# instants that must never be after the clock (future-dated fields such as an interview's
# `starts_at` or an offer's `starts_on` are allowed to be ahead)
PAST_FIELDS = {
    "greenhouse": ("created_at", "updated_at", "last_activity_at", "rejected_at", "entered_at",
                   "exited_at", "resolved_at", "opened_at", "closed_at", "scheduled_at",
                   "availability_received_at"),
    "keap": ("create_time", "update_time"),
    "highlevel": ("dateAdded", "dateUpdated", "createdAt", "updatedAt", "lastStatusChangeAt",
                  "lastStageChangeAt", "lastActionDate"),
}
UPDATE_FIELD = {key: r.updated for key, r in records.RULES.items()}


# -- spec validators ------------------------------------------------------------------------------
def _component(spec: dict, name: str, cls: type) -> Any:
    return cls({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


@cache
def validators() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    for path in sorted(GH_SCHEMAS.glob("*.json")):
        if ("greenhouse", path.stem) in records.RULES:
            out[("greenhouse", path.stem)] = jsonschema.Draft202012Validator(
                json.loads(path.read_text()))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    keap = yaml.load((SPECS / "keap" / "keap-rest-v2.openapi.yml").read_text(), Loader=loader)
    for entity, name in KEAP_SCHEMAS.items():
        out[("keap", entity)] = _component(keap, name, OAS31Validator)
    for entity, (file, name) in HL_SCHEMAS.items():
        spec = json.loads((SPECS / "highlevel" / f"{file}.json").read_text())
        if name == "PipelinesResponseSchema":
            # the published spec types each stage as an array (a generator placeholder); the
            # real API returns stage objects, which the opportunity docs reference by id
            spec["components"]["schemas"][name]["properties"]["stages"]["items"] = {
                "type": "object", "required": ["id", "name"]}
        if name == "CalendarEventDTO":
            # the spec types its times `object` while its examples (and the API) are ISO text
            for t in ("startTime", "endTime", "dateAdded", "dateUpdated"):
                spec["components"]["schemas"][name]["properties"][t]["type"] = "string"
        out[("highlevel", entity)] = _component(spec, name, OAS30Validator)
    return out


def spec_problems(store: Store) -> list[str]:
    problems = []
    for (source, entity), validator in validators().items():
        serve = SERVED.get((source, entity), lambda _store, doc: doc)
        for doc in store.iter_docs(source, entity):
            for error in validator.iter_errors(serve(store, doc)):
                problems.append(f"{source}/{entity} {doc.get('id')}: {list(error.path)} "
                                f"{error.message[:160]}")
    return problems


# -- helpers --------------------------------------------------------------------------------------
def docs(store: Store, source: str, entity: str) -> list[dict[str, Any]]:
    return list(store.iter_docs(source, entity))


def dump(folder: Path) -> list[tuple]:
    """Every record row (ids, index columns, doc text) and the meta table, in order."""
    conn = sqlite3.connect(Path(folder) / "world.db")
    try:
        rows = conn.execute("SELECT source, entity, id, seq, updated_at, email, parent, doc "
                            "FROM records ORDER BY source, entity, id").fetchall()
        meta = conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        stones = conn.execute("SELECT * FROM tombstones ORDER BY source, entity, id").fetchall()
        return rows + meta + stones
    finally:
        conn.close()


def personal_email(candidate: dict[str, Any]) -> str | None:
    for e in candidate["email_addresses"]:
        if e["type"] == "personal":
            return e["value"]
    return None


def is_valid_email(text: str) -> bool:
    try:
        validate_email(text.strip(), check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def integrity_problems(store: Store) -> list[str]:
    """Every reference between records resolves, and application state is consistent."""
    p: list[str] = []
    gh = {e: {d["id"]: d for d in docs(store, "greenhouse", e)} for e in
          ("candidates", "applications", "jobs", "job_interview_stages", "application_stages",
           "interviews", "offers", "rejection_details", "rejection_reasons", "users")}
    for a in gh["applications"].values():
        if a["candidate_id"] not in gh["candidates"]:
            p.append(f"application {a['id']}: no candidate {a['candidate_id']}")
        job = a["job_id"] or (a["prospective_job_ids"] or [None])[0]
        if job not in gh["jobs"]:
            p.append(f"application {a['id']}: no job {job}")
        stage = gh["job_interview_stages"].get(a["stage_id"])
        if a["stage_id"] is not None and (stage is None or stage["job_id"] != a["job_id"]):
            p.append(f"application {a['id']}: stage {a['stage_id']} not on job {a['job_id']}")
        if stage is not None and stage["name"] != a["stage_name"]:
            p.append(f"application {a['id']}: stage_name {a['stage_name']!r} != {stage['name']!r}")
        if (a["status"] == "in_process" and not a["prospect"]) != (a["stage_id"] is not None):
            p.append(f"application {a['id']}: status {a['status']} with stage {a['stage_id']}")
        if (a["status"] == "rejected") != (a["rejected_at"] is not None):
            p.append(f"application {a['id']}: status {a['status']}, rejected_at {a['rejected_at']}")
    current = Counter()
    for r in gh["application_stages"].values():
        app = gh["applications"].get(r["application_id"])
        stage = gh["job_interview_stages"].get(r["job_interview_stage_id"])
        if app is None or stage is None or stage["job_id"] != app["job_id"]:
            p.append(f"application_stage {r['id']}: dangling or on another job")
            continue
        if r["current"]:
            current[app["id"]] += 1
            if r["job_interview_stage_id"] != app["stage_id"] or r["exited_at"] is not None:
                p.append(f"application_stage {r['id']}: current row disagrees with application")
        elif r["exited_at"] is None or r["exited_at"] < r["entered_at"]:
            p.append(f"application_stage {r['id']}: past row without a proper exit")
    for a in gh["applications"].values():
        want = 1 if a["stage_id"] is not None else 0
        if current[a["id"]] != want:
            p.append(f"application {a['id']}: {current[a['id']]} current stage rows")
    for i in gh["interviews"].values():
        app = gh["applications"].get(i["application_id"])
        if app is None or app["job_id"] != i["job_id"]:
            p.append(f"interview {i['id']}: dangling")
    for o in gh["offers"].values():
        app = gh["applications"].get(o["application_id"])
        if app is None or (app["candidate_id"], app["job_id"]) != (o["candidate_id"], o["job_id"]):
            p.append(f"offer {o['id']}: disagrees with its application")
    rejected = Counter(d["application_id"] for d in gh["rejection_details"].values())
    for a in gh["applications"].values():
        if rejected[a["id"]] != (1 if a["status"] == "rejected" else 0):
            p.append(f"application {a['id']}: {rejected[a['id']]} rejection_details")
    for d in gh["rejection_details"].values():
        if d["rejection_reason_id"] not in gh["rejection_reasons"]:
            p.append(f"rejection_detail {d['id']}: unknown reason")
    for s in gh["job_interview_stages"].values():
        if s["job_id"] not in gh["jobs"]:
            p.append(f"job_interview_stage {s['id']}: no job")
    tags = {t["id"] for t in docs(store, "keap", "tags")}
    fields = {f["id"] for f in docs(store, "keap", "custom_fields")}
    for c in docs(store, "keap", "contacts"):
        if set(c["tag_ids"]) - tags or {f["id"] for f in c["custom_fields"]} - fields:
            p.append(f"keap contact {c['id']}: unknown tag or custom field")
    contacts = {c["id"]: c for c in docs(store, "highlevel", "contacts")}
    location_tags = {t["name"] for t in docs(store, "highlevel", "tags")}
    for c in contacts.values():
        if set(c.get("tags") or []) - location_tags:
            p.append(f"highlevel contact {c['id']}: a tag that is no location tag")
    pipelines = {pl["id"]: pl for pl in docs(store, "highlevel", "pipelines")}
    for o in docs(store, "highlevel", "opportunities"):
        stages = {s["id"] for s in pipelines.get(o["pipelineId"], {}).get("stages", [])}
        if o["contactId"] not in contacts or o["pipelineStageId"] not in stages:
            p.append(f"opportunity {o['id']}: dangling contact or stage")
    return p


def time_problems(store: Store) -> list[str]:
    now = iso(store.now())
    p = []
    for (source, entity) in records.RULES:
        for doc in store.iter_docs(source, entity):
            for name in PAST_FIELDS[source]:
                value = doc.get(name)
                if value is not None and iso(parse_ts(value)) > now:
                    p.append(f"{source}/{entity} {doc['id']}: {name} {value} after {now}")
            created = doc.get("created_at") or doc.get("create_time") or doc.get("dateAdded")
            updated = doc.get(UPDATE_FIELD[(source, entity)] or "")
            if created and updated and parse_ts(updated) < parse_ts(created):
                p.append(f"{source}/{entity} {doc['id']}: updated before created")
    return p


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("world")
    summary = world.generate(folder, candidates=SIZE, seed=SEED, start=START)
    return folder, summary


@pytest.fixture
def store(generated: tuple[Path, dict[str, Any]]) -> Store:
    s = Store(generated[0], create=False)
    yield s
    s.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Store:
    """A world of its own, for tests that change it."""
    world.generate(tmp_path / "w", candidates=300, seed=5, start=START)
    s = Store(tmp_path / "w")
    yield s
    s.close()


# -- generation ---------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_world(generated, tmp_path: Path) -> None:
    folder, _ = generated
    world.generate(tmp_path / "again", candidates=SIZE, seed=SEED, start=START)
    world.generate(tmp_path / "other", candidates=SIZE, seed=SEED + 1, start=START)
    assert dump(tmp_path / "again") == dump(folder)
    mine = {r[7] for r in dump(folder) if len(r) == 8 and r[1] == "candidates"}
    other = {r[7] for r in dump(tmp_path / "other") if len(r) == 8 and r[1] == "candidates"}
    assert not mine & other


def test_sizes_and_clock(store: Store, generated) -> None:
    summary = generated[1]
    counts = store.counts()
    assert counts["greenhouse"]["candidates"] == SIZE
    assert summary["counts"] == counts
    assert iso(store.now()) == f"{START}T00:00:00.000Z"
    apps = counts["greenhouse"]["applications"]
    assert 1.3 * SIZE < apps < 1.7 * SIZE   # 1.5 applications per candidate on average
    assert 20 <= counts["greenhouse"]["users"] <= 60
    assert counts["greenhouse"]["jobs"] >= world_build.MIN_JOBS
    assert json.loads(store.get_meta("seed")) == SEED


def test_applications_per_candidate_is_a_parameter(tmp_path: Path) -> None:
    summary = world.generate(tmp_path, candidates=200, seed=3, applications_per_candidate=3)
    assert 2.6 * 200 < summary["counts"]["greenhouse"]["applications"] < 3.4 * 200


def test_every_doc_validates_against_the_vendor_spec(store: Store) -> None:
    assert set(validators()) == set(records.RULES)
    assert spec_problems(store) == []


def test_timestamps_never_after_the_clock_and_span_the_history(store: Store) -> None:
    assert time_problems(store) == []
    created = sorted(parse_ts(c["created_at"]) for c in docs(store, "greenhouse", "candidates"))
    start = parse_ts(START)
    assert start - timedelta(days=91) <= created[0] < start - timedelta(days=85)
    assert created[-1] > start - timedelta(days=3)


def test_references_resolve_and_application_state_is_consistent(store: Store) -> None:
    assert integrity_problems(store) == []


def test_id_counters_continue_above_the_world(store: Store) -> None:
    for (source, entity) in records.RULES:
        if source == "highlevel" or store.count(source, entity) == 0:
            continue
        top = store.conn.execute("SELECT max(seq) FROM records WHERE source = ? AND entity = ?",
                                 (source, entity)).fetchone()[0]
        assert int(store.get_meta(f"next_id:{source}:{entity}")) == top + 1, (source, entity)
    taken = {r.id for e in records.RULES if e[0] == "highlevel"
             for r in store.select(*e)}
    for entity in world.HL_ENTITIES:
        n = int(store.get_meta(f"next_id:highlevel:{entity}"))
        assert records.highlevel_id(n) not in taken


def test_messiness_is_present_in_the_documented_fractions(store: Store, generated) -> None:
    stats = generated[1]["messiness"]
    cands = docs(store, "greenhouse", "candidates")
    n = len(cands)

    def near(observed: int, fraction: float) -> bool:
        expected = n * fraction
        return abs(observed - expected) <= 4 * (expected * (1 - fraction)) ** 0.5 + 2

    by_email = Counter(personal_email(c).strip().lower() for c in cands if personal_email(c))
    duplicates = sum(k - 1 for k in by_email.values() if k > 1)
    assert duplicates == stats["duplicate"] and near(duplicates, people.DUPLICATE_FRACTION)
    variants = [c for c in cands if personal_email(c) and by_email[
        personal_email(c).strip().lower()] > 1]
    assert len({personal_email(c) for c in variants}) > len(
        {personal_email(c).strip().lower() for c in variants})   # they differ in case/space
    no_email = sum(1 for c in cands if not c["email_addresses"])
    assert no_email == stats["no_email"] and near(no_email, people.NO_EMAIL_FRACTION)
    invalid = sum(1 for c in cands if personal_email(c) and not is_valid_email(personal_email(c)))
    assert invalid == stats["invalid_email"] and near(invalid, people.INVALID_EMAIL_FRACTION)
    padded = sum(1 for c in cands if personal_email(c) != (personal_email(c) or "").strip())
    assert padded >= stats["padded_email"] > 0
    names = [c["first_name"] + " " + c["last_name"] for c in cands]
    assert any(any(unicodedata.combining(ch) for ch in name) for name in names)
    assert any(unicodedata.normalize("NFKC", name) != name and not any(
        unicodedata.combining(ch) for ch in name) for name in names)
    assert any("\u4e00" <= ch <= "\u9fff" for name in names for ch in name)
    assert any("\u0600" <= ch <= "\u06ff" for name in names for ch in name)
    assert any(c["first_name"] != c["first_name"].strip() or c["last_name"] !=
               c["last_name"].strip() for c in cands)
    phones = [p["value"] for c in cands for p in c["phone_numbers"]]
    for pattern in ("+1 (", ".555.", "0044 ", "07700 ", " x", "ext.", "-555-"):
        assert any(pattern in ph for ph in phones), pattern
    assert any(any(ch.isalpha() for ch in ph.split("x")[0]) for ph in phones)
    values = [c["custom_fields"][people.STATUS_FIELD_KEY]["value"] for c in cands]
    assert None in values
    assert any(v in people.STAGE_CODES for v in values)
    assert any(v in people.FREE_TEXT_STATUS for v in values)
    assert any(v and v[:4].isdigit() or v and v[2:3] in "/." for v in values)
    per_candidate = Counter(a["candidate_id"] for a in docs(store, "greenhouse", "applications"))
    assert max(per_candidate.values()) >= 3


def test_stage_names_drift_between_jobs(store: Store) -> None:
    stages = docs(store, "greenhouse", "job_interview_stages")
    positions = {name: i for i, names in enumerate(ats.STAGE_VARIANTS) for name in names}
    seen = {positions[s["name"]] for s in stages}
    names_per_position = Counter(positions[n] for n in {s["name"] for s in stages})
    assert seen >= {0, 6}
    assert sum(1 for k in names_per_position.values() if k > 1) >= 3
    per_job: dict[int, list[dict]] = {}
    for s in stages:
        per_job.setdefault(s["job_id"], []).append(s)
    for plan in per_job.values():
        active = sorted((s for s in plan if s["active"]), key=lambda s: s["sort_order"])
        assert active[0]["name"] == "Application Review" and active[-1]["name"] == "Offer"


def test_crm_overlap_with_the_ats(store: Store, generated) -> None:
    stats = generated[1]["messiness"]
    cands = docs(store, "greenhouse", "candidates")
    ats_emails = {personal_email(c).strip().lower() for c in cands if personal_email(c)}
    keap = docs(store, "keap", "contacts")
    keap_emails = Counter(k["email_addresses"][0]["email"].strip().lower()
                          for k in keap if k["email_addresses"])
    valid_people = {e for e in ats_emails if is_valid_email(e)}
    overlap = len(valid_people & set(keap_emails)) / len(valid_people)
    assert abs(overlap - crm.IN_KEAP_FRACTION) < 0.1
    assert sum(k - 1 for k in keap_emails.values() if k > 1) == stats["keap_duplicates"] > 0
    assert sum(1 for e in keap_emails if e not in ats_emails) == stats["keap_newsletter_leads"]
    hl = docs(store, "highlevel", "contacts")
    assert {c["locationId"] for c in hl} == {crm.HIGHLEVEL_LOCATION_ID}
    assert any(c.get("emailLowerCase") in ats_emails for c in hl)
    assert any(c.get("emailLowerCase") not in ats_emails for c in hl)


def test_bulk_rows_match_the_records_rules(store: Store) -> None:
    """The generator's bulk writer indexes every record exactly as `records.row_for` does."""
    for (source, entity) in records.RULES:
        for row in store.select(source, entity, limit=50):
            want = records.row_for(store, source, entity, row.doc, seq=row.seq)
            email = want[6].strip().lower() if want[6] else None
            assert (row.updated_at, row.email, row.parent) == (
                want[4], email, None if want[7] is None else str(want[7])), (source, entity)
    contact = store.select("keap", "contacts", "email IS NOT NULL", limit=1)[0]
    assert contact.id in store.find_by_key("keap", "contacts", "email", contact.email)


def test_ensure_keeps_an_existing_world(tmp_path: Path) -> None:
    world.ensure(tmp_path, candidates=50, seed=1)
    before = dump(tmp_path)
    world.ensure(tmp_path, candidates=80, seed=2)
    assert dump(tmp_path) == before


# -- daily life -------------------------------------------------------------------------------
def _versions(store: Store) -> dict[tuple[str, str, str], tuple[str, str]]:
    out = {}
    for source, entity, id_, updated, doc in store.conn.execute(
            "SELECT source, entity, id, updated_at, doc FROM records"):
        out[(source, entity, id_)] = (updated, doc)
    return out


def _without_contact_summary(entity: str, doc: str) -> dict:
    d = json.loads(doc)
    if entity == "opportunities":
        d.pop("contact", None)   # a joined-in summary of the contact, not an edit
    return d


def test_tick_one_day_moves_the_clock_and_stamps_every_change(fresh: Store) -> None:
    start = fresh.now()
    before = _versions(fresh)
    summary = life.tick(fresh, days=1)
    assert fresh.now() == start + timedelta(days=1)
    assert summary["now"] == iso(start + timedelta(days=1))
    after = _versions(fresh)
    day_start, day_end = iso(start), iso(start + timedelta(days=1))
    changed = [k for k in after if k not in before or _without_contact_summary(
        k[1], before[k][1]) != _without_contact_summary(k[1], after[k][1])]
    assert len(changed) > 50
    stamps = []
    for key in changed:
        updated = after[key][0]
        if records.RULES[key[:2]].updated is None:
            continue
        if key[:2] == ("highlevel", "notes"):
            # a note's only time is its creation (dateAdded): an edit keeps it, as in HighLevel
            assert key not in before or before[key][0] == updated, key
            if key not in before:
                assert day_start <= updated < day_end, key
            continue
        assert day_start <= updated < day_end, key
        t = parse_ts(updated)
        assert WORK_START_HOUR <= t.hour < WORK_END_HOUR, key
        stamps.append(updated)
    assert len(stamps) == len(set(stamps)), "two writes share an update time"
    for key in before.keys() & after.keys():
        if key not in changed:
            assert before[key][0] == after[key][0]
    done = summary["total"]
    for kind in [*life.RATES, *notes.RATES, *messages.RATES, *appointments.RATES,
                 *keap_history.RATES]:
        if kind not in ("offers_accepted", "offers_declined", "offers_revised"):
            assert done.get(kind, 0) >= 1, kind
    assert time_problems(fresh) == []
    assert integrity_problems(fresh) == []
    assert spec_problems(fresh) == []


def test_tick_changes_children_with_their_parents(fresh: Store) -> None:
    before = _versions(fresh)
    life.tick(fresh, days=1)
    day = iso(fresh.now() - timedelta(days=1))
    moved = [r.doc for r in fresh.select("greenhouse", "application_stages",
                                         "updated_at >= ? AND json_extract(doc, '$.current') = 1",
                                         (day,))]
    assert moved
    for row in moved:
        app = fresh.get("greenhouse", "applications", row["application_id"])
        assert app["stage_id"] == row["job_interview_stage_id"]
        assert app["updated_at"] >= day and app["last_activity_at"] == row["entered_at"]
        cand = fresh.get("greenhouse", "candidates", app["candidate_id"])
        if cand is not None and ("greenhouse", "candidates", str(cand["id"])) in before:
            assert cand["last_activity_at"] >= row["entered_at"]
            assert cand["updated_at"] >= day


def test_tick_merges_leave_tombstones_and_move_applications(fresh: Store) -> None:
    life.tick(fresh, days=2)
    merged = [t for t in fresh.tombstones("greenhouse", "candidates") if t["merged_into"]]
    assert merged
    for stone in merged:
        assert fresh.get("greenhouse", "candidates", stone["id"]) is None
        survivor = fresh.get("greenhouse", "candidates", stone["merged_into"])
        assert survivor is not None and survivor["updated_at"] >= stone["deleted_at"]
        assert fresh.count("greenhouse", "applications", "parent = ?", (stone["id"],)) == 0
    deleted = [t for t in fresh.tombstones("greenhouse", "candidates") if not t["merged_into"]]
    assert deleted
    for stone in deleted:
        assert fresh.count("greenhouse", "applications", "parent = ?", (stone["id"],)) == 0
    assert fresh.tombstones("keap", "contacts") and fresh.tombstones("highlevel", "contacts")


def test_tick_is_deterministic(tmp_path: Path) -> None:
    results = []
    for name in ("a", "b"):
        world.generate(tmp_path / name, candidates=150, seed=9, start=START)
        s = Store(tmp_path / name)
        life.tick(s, days=2)
        s.close()
        results.append(dump(tmp_path / name))
    assert results[0] == results[1]


def test_tick_plays_whole_days_from_a_mid_day_clock(fresh: Store) -> None:
    start = fresh.now()
    fresh.set_now(start + timedelta(hours=15, minutes=30))
    life.tick(fresh, days=3)
    assert fresh.now() == start + timedelta(days=3)
    latest = fresh.conn.execute("SELECT max(updated_at) FROM records WHERE source = "
                                "'greenhouse' AND updated_at < ?", (iso(start + timedelta(
                                    days=1)),)).fetchone()[0]
    assert latest is None or latest > iso(start + timedelta(hours=15, minutes=30))


# -- fixtures -------------------------------------------------------------------------------------
def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_example_fixtures_load_and_are_valid(tmp_path: Path) -> None:
    summary = fixtures.load(tmp_path, EXAMPLES)
    expected = {src.name: {f.stem: _lines(f) for f in sorted(src.glob("*.jsonl"))}
                for src in sorted(EXAMPLES.iterdir()) if src.is_dir()}
    assert summary["counts"] == expected
    s = Store(tmp_path)
    try:
        assert s.counts() == expected
        world_json = json.loads((EXAMPLES / "world.json").read_text())
        assert s.now() == parse_ts(world_json["now"])
        assert spec_problems(s) == []
        assert time_problems(s) == []
        new = s.next_id("greenhouse", "candidates")
        assert not s.exists("greenhouse", "candidates", new) and new > max(
            int(r.id) for r in s.select("greenhouse", "candidates"))
        hl_new = records.next_highlevel_id(s, "contacts")
        assert not s.exists("highlevel", "contacts", hl_new)
        life.tick(s, days=1)   # a loaded world lives too
        assert integrity_problems(s) == []
    finally:
        s.close()


def test_fixture_clock_defaults_to_the_next_midnight(tmp_path: Path) -> None:
    fx = tmp_path / "fx"
    (fx / "keap").mkdir(parents=True)
    (fx / "keap" / "contacts.jsonl").write_text(json.dumps(
        {"id": "7", "given_name": "Ana", "email_addresses": [],
         "update_time": "2026-02-03T10:11:12Z"}) + "\n")
    summary = fixtures.load(tmp_path / "w", fx)
    assert summary["now"] == "2026-02-04T00:00:00.000Z"
    s = Store(tmp_path / "w")
    assert s.next_id("keap", "contacts") == 8
    s.close()


def test_bad_fixtures_are_all_reported_and_change_nothing(fresh: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLES, bad)
    cands = (bad / "greenhouse" / "candidates.jsonl").read_text().splitlines()
    cands[1] = cands[1][:-5]                                    # truncated JSON
    (bad / "greenhouse" / "candidates.jsonl").write_text("\n".join(cands) + "\n")
    apps = (bad / "greenhouse" / "applications.jsonl").read_text().splitlines()
    first = json.loads(apps[2])
    first["id"] = str(first["id"])                              # string id in Greenhouse
    apps[2] = json.dumps(first)
    (bad / "greenhouse" / "applications.jsonl").write_text("\n".join(apps) + "\n")
    contacts = (bad / "keap" / "contacts.jsonl").read_text().splitlines()
    c = json.loads(contacts[0])
    del c["update_time"]
    contacts[0] = json.dumps(c)
    (bad / "keap" / "contacts.jsonl").write_text("\n".join(contacts) + "\n")
    (bad / "highlevel" / "deals.jsonl").write_text("{}\n")
    before = dump(Path(fresh.path).parent)

    with pytest.raises(fixtures.FixtureError) as caught:
        fixtures.load(Path(fresh.path).parent, bad)

    problems = caught.value.problems
    assert any(p.startswith(f"{bad / 'greenhouse' / 'candidates.jsonl'}:2: not valid JSON")
               for p in problems)
    assert any(p.startswith(f"{bad / 'greenhouse' / 'applications.jsonl'}:3: \"id\" must be")
               for p in problems)
    assert any(p.startswith(f"{bad / 'keap' / 'contacts.jsonl'}:1: missing \"update_time\"")
               for p in problems)
    assert any("deals.jsonl" in p and "unknown highlevel entity" in p for p in problems)
    assert len(problems) == 4
    assert str(caught.value).count("\n") == 4
    assert dump(Path(fresh.path).parent) == before


def test_worker_processes_build_the_same_world(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Big worlds are built chunk by chunk in worker processes and indexed after loading: the
    same bytes as a world built here."""
    monkeypatch.setattr(world_build, "CHUNK", 60)
    monkeypatch.setattr(world, "CHUNK", 60)
    world.generate(tmp_path / "here", candidates=250, seed=4)
    monkeypatch.setattr(world, "_worker_count", lambda candidates: 3)
    monkeypatch.setattr(world, "REINDEX_FROM", 0)   # and indexed after loading, as big ones
    world.generate(tmp_path / "workers", candidates=250, seed=4)
    assert dump(tmp_path / "workers") == dump(tmp_path / "here")
    s = Store(tmp_path / "workers")
    try:
        indexes = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master "
                                                "WHERE type = 'index' AND sql IS NOT NULL")}
        assert indexes >= {"records_seq", "records_updated", "records_email", "records_parent_seq",
                           "lookup_by_id"}
        assert s.count("greenhouse", "candidates") == 250
        assert integrity_problems(s) == []
    finally:
        s.close()
