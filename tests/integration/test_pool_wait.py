"""A push waiting for its `keap_push` slot behind a live run (the instance configured by the
repository's dagster.yaml: one slot per pool) waits a bounded time, then fails with one line
naming the run that holds the slot and what to do; a SIGTERM ends a step's wait for its pool at
once, cleanly. The live holder is never released (its process is alive)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.errors import DagsterExecutionInterruptedError

from assets.sync.push import keap_push
from orchestration.instance import LocalRunLauncher
from orchestration.pools import WAIT_ENV, PoolWaitTimeout
from orchestration.resources import KeapResource, SnapshotStorage
from tests.instance_support import (
    Holder,
    in_thread,
    live_holder,
    pool_holders,
    pool_waiters,
    project_instance,
    wait_for,
)

DAY = "2026-01-15"
POOL = "keap_push"


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dg.DagsterInstance, Holder]]:
    """The instance, and a live run holding its only `keap_push` slot."""
    with pytest.MonkeyPatch.context() as mp:
        instance = project_instance(tmp_path_factory.mktemp("pool_wait") / "home", mp)
        with live_holder(instance, POOL) as holder:
            yield instance, holder


def _push(instance: dg.DagsterInstance, root: Path) -> dg.ExecuteInProcessResult:
    # the push never starts (it gets no slot): nothing is sent anywhere
    return dg.materialize([keap_push], partition_key=DAY, instance=instance, resources={
        "storage": SnapshotStorage(root=str(root)),
        "keap": KeapResource(base_url="http://127.0.0.1:9", api_key="x")})


def test_a_push_behind_a_live_run_gives_up_naming_it(held, tmp_path, monkeypatch):
    instance, holder = held
    monkeypatch.setenv(WAIT_ENV, "1")
    started = time.monotonic()
    with pytest.raises(PoolWaitTimeout) as raised:
        in_thread(lambda: _push(instance, tmp_path), 60, "the push behind a live run")
    waited = time.monotonic() - started
    message = str(raised.value)
    assert "\n" not in message
    assert f"held by run {holder.run_id} (pid {os.getpid()}, alive)" in message
    assert "pool 'keap_push' (limit 1)" in message and "terminate it" in message
    assert 1 <= waited < 8  # bounded: the bound plus a poll or two
    # the waiting run failed with that message and left the queue; the holder kept its slot
    run = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))[0]
    failure = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    assert message in str(failure.event_log_entry.dagster_event.event_specific_data.error)
    assert pool_waiters(instance, POOL) == set()
    assert pool_holders(instance, POOL) == {holder.run_id}
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.STARTED
    # the daemon's health check (run monitoring) agrees: the holder is running
    launcher = instance.run_launcher
    assert isinstance(launcher, LocalRunLauncher)
    health = launcher.check_run_worker_health(instance.get_run_by_id(holder.run_id))
    assert health.status.value == "RUNNING"


def test_sigterm_ends_a_wait_for_a_pool_slot(held):
    """A real SIGTERM to this process while a run in its main thread (where Dagster captures
    the signal) waits for the pool; before the fix it was held until the slot came free."""
    instance, holder = held

    @dg.op(pool=POOL)
    def needs_the_pool() -> None: ...

    @dg.job
    def waiter_job() -> None:
        needs_the_pool()

    sent: list[float] = []
    ended = threading.Event()
    queued_before = pool_waiters(instance, POOL)  # only this run's queueing means "in the run"

    def terminate_when_queued() -> None:
        try:
            wait_for(lambda: pool_waiters(instance, POOL) - queued_before, 30,
                     "the step queued for its slot")
            time.sleep(0.3)
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGTERM)
            if not ended.wait(15):  # not honoured: free the pool, so this fails, not hangs
                holder.release.set()
        except AssertionError:
            holder.release.set()

    watcher = threading.Thread(target=terminate_when_queued, daemon=True)
    watcher.start()
    try:
        with pytest.raises(DagsterExecutionInterruptedError):
            waiter_job.execute_in_process(instance=instance)
    finally:
        ended.set()
        watcher.join(30)
    took = time.monotonic() - sent[0]
    assert took < 5, f"SIGTERM took {took:.1f} s"
    run = instance.get_runs(dg.RunsFilter(job_name="waiter_job"))[0]
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert pool_waiters(instance, POOL) == set()
    assert instance.get_run_by_id(holder.run_id).status != dg.DagsterRunStatus.FAILURE
