"""A persistent Dagster instance configured by the repository's own dagster.yaml (its concurrency
pools and run monitoring), in a tmp folder, and a live run holding a pool slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[1]


def project_instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """The instance of `home` (DAGSTER_HOME) with a copy of the repository's dagster.yaml; the
    working directory is elsewhere, as nothing in the instance depends on it."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.get()


def pool_holders(instance: dg.DagsterInstance, pool: str) -> set[str]:
    return {s.run_id for s in instance.event_log_storage.get_concurrency_info(pool).claimed_slots}


def pool_waiters(instance: dg.DagsterInstance, pool: str) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(pool)
    return {p.run_id for p in info.pending_steps} - {s.run_id for s in info.claimed_slots}


def in_thread(fn, timeout: float, what: str):
    """`fn()` in a thread, its result or its exception; fails (instead of hanging the suite) when
    it does not return within `timeout` seconds."""
    box: dict = {}

    def call() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise AssertionError(f"{what}: still running after {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


@dataclass
class Holder:
    run_id: str
    release: threading.Event  # set: the holder finishes and gives its slot back


@contextmanager
def live_holder(instance: dg.DagsterInstance, pool: str) -> Iterator[Holder]:
    """A real run of this process holding the only slot of `pool` until the block ends (or its
    `release` is set)."""
    release = threading.Event()

    @dg.op(pool=pool)
    def hold_slot() -> None:
        release.wait(120)

    @dg.job
    def holder_job() -> None:
        hold_slot()

    worker = threading.Thread(target=holder_job.execute_in_process,
                              kwargs={"instance": instance}, daemon=True)
    worker.start()
    try:
        holders = wait_for(lambda: pool_holders(instance, pool), 30, "the holder's slot")
        yield Holder(next(iter(holders)), release)
    finally:
        release.set()
        worker.join(30)
