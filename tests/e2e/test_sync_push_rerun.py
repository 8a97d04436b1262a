"""A Keap push *run* killed with SIGKILL, then a new push run (issue 13): the killed run keeps its
`keap_push` pool slot (the instance is configured by the repository's dagster.yaml: one slot per
pool) and nothing of it is ended. The new run must free that slot by itself, compact the killed
run's write-ahead log, send only what is left, within seconds of that work, and leave Keap in the
changeset's state with every write in the ledger once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg

from assets.sync.ledger import parquet_path, read_wal, run_wals
from assets.sync.push import keap_push
from orchestration.resources import KeapResource, SnapshotStorage
from sandbox import credentials
from tests.conftest import Sandbox
from tests.e2e.sync_push_support import (
    DAY,
    check_each_once,
    check_final_state,
    ledger_rows,
    standard_changes,
    write_changeset,
)
from tests.instance_support import REPO, in_thread, pool_holders, project_instance, wait_for

POOL = "keap_push"
# the push as a Dagster run in a process of its own, paced so it can be killed mid-way
PUSH_RUN = """
import sys
import dagster as dg
from assets.sync.push import keap_push
from orchestration.resources import KeapResource, SnapshotStorage

base, root, day, key = sys.argv[1:5]
dg.materialize(
    [keap_push], partition_key=day, instance=dg.DagsterInstance.get(),
    resources={"storage": SnapshotStorage(root=root),
               "keap": KeapResource(base_url=f"{base}/keap/crm", api_key=key,
                                    requests_per_second=25, requests_per_minute=6000,
                                    backoff_seconds=0.01)},
    run_config={"ops": {"sync__keap_push": {"config": {"concurrency": 3, "tag_batch": 1}}}})
"""


def push_run_until_killed(sandbox: Sandbox, home: Path, root: Path, kill_after: int
                          ) -> tuple[str, int]:
    """Start a push run in a child process and SIGKILL it once its WAL holds `kill_after`
    outcomes; returns (its run id, the outcomes it left)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PUSH_RUN, sandbox.base_url, str(root), DAY,
         credentials.KEAP_API_KEY], cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        def wal_full() -> Path | None:
            if proc.poll() is not None:
                raise AssertionError(f"the push ended before it was killed: "
                                     f"{proc.stderr.read().decode()[-2000:]}")
            wals = run_wals(root)
            return wals[0] if wals and wals[0].read_bytes().count(b"\n") >= kill_after else None

        wal = wait_for(wal_full, 90, f"{kill_after} outcomes in the push's WAL")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return wal.stem, len(read_wal(wal))


def test_a_push_run_killed_by_sigkill_then_a_new_run(sandbox: Sandbox, tmp_path, monkeypatch):
    instance = project_instance(tmp_path / "home", monkeypatch)
    root = tmp_path / "data"
    sandbox.rate_limits(False)
    rows, n = standard_changes(sandbox, n_new=40, n_existing=20)
    write_changeset(root, rows, tag_categories={"Active Applicant": "Pipeline"},
                    custom_fields={"Current Stage": {"field_type": "TEXT",
                                                     "on_missing": "create"}})
    creates = sum(r["action"] == "create" for r in rows)
    killed_run, killed = push_run_until_killed(sandbox, tmp_path / "home", root, kill_after=15)
    assert 15 <= killed < creates  # killed among the creates
    # the state issue 13 found: the killed run is still STARTED and holds the only slot
    assert instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.STARTED
    assert pool_holders(instance, POOL) == {killed_run}
    # the daemon's run monitoring would see it dead too (dagster.yaml's LocalRunLauncher)
    health = instance.run_launcher.check_run_worker_health(instance.get_run_by_id(killed_run))
    assert health.status.value == "FAILED"

    started = time.monotonic()
    result = in_thread(lambda: dg.materialize(
        [keap_push], partition_key=DAY, instance=instance,
        resources={"storage": SnapshotStorage(root=str(root)),
                   "keap": KeapResource(base_url=f"{sandbox.base_url}/keap/crm",
                                        api_key=credentials.KEAP_API_KEY,
                                        requests_per_second=1000, requests_per_minute=60000)},
        run_config={"ops": {"sync__keap_push": {"config": {"tag_batch": 1}}}}),
        90, "the push run after the killed one")
    took = time.monotonic() - started
    assert result.success
    push = {k: v.value for k, v in
            result.asset_materializations_for_node("sync__keap_push")[0].metadata.items()}
    # within seconds of the work it had left: freeing the slot costs seconds, not minutes
    assert took - push["duration_seconds"] < 10, (took, push["duration_seconds"])
    # the killed run was ended (failed) and gave its slot back; nothing holds the pool now
    dead = instance.get_run_by_id(killed_run)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(
        killed_run, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    assert "abandoned" in failure.event_log_entry.dagster_event.message
    assert pool_holders(instance, POOL) == set()
    # the killed run's WAL compacted; only what was left was sent; Keap as the changeset says
    assert parquet_path(root, killed_run).exists() and run_wals(root) == []
    assert push["failed"] == 0 and killed + push["sent"] == len(rows)
    check_final_state(sandbox, n["n_new"], n["n_existing"])
    check_each_once(root, rows)
    assert Counter(r["run_id"] for r in ledger_rows(root)) == {killed_run: killed,
                                                               result.run_id: push["sent"]}
