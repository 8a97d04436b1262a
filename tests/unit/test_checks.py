"""Snapshot checks on crafted partitions: real Parquet written by SnapshotStorage, real DuckDB,
real Great Expectations. Each rule fires on exactly the record that breaks it, and on nothing
in clean data; failing ids (never personal data) are in the metadata."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from assets.extract import priority
from assets.greenhouse import schemas as gh
from assets.keap import schemas as kp
from checks.rules import (
    ENUMERATIONS_KNOWN,
    INCREMENTALS_CONTIGUOUS,
    PRIMARY_KEY_UNIQUE,
    REFERENCES_RESOLVE,
    REQUIRED_FIELDS_PRESENT,
    ROW_COUNT_MATCHES_MANIFEST,
    TIMESTAMPS_NOT_IN_FUTURE,
    TIMESTAMPS_PARSEABLE,
)
from checks.snapshots import check_specs, evaluate_partition
from orchestration.storage.snapshots import SnapshotStorage

DAY = "2026-01-05"
T = "2026-01-05T10:00:00Z"
CLOCK = datetime(2026, 1, 6, tzinfo=UTC)
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@pytest.fixture
def storage(tmp_path) -> SnapshotStorage:
    return SnapshotStorage(root=str(tmp_path))


def write(storage, schema, docs, day=DAY, mode="full", deletes=(), deleted_at=None):
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    w = storage.writer(schema, day, mode=mode, run_id="t",
                       window=(None if mode == "full" else start, end),
                       default_updated=end - timedelta(milliseconds=1))
    w.add(list(docs))
    if deletes:
        w.add_deletes(deletes, deleted_at=deleted_at or end - timedelta(milliseconds=1))
    return w.commit()


def app(id_, **kw):
    return {"id": id_, "candidate_id": 10000001, "job_id": 100001, "stage_id": 300001,
            "status": "in_process", "created_at": T, "updated_at": T, **kw}


def greenhouse_targets(storage, day=DAY):
    write(storage, gh.candidates, [
        {"id": 10000001, "first_name": "Ada", "created_at": T, "updated_at": T},
        {"id": 10000002, "first_name": "Bo", "created_at": T, "updated_at": T}], day)
    write(storage, gh.jobs, [{"id": 100001, "name": "Engineer", "status": "open",
                              "created_at": T, "updated_at": T}], day)
    write(storage, gh.job_stages, [{"id": 300001, "job_id": 100001, "name": "Screen",
                                    "created_at": T, "updated_at": T}], day)


def evaluate(storage, schema, day=DAY, incremental=True):
    return {r.check_name: r for r in evaluate_partition(
        storage, schema, day, clock=CLOCK, clock_source="sandbox", incremental=incremental)}


def failing(results) -> dict[str, list]:
    return {name: r.metadata["sample_failing_ids"].value
            for name, r in results.items() if not r.passed}


def test_clean_applications_pass_every_check_with_explicit_severity(storage):
    greenhouse_targets(storage)
    write(storage, gh.applications, [app(50000001), app(50000002, candidate_id=10000002,
                                                        status="hired", stage_id=None)])
    results = evaluate(storage, gh.applications)
    assert set(results) == {PRIMARY_KEY_UNIQUE, ROW_COUNT_MATCHES_MANIFEST,
                            REQUIRED_FIELDS_PRESENT, TIMESTAMPS_PARSEABLE,
                            TIMESTAMPS_NOT_IN_FUTURE, ENUMERATIONS_KNOWN, REFERENCES_RESOLVE,
                            INCREMENTALS_CONTIGUOUS}
    assert failing(results) == {}
    for r in results.values():
        assert r.metadata["unexpected_count"].value == 0
        assert r.metadata["rule"].value
    # guards the Keap push: structural checks are errors, the clock check only warns
    assert {n: r.severity for n, r in results.items()} == {
        **{n: ERROR for n in results}, TIMESTAMPS_NOT_IN_FUTURE: WARN}


def test_each_rule_fires_on_exactly_the_record_that_breaks_it(storage):
    greenhouse_targets(storage)
    write(storage, gh.applications, [
        app(50000001),                                           # clean
        app(50000002, candidate_id=99999999),                    # points at no candidate
        app(50000003, status="archived"),                        # unknown status
        app(50000004, candidate_id=None),                        # required field missing
        app(50000005, last_activity_at="next tuesday"),          # unreadable timestamp
        app(50000006, last_activity_at="2027-03-01T00:00:00Z"),  # after the clock
        app(50000007),                                           # ... and deleted at once
        app(50000008), app(50000008, updated_at="2026-01-05T11:00:00Z"),  # two versions: fine
    ], deletes=[50000007], deleted_at=datetime.fromisoformat(T))
    results = evaluate(storage, gh.applications)
    assert failing(results) == {
        REFERENCES_RESOLVE: [50000002],
        ENUMERATIONS_KNOWN: [50000003],
        REQUIRED_FIELDS_PRESENT: [50000004],
        TIMESTAMPS_PARSEABLE: [50000005],
        TIMESTAMPS_NOT_IN_FUTURE: [50000006],
        PRIMARY_KEY_UNIQUE: [50000007],
    }
    counts = {n: r.metadata["unexpected_count"].value for n, r in results.items()}
    assert counts[REFERENCES_RESOLVE] == counts[ENUMERATIONS_KNOWN] == 1
    assert counts[PRIMARY_KEY_UNIQUE] == 2   # both rows of the contradicting version
    refs = results[REFERENCES_RESOLVE].metadata
    assert "candidate_id -> candidates" in refs["rule"].value
    assert refs["unexpected_percent"].value == pytest.approx(100 / 8, abs=1e-3)  # of 8 judged
    assert results[ENUMERATIONS_KNOWN].metadata["unexpected_values"].value == ["archived"]
    assert results[REFERENCES_RESOLVE].severity == ERROR
    assert results[TIMESTAMPS_NOT_IN_FUTURE].severity == WARN
    assert results[TIMESTAMPS_NOT_IN_FUTURE].metadata["clock_source"].value == "sandbox"


def test_metadata_carries_ids_never_personal_data(storage):
    person = {"id": 10000009, "first_name": "Zelda", "last_name": "Quist",
              "email_addresses": [{"value": "zelda.quist@mail.example", "type": "personal"}],
              "phone_numbers": [{"value": "+1 415 555 0199", "type": "mobile"}],
              "created_at": "not a date", "updated_at": T,
              "last_activity_at": "2030-01-01T00:00:00Z"}
    write(storage, gh.candidates, [person])
    results = evaluate(storage, gh.candidates)
    assert failing(results) == {TIMESTAMPS_PARSEABLE: [10000009],
                                TIMESTAMPS_NOT_IN_FUTURE: [10000009]}
    text = json.dumps({n: {k: str(v.value) for k, v in r.metadata.items()}
                       for n, r in results.items()})
    for secret in ("Zelda", "Quist", "zelda.quist", "555 0199", "not a date"):
        assert secret not in text
    assert "10000009" in text


def test_row_counts_reconcile_with_the_manifest(storage):
    write(storage, gh.jobs, [{"id": 100001, "name": "Engineer", "status": "open",
                              "created_at": T, "updated_at": T}])
    assert ROW_COUNT_MATCHES_MANIFEST not in failing(evaluate(storage, gh.jobs))
    part = storage.partition_dir("greenhouse", "jobs", DAY)
    shutil.copy(part / "part-00000.parquet", part / "part-00001.parquet")  # a stray file
    results = evaluate(storage, gh.jobs)
    assert failing(results)[ROW_COUNT_MATCHES_MANIFEST] == ["part-00001.parquet"]
    assert results[ROW_COUNT_MATCHES_MANIFEST].metadata["unexpected_count"].value == 3
    (part / "part-00000.parquet").unlink()                                 # a lost file
    (part / "part-00001.parquet").unlink()
    results = evaluate(storage, gh.jobs)
    assert failing(results)[ROW_COUNT_MATCHES_MANIFEST] == ["part-00000.parquet"]


def test_incrementals_must_be_contiguous_since_the_last_full(storage):
    doc = {"id": 10000001, "created_at": T, "updated_at": T}
    write(storage, gh.candidates, [doc], "2026-01-01", mode="full")
    write(storage, gh.candidates, [doc], "2026-01-02", mode="incremental")
    write(storage, gh.candidates, [doc], "2026-01-04", mode="incremental")  # 01-03 missing
    assert INCREMENTALS_CONTIGUOUS not in failing(evaluate(storage, gh.candidates, "2026-01-02"))
    results = evaluate(storage, gh.candidates, "2026-01-04")
    assert failing(results)[INCREMENTALS_CONTIGUOUS] == ["2026-01-03"]
    assert "2026-01-01" in results[INCREMENTALS_CONTIGUOUS].metadata["rule"].value
    write(storage, gh.candidates, [doc], "2026-01-03", mode="full")         # a new chain
    assert INCREMENTALS_CONTIGUOUS not in failing(evaluate(storage, gh.candidates, "2026-01-04"))


def test_an_incremental_without_a_full_before_it_fails(storage):
    doc = {"id": 10000001, "created_at": T, "updated_at": T}
    write(storage, gh.candidates, [doc], "2026-01-02", mode="incremental")
    results = evaluate(storage, gh.candidates, "2026-01-02")
    assert failing(results)[INCREMENTALS_CONTIGUOUS] == ["2026-01-02"]


def test_references_are_judged_only_where_the_target_is_backed_up(storage):
    greenhouse_targets(storage, "2026-01-04")   # the targets' backup ends 2026-01-05 00:00
    write(storage, gh.applications, [
        app(50000001, candidate_id=99999998, updated_at="2026-01-04T10:00:00Z"),
        app(50000002, candidate_id=99999999, updated_at="2026-01-05T10:00:00Z"),  # newer
    ])
    results = evaluate(storage, gh.applications)
    assert failing(results)[REFERENCES_RESOLVE] == [50000001]
    targets = results[REFERENCES_RESOLVE].metadata["targets"].value
    assert "| candidate_id -> candidates | 2026-01-05T00:00:00.000Z | 1 |" in targets


def test_references_to_records_deleted_later_hold_for_the_day_they_were_alive(storage):
    greenhouse_targets(storage, "2026-01-04")
    write(storage, gh.candidates, [], "2026-01-05", mode="incremental", deletes=[10000002])
    write(storage, gh.applications, [app(50000001, candidate_id=10000002,
                                         updated_at="2026-01-04T10:00:00Z")], "2026-01-04")
    write(storage, gh.applications, [app(50000001, candidate_id=10000002,
                                         updated_at="2026-01-05T10:00:00Z")], "2026-01-05",
          mode="incremental")
    assert REFERENCES_RESOLVE not in failing(evaluate(storage, gh.applications, "2026-01-04"))
    assert failing(evaluate(storage, gh.applications, "2026-01-05"))[REFERENCES_RESOLVE] == [
        50000001]


def test_keap_tag_references_and_email_statuses(storage):
    write(storage, kp.tag_categories, [{"id": "1", "name": "Lead Source"}])
    write(storage, kp.tags, [{"id": "101", "name": "LinkedIn", "category": {"id": "1"}},
                             {"id": "102", "name": "Orphan", "category": {"id": "9"}}])

    def contact(id_, tags, status="CONFIRMED"):
        return {"id": id_, "given_name": "Ann", "tag_ids": tags, "create_time": T,
                "update_time": T, "email_addresses": [
                    {"email": f"c{id_}@mail.example", "field": "EMAIL1",
                     "email_opt_status": status}]}
    write(storage, kp.contacts, [contact("1001", ["101"]), contact("1002", ["101", "999"]),
                                 contact("1003", [], status="MAYBE_LATER")])
    results = evaluate(storage, kp.contacts)
    assert failing(results) == {REFERENCES_RESOLVE: ["1002"], ENUMERATIONS_KNOWN: ["1003"]}
    assert results[REFERENCES_RESOLVE].severity == ERROR
    assert results[ENUMERATIONS_KNOWN].severity == WARN   # Keap's marketing state: informs
    assert results[ENUMERATIONS_KNOWN].metadata["unexpected_values"].value == ["MAYBE_LATER"]
    assert failing(evaluate(storage, kp.tags)) == {REFERENCES_RESOLVE: ["102"]}


def test_blocking_specs_guard_the_keap_push_and_references_run_first():
    def blocking(schema, incremental=True):
        return {s.name for s in check_specs(schema, incremental) if s.blocking}

    assert blocking(gh.applications) == {
        PRIMARY_KEY_UNIQUE, ROW_COUNT_MATCHES_MANIFEST, REQUIRED_FIELDS_PRESENT,
        TIMESTAMPS_PARSEABLE, ENUMERATIONS_KNOWN, REFERENCES_RESOLVE, INCREMENTALS_CONTIGUOUS}
    assert blocking(gh.interviews) == set()
    assert REFERENCES_RESOLVE in blocking(kp.contacts)
    assert ENUMERATIONS_KNOWN not in blocking(kp.contacts)
    assert INCREMENTALS_CONTIGUOUS not in {s.name for s in check_specs(gh.jobs, False)}
    order = sorted(["offers", "applications", "candidates", "job_stages", "jobs"],
                   key=lambda e: -priority("greenhouse", e))
    assert order.index("jobs") < order.index("job_stages") < order.index("applications")
    assert order.index("candidates") < order.index("applications") < order.index("offers")
    assert priority("keap", "tags") > priority("keap", "contacts")


def test_the_clock_check_reads_the_given_clock(storage):
    write(storage, gh.jobs, [{"id": 100001, "name": "Engineer", "status": "open",
                              "created_at": T, "updated_at": T,
                              "opened_at": "2026-01-06T00:04:00Z",   # within the skew
                              "closed_at": "2026-01-06T00:06:00Z"}])  # beyond it
    results = evaluate(storage, gh.jobs, incremental=False)
    assert failing(results) == {TIMESTAMPS_NOT_IN_FUTURE: [100001]}
    assert "closed_at" in results[TIMESTAMPS_NOT_IN_FUTURE].metadata["rule"].value
    assert date.fromisoformat(DAY) < CLOCK.date()
