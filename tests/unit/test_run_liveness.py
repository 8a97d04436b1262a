"""Telling whether a run's process is alive (orchestration/instance.py), and `talentvault runs
release`: a run whose process is gone is ended and its pool slot freed; a live run, or a run
that is not in the instance, is refused with exit code 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.instance import _process_alive, run_worker
from tests.instance_support import pool_holders, project_instance

POOL = "keap_push"


def _gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _started_run(instance: dg.DagsterInstance, pid: int) -> str:
    """A STARTED run whose RUN_START event came from `pid`, holding the pool's only slot."""
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="push_job", run_id=run_id,
                                   status=dg.DagsterRunStatus.NOT_STARTED))
    instance.report_dagster_event(DagsterEvent(DagsterEventType.RUN_START.value, "push_job",
                                               pid=pid), run_id)
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(POOL)
    assert storage.claim_concurrency_slot(POOL, run_id, "sync__keap_push").is_claimed
    return run_id


def test_a_zombie_or_a_pid_taken_by_a_newer_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)  # exited, not reaped: a zombie
    try:
        assert not _process_alive(child.pid, since=None)
    finally:
        child.wait()
    assert not _process_alive(_gone_pid(), since=None)
    assert _process_alive(os.getppid(), since=time.time())
    # this process started before the run it would have run: alive; after it: someone else
    assert _process_alive(os.getpid(), since=time.time())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not _process_alive(sleeper.pid, since=time.time() - 600)
        assert _process_alive(sleeper.pid, since=time.time())
    finally:
        sleeper.kill()
        sleeper.wait()


def test_runs_release_ends_dead_runs_and_refuses_live_ones(tmp_path, monkeypatch):
    instance = project_instance(tmp_path / "home", monkeypatch)
    dead = _started_run(instance, _gone_pid())
    assert run_worker(instance, dead).alive is False
    out = CliRunner().invoke(app, ["runs", "release"])
    assert out.exit_code == 0, out.output
    assert f"released run {dead}" in out.output and "1 run(s) released" in out.output
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert pool_holders(instance, POOL) == set()

    live = _started_run(instance, os.getpid())
    out = CliRunner().invoke(app, ["runs", "release", live, "no-such-run"])
    assert out.exit_code == 1
    assert f"run {live} not released: pid {os.getpid()}, alive" in out.output
    assert "run no-such-run not released: no such run" in out.output
    assert instance.get_run_by_id(live).status == dg.DagsterRunStatus.STARTED
    assert pool_holders(instance, POOL) == {live}
    out = CliRunner().invoke(app, ["runs", "release"])
    assert out.exit_code == 0 and "no run to release" in out.output
