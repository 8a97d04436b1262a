"""The Keap push against the sandbox over real sockets: minimum writes, zero writes on a re-run,
faults, the dead letter, dry run, the Dagster asset and the catalog views."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from assets.catalog.views import open_catalog
from assets.sync.ledger import dead_letter
from assets.sync.push import PUSH_KEY, keap_push, run_push
from orchestration.resources import KeapResource
from orchestration.storage.snapshots import SnapshotStorage
from tests.conftest import Sandbox
from tests.e2e.sync_push_support import (
    DAY,
    check_each_once,
    check_final_state,
    client,
    create,
    ledger_rows,
    standard_changes,
    tag,
    write_changeset,
    writes,
)

CATEGORIES = {"Active Applicant": "Pipeline", "Old Stage": None}
FIELDS = {"Current Stage": {"field_type": "TEXT", "on_missing": "create"}}


def test_minimum_writes_then_a_rerun_writes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.rate_limits(False)
    rows, n = standard_changes(sandbox, n_new=12, n_existing=8)
    write_changeset(tmp_path, rows, tag_categories=CATEGORIES, custom_fields=FIELDS)
    with client(sandbox) as c:
        result = run_push(c, tmp_path, DAY, "run-1", tag_batch=5)
    assert (result.sent, result.succeeded, result.failed) == (len(rows), len(rows), 0)
    check_final_state(sandbox, n["n_new"], n["n_existing"])
    check_each_once(tmp_path, rows)

    calls = Counter((w["method"], w["path"].rsplit("/", 1)[-1].split(":")[-1])
                    for w in writes(sandbox))
    # one upsert per new contact (duplicate_option=Email), one PATCH per changed contact
    upserts = [w for w in writes(sandbox) if w["method"] == "POST"
               and w["path"].endswith("/contacts")]
    assert len(upserts) == 12 and all("duplicate_option=Email" in w["query"] for w in upserts)
    assert sum(v for (m, _), v in calls.items() if m == "PATCH") == 8
    # tags batched per tag: 20 contacts get 'Active Applicant', 5 a call; 8 lose 'Old Stage'
    assert calls[("POST", "applyTags")] == 4
    assert calls[("POST", "removeTags")] == 2
    # created once each: the tag, its category, the custom field
    assert calls[("POST", "tags")] == 1 and calls[("POST", "categories")] == 1
    assert calls[("POST", "customFields")] == 1
    assert result.write_calls == len(writes(sandbox)) == 12 + 8 + 4 + 2 + 3
    assert result.api_calls >= result.write_calls

    sandbox.admin("DELETE", "/requests")
    with client(sandbox) as c:
        again = run_push(c, tmp_path, DAY, "run-2")
    assert sandbox.requests("keap") == []  # not a single call, let alone a write
    assert (again.sent, again.skipped_succeeded) == (0, len(rows))
    assert again.ledger_file is None
    check_each_once(tmp_path, rows)


def test_faults_lose_nothing_and_duplicate_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.rate_limits(False)
    rows, n = standard_changes(sandbox, n_new=40, n_existing=30)
    bad = create(5000, "not-an-email", given_name="Bad")
    bad_tag = tag("tag_add", 5000, "not-an-email", "Active Applicant",
                  depends_on=bad["change_id"])
    rows += [bad, bad_tag]
    write_changeset(tmp_path, rows, tag_categories=CATEGORIES, custom_fields=FIELDS)
    sandbox.faults("keap", {"429": 0.04, "500": 0.03, "503": 0.03, "drop": 0.04},
                   retry_after=0)
    results = []
    for run in range(6):  # retryable failures are retried by the next run
        with client(sandbox, max_attempts=3) as c:
            results.append(run_push(c, tmp_path, DAY, f"faulty-{run}", concurrency=4,
                                    tag_batch=7))
        if not results[-1].failed_retryable - 1:  # only the tag waiting on the bad create
            break
    sandbox.admin("PUT", "/faults", json={"clear": True})
    faults = Counter(r["fault"] for r in sandbox.requests("keap") if r["fault"])
    assert sum(faults.values()) >= 6 and faults["drop"], f"too few faults to prove much: {faults}"

    check_final_state(sandbox, n["n_new"], n["n_existing"])
    check_each_once(tmp_path, rows, except_ids=frozenset({bad["change_id"],
                                                          bad_tag["change_id"]}))
    con = duckdb.connect()
    dead = dead_letter(con, tmp_path).to_arrow_table().to_pylist()
    assert [d["change_id"] for d in dead] == [bad["change_id"]]
    assert dead[0]["http_status"] == 400 and "email_addresses" in dead[0]["error"]
    assert "not-an-email" not in json.dumps(ledger_rows(tmp_path), default=str)
    # the dead letter is not resent; its dependent tag waits (retryable) with a reason
    waiting = [r for r in ledger_rows(tmp_path) if r["change_id"] == bad_tag["change_id"]]
    assert {r["error"] for r in waiting} == {"depends on failed create"}
    assert all(r["status"] == "failed_retryable" for r in waiting)
    attempts = [r["attempt"] for r in sorted(waiting, key=lambda r: r["at"])]
    assert attempts == list(range(1, len(results) + 1))
    assert sum(r.skipped_dead_letter for r in results[1:]) == len(results) - 1


def test_permanent_and_retryable_classification(sandbox: Sandbox, tmp_path: Path) -> None:
    """A PATCH on a contact Keap no longer has is a dead letter; a 503 outage that outlasts the
    retries is retried by the next run."""
    sandbox.rate_limits(False)
    gone = {"change_id": "a" * 32, "action": "update", "profile_id": 1, "contact_id": "424242",
            "match_email": "x@example.com", "fields": ["job_title"],
            "body": json.dumps({"job_title": "CTO"}), "update_mask": ["job_title"]}
    fine = create(2, "fine@example.com", given_name="Fine")
    write_changeset(tmp_path, [gone, fine])
    sandbox.queue_faults("keap", ["503"] * 2)  # both first attempts (one retry budget)
    with client(sandbox, max_attempts=1) as c:
        first = run_push(c, tmp_path, DAY, "p1", concurrency=1)
    assert first.failed_retryable == 2 and first.failed_permanent == 0
    with client(sandbox) as c:
        second = run_push(c, tmp_path, DAY, "p2")
    assert (second.succeeded, second.failed_permanent) == (1, 1)
    led = {(r["change_id"], r["run_id"]): r for r in ledger_rows(tmp_path)}
    assert led[("a" * 32, "p2")]["http_status"] == 404
    assert led[("a" * 32, "p2")]["attempt"] == 2
    assert led[(fine["change_id"], "p2")]["contact_id"] is not None
    assert led[(fine["change_id"], "p2")]["keap_update_time"] is not None


def test_dry_run_writes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.rate_limits(False)
    rows, _ = standard_changes(sandbox, n_new=3, n_existing=2)
    write_changeset(tmp_path, rows, tag_categories=CATEGORIES, custom_fields=FIELDS)
    with client(sandbox) as c:
        result = run_push(c, tmp_path, DAY, "dry", dry_run=True)
    assert sandbox.requests("keap") == []
    assert result.sent == 0 and result.not_attempted == len(rows)
    assert ledger_rows(tmp_path) == []
    assert "dry run" in result.markdown()


def test_asset_materializes_with_metadata_check_audit_and_catalog(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALENTVAULT_SANDBOX_URL", sandbox.base_url)
    sandbox.rate_limits(False)
    rows, n = standard_changes(sandbox, n_new=4, n_existing=3)
    bad = create(77, "broken@@example", given_name="Bad")
    write_changeset(tmp_path, [*rows, bad], tag_categories=CATEGORIES, custom_fields=FIELDS)
    resources = {"storage": SnapshotStorage(root=str(tmp_path)),
                 "keap": KeapResource(requests_per_second=50, requests_per_minute=3000)}
    res = dg.materialize([keap_push], partition_key=DAY, resources=resources,
                         run_config={"ops": {"sync__keap_push": {"config": {
                             "concurrency": 2}}}})
    assert res.success
    meta = res.asset_materializations_for_node("sync__keap_push")[0].metadata
    assert meta["succeeded"].value == len(rows) and meta["failed_permanent"].value == 1
    assert meta["dead_letters_today"].value == 1
    assert "applyTags" not in meta["summary"].value and "| create |" in meta["summary"].value
    checks = res.get_asset_check_evaluations()
    assert [(e.check_name, e.passed) for e in checks] == [("no_dead_letters", False)]
    check_final_state(sandbox, n["n_new"], n["n_existing"])

    con = open_catalog(tmp_path)
    by_status = dict(con.execute(
        "SELECT status, count(*) FROM sync.ledger GROUP BY 1").fetchall())
    assert by_status == {"succeeded": len(rows), "failed_permanent": 1}
    assert con.execute("SELECT change_id FROM sync.dead_letter").fetchall() == [
        (bad["change_id"],)]
    assert con.execute("SELECT count(*) FROM sync.keap_changeset").fetchone()[0] == len(rows) + 1
    event = con.execute("SELECT status, counts, run_id FROM audit.events "
                        "WHERE action = 'sync_push'").fetchall()
    assert len(event) == 1 and event[0][0] == "partial" and event[0][2] == res.run_id
    assert json.loads(event[0][1])["succeeded"] == len(rows)

    # dry run through Dagster: nothing written, audit says so
    sandbox.admin("DELETE", "/requests")
    dry = dg.materialize([keap_push], partition_key=DAY, resources=resources,
                         run_config={"ops": {"sync__keap_push": {"config": {
                             "dry_run": True}}}})
    assert dry.success and writes(sandbox) == []


def test_the_push_declares_its_pool_and_the_instance_limits_pools_to_one() -> None:
    assert keap_push.op.pool == "keap_push"
    assert keap_push.partitions_def is not None
    assert dg.AssetKey(["sync", "keap_changeset"]) in keap_push.asset_deps[PUSH_KEY]
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
