"""A step of a concurrency pool waits for its slot a bounded time, and a SIGTERM ends the wait.

Dagster 1.13 makes a step of a pool (`pool="keap_push"`, dagster.yaml `concurrency: pools:
default_limit: 1`) wait in `InstanceConcurrencyContext.claim`, which the executor polls until a
slot is free. As shipped, that wait turned one killed push into pushes that never ran again
(issue 13): a slot held by a run whose process is gone is never freed, so the wait never ends; the
executors poll without sleeping (the in-process one sleeps `interval_to_next_pending_claim_check`,
which returns `min(0, ...)`; Dagster PR 20367 was closed unmerged): a busy loop; and the
in-process executor never looks at the SIGTERM/SIGINT that Dagster captures during a run, so only
SIGKILL stops it.

`install()` (called by the code location and by the push's module, once per process) wraps two
methods. While a step is blocked:
  - at once and then every `CHECK_SECONDS`, the runs holding or queued for its pool are checked
    and those whose process is gone are released (orchestration/instance.py): the step takes
    the slot within seconds, whoever launched the dead run and however it died;
  - when nothing else of the run is running: a captured SIGTERM/SIGINT, or a Terminate from the
    UI, ends the run as interrupted; and once the same other run(s) have held the pool for
    `TALENTVAULT_POOL_WAIT_SECONDS` (default `DEFAULT_WAIT_SECONDS`), the run fails with
    `PoolWaitTimeout`: one line naming the run holding the slot and what to do. Waiting behind
    steps of its own run never counts (that is progress);
  - when nothing else of the run is running, the executor sleeps until the next claim check, at
    most `MAX_SLEEP_SECONDS` (so all of the above is prompt), instead of polling in a busy loop.
The wait is Dagster's own in every other respect (priorities, the queue, the UI's pool page). The
multiprocess executor checks SIGTERM itself.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._utils.interrupts import check_captured_interrupt

from orchestration.instance import release_abandoned_runs, run_worker

WAIT_ENV = "TALENTVAULT_POOL_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 900.0
CHECK_SECONDS = 2.0       # how often a blocked step looks at its pool's holders
MAX_SLEEP_SECONDS = 1.0   # longest sleep between polls (how soon a SIGTERM is seen)
_STATE = "_talentvault_pool_waits"
_installed: dict[str, Any] = {}


class PoolWaitTimeout(Exception):
    """A step waited too long for a concurrency-pool slot held by another run."""


def wait_limit_seconds() -> float:
    """How long a step may wait behind the same other run(s) for a pool slot."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_WAIT_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ValueError(f"{WAIT_ENV}={raw!r} is not a number of seconds; set it to e.g. "
                         f"{int(DEFAULT_WAIT_SECONDS)}") from None


@dataclass
class _Waits:
    """What one run's concurrency context knows about its blocked steps."""

    pool: dict[str, str] = field(default_factory=dict)              # step -> its pool
    since: dict[str, float] = field(default_factory=dict)           # step -> waiting behind...
    holders: dict[str, frozenset[str]] = field(default_factory=dict)  # ... these runs since then
    checked: dict[str, float] = field(default_factory=dict)         # pool -> last check
    announced: set[str] = field(default_factory=set)                # steps told about in the log
    canceling: bool = False                                         # Terminate pressed


def install() -> None:
    """Wrap Dagster's slot claim and step selection (once per process; see the module doc)."""
    if _installed:
        return
    claim, select = InstanceConcurrencyContext.claim, ActiveExecution.get_steps_to_execute
    for method, expected in ((claim, ["self", "concurrency_key", "step_key", "step_priority"]),
                             (select, ["self", "limit"])):
        params = list(inspect.signature(method).parameters)
        if params != expected:
            raise RuntimeError(
                f"orchestration/pools.py wraps {method.__qualname__}{tuple(expected)} of Dagster "
                f"1.13; the installed Dagster's takes {tuple(params)}: adapt the wrapper")

    @functools.wraps(claim)
    def claim_or_check(self: InstanceConcurrencyContext, concurrency_key: str, step_key: str,
                       step_priority: int = 0) -> bool:
        if claim(self, concurrency_key, step_key, step_priority):
            _forget(_waits(self), step_key)
            return True
        _blocked(self, concurrency_key, step_key)
        return False

    @functools.wraps(select)
    def steps_or_wait(self: ActiveExecution, limit: int | None = None
                      ) -> Sequence[ExecutionStep]:
        steps = select(self, limit)
        ctx = self._instance_concurrency_context
        if not steps and not self._in_flight and ctx is not None and ctx.has_pending_claims():
            # nothing of this run is running: ending it now is clean, and so is sleeping until
            # the next claim check (both executors would poll again at once: a busy loop)
            _give_up_if_due(ctx)
            time.sleep(_until_next_check(ctx))
        return steps

    InstanceConcurrencyContext.claim = claim_or_check
    ActiveExecution.get_steps_to_execute = steps_or_wait
    _installed.update(claim=claim, select=select)


def _until_next_check(ctx: InstanceConcurrencyContext) -> float:
    """Seconds until a pending claim is due to be checked again, at most `MAX_SLEEP_SECONDS`
    (Dagster's `interval_to_next_pending_claim_check` returns min(0, ...): never sleeps)."""
    now = time.time()
    return max(0.0, min([MAX_SLEEP_SECONDS, *(t - now for t in ctx._pending_timeouts.values())]))


def _waits(ctx: InstanceConcurrencyContext) -> _Waits:
    waits = ctx.__dict__.get(_STATE)
    if waits is None:
        waits = ctx.__dict__[_STATE] = _Waits()
    return waits


def _forget(waits: _Waits, step_key: str) -> None:
    for table in (waits.pool, waits.since, waits.holders):
        table.pop(step_key, None)


def _blocked(ctx: InstanceConcurrencyContext, pool: str, step_key: str) -> None:
    """A claim was refused: note it, and look at the pool's holders when a check is due."""
    waits, now = _waits(ctx), time.monotonic()
    waits.pool[step_key] = pool
    waits.since.setdefault(step_key, now)
    if now - waits.checked.get(pool, float("-inf")) >= CHECK_SECONDS:
        waits.checked[pool] = now
        _check_pool(ctx, waits, pool, step_key, now)


def _check_pool(ctx: InstanceConcurrencyContext, waits: _Waits, pool: str, step_key: str,
                now: float) -> None:
    """Release the pool's runs whose process is gone, and restart the step's clock when it waits
    behind someone new (or behind its own run)."""
    instance, own = ctx._instance, ctx._run_id
    run = instance.get_run_by_id(own)
    waits.canceling = run is not None and run.status == DagsterRunStatus.CANCELING
    freed = release_abandoned_runs(instance, [pool], by=f"run {own}")
    if freed:
        for key in ctx._pending_timeouts:  # claim again now, not after Dagster's backoff
            ctx._pending_timeouts[key] = 0.0
        if run is not None:
            instance.report_engine_event(
                f"freed pool '{pool}' from run(s) {', '.join(freed)}: their process was killed "
                "or crashed (marked failed)", run, step_key=step_key)
    holders, own_holds = _holders(instance, pool, own)
    if own_holds or holders != waits.holders.get(step_key):
        waits.holders[step_key] = holders
        waits.since[step_key] = now
    if holders and not own_holds and step_key not in waits.announced and run is not None:
        waits.announced.add(step_key)
        instance.report_engine_event(
            f"{step_key} waits for pool '{pool}', held by run(s) {', '.join(sorted(holders))}; "
            f"gives up after {wait_limit_seconds():.0f} s ({WAIT_ENV})", run, step_key=step_key)


def _give_up_if_due(ctx: InstanceConcurrencyContext) -> None:
    """End the run when it was told to stop, or has waited too long behind another run."""
    waits = _waits(ctx)
    if check_captured_interrupt() or waits.canceling:
        raise DagsterExecutionInterruptedError()  # SIGTERM/SIGINT/Terminate, held by Dagster
    limit, now = wait_limit_seconds(), time.monotonic()
    for step_key, since in list(waits.since.items()):
        if now - since > limit and waits.holders.get(step_key):
            raise PoolWaitTimeout(_timeout_message(ctx, waits.pool[step_key], step_key, limit))


def _holders(instance: Any, pool: str, own: str) -> tuple[frozenset[str], bool]:
    """(the other runs holding a slot of `pool` or next in its queue with one assigned, whether
    the waiting run itself holds one)."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    held = {s.run_id for s in info.claimed_slots}
    held |= {p.run_id for p in info.pending_steps if p.assigned_timestamp is not None}
    return frozenset(held - {own}), own in held


def _timeout_message(ctx: InstanceConcurrencyContext, pool: str, step_key: str,
                     limit: float) -> str:
    instance = ctx._instance
    holders = sorted(_holders(instance, pool, ctx._run_id)[0]) or ["RUN_ID"]
    limit_now = instance.event_log_storage.get_concurrency_info(pool).limit
    held = ", ".join(f"run {r} ({run_worker(instance, r).describe()})" for r in holders[:3])
    return (f"{step_key} waited {limit:.0f} s for a slot of pool '{pool}' (limit {limit_now}) "
            f"and gave up: it is held by {held}. Let that run finish or terminate it (Dagster "
            f"UI), then run again; if you know its process is gone, `talentvault runs release "
            f"{holders[0]} --force` frees the slot ({WAIT_ENV} sets how long to wait)")
