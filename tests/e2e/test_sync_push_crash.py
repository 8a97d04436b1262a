"""Crash safety: the push runs in a child process that is SIGKILLed mid-way, then run
again: Keap ends in the same state, no contact is duplicated, every change is in the ledger once
as succeeded, and the killed runs' write-ahead logs are compacted by the next push."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from assets.sync.ledger import parquet_path, read_wal, run_wals, wal_dir
from assets.sync.push import run_push
from tests.conftest import Sandbox
from tests.e2e.sync_push_support import (
    DAY,
    check_each_once,
    check_final_state,
    client,
    kill_at_wal_lines,
    ledger_rows,
    standard_changes,
    write_changeset,
)

SCRIPT = """
import sys
from pathlib import Path
from assets.sync.push import run_push
from orchestration.http import RetryPolicy
from orchestration.resources.keap import KeapClient
from sandbox import credentials

base, root, day, run_id = sys.argv[1:5]
client = KeapClient(f"{base}/keap/crm", api_key=credentials.KEAP_API_KEY, windows=[(25, 1.0)],
                    retry=RetryPolicy(max_attempts=4, base_delay=0.01), timeout=10)
run_push(client, Path(root), day, run_id, concurrency=3, tag_batch=1)
print("finished")
"""


def push_until_killed(sandbox: Sandbox, root: Path, run_id: str, kill_after_lines: int) -> int:
    """Start a push in a child process and SIGKILL it once its WAL holds that many lines;
    returns the lines it left."""
    wal = wal_dir(root) / f"{run_id}.jsonl"
    kill_at_wal_lines([sys.executable, "-c", SCRIPT, sandbox.base_url, str(root), DAY, run_id],
                      wal, kill_after_lines, "push", seconds=60)
    assert wal.exists() and not parquet_path(root, run_id).exists()
    return len(read_wal(wal))


@pytest.mark.parametrize("phase", ["contacts", "tags"])
def test_sigkill_mid_push_then_rerun(sandbox: Sandbox, tmp_path: Path, phase: str) -> None:
    sandbox.rate_limits(False)
    rows, n = standard_changes(sandbox, n_new=40, n_existing=20)
    write_changeset(tmp_path, rows, tag_categories={"Active Applicant": "Pipeline"},
                    custom_fields={"Current Stage": {"field_type": "TEXT",
                                                     "on_missing": "create"}})
    contact_changes = sum(1 for r in rows if r["action"] in ("create", "update"))
    # killed among the contact writes, or among the tag writes (one contact a call)
    kill_after = 20 if phase == "contacts" else contact_changes + 15
    killed = push_until_killed(sandbox, tmp_path, "crash", kill_after_lines=kill_after)
    if phase == "contacts":
        assert killed < contact_changes
    else:
        assert contact_changes < killed < len(rows)

    with client(sandbox) as c:
        final = run_push(c, tmp_path, DAY, "final", tag_batch=1)
    assert final.compacted_runs == ["crash"]  # the killed run's WAL, compacted first
    assert parquet_path(tmp_path, "crash").exists()
    assert final.failed == 0
    # what the killed run recorded is not sent again; what was in flight when killed is
    assert killed + final.sent == len(rows)
    check_final_state(sandbox, n["n_new"], n["n_existing"])
    check_each_once(tmp_path, rows)
    runs = Counter(r["run_id"] for r in ledger_rows(tmp_path))
    assert runs == {"crash": killed, "final": final.sent}
    assert run_wals(tmp_path) == []
