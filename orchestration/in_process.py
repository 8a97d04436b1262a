"""The production schedule and automation, driven in this process at a given clock.

A deployment runs the Dagster daemon: `daily_backup_schedule` launches `backup_job` for
yesterday, and `default_automation_condition_sensor` evaluates the assets' automation
conditions every 30 s and launches what they request (orchestration/automation.py). The demo, the
tests and the latency bench do the same thing without a daemon, against the sandbox's simulated
clock (the daemon only knows the wall clock):

- `nightly_request(day)` is the schedule's own run request for `day` (its function, called with
  the tick that follows the day);
- `Automation.tick(now)` is one evaluation of the automation sensor: the same evaluation code and
  the same grouping of requests into runs as the daemon's tick, with a cursor kept across ticks;
- `Automation.launch(request)` runs a request in this process on the given instance (so the
  run, its materializations and check results are in the instance's history, as with the
  daemon), and `settle(now)` ticks and launches until nothing more is requested.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg

from orchestration.automation import AUTOMATION_SENSOR

log = logging.getLogger("talentvault.automation")

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def nightly_request(day: date | str) -> dg.RunRequest:
    """What `daily_backup_schedule` asks for at its tick after `day` (00:30 UTC the next day)."""
    from orchestration.schedules import daily_backup_schedule

    day = date.fromisoformat(day) if isinstance(day, str) else day
    tick = datetime.combine(day + timedelta(days=1), time(0, 30), tzinfo=UTC)
    return daily_backup_schedule(dg.build_schedule_context(scheduled_execution_time=tick))


class Automation:
    """The automation sensor's ticks, and the launch of their runs, in this process."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance,
                 tags: Mapping[str, str] | None = None,
                 run_config: Mapping[str, Any] | None = None,
                 on_result: Callable[[dg.ExecuteInProcessResult], None] | None = None):
        from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor

        self.defs, self.instance = defs, instance
        self.tags, self.run_config = dict(tags or {}), run_config or QUIET
        self.on_result = on_result
        self.cursor = AssetDaemonCursor.empty()
        self.sensor = next(s for s in defs.sensors or [] if s.name == AUTOMATION_SENSOR)
        self.graph = defs.resolve_asset_graph()
        self.results: list[dg.ExecuteInProcessResult] = []

    def tick(self, now: datetime) -> list[dg.RunRequest]:
        """One evaluation of the automation sensor at `now`; returns the runs it asks for."""
        # the daemon's own tick evaluation (no public API evaluates a sensor's conditions into
        # run requests; dg.evaluate_automation_conditions stops at the requested partitions)
        from dagster._core.definitions.automation_tick_evaluation_context import (
            AutomationTickEvaluationContext,
        )

        context = AutomationTickEvaluationContext(
            evaluation_id=self.cursor.evaluation_id, instance=self.instance,
            asset_graph=self.graph, cursor=self.cursor,
            materialize_run_tags=self.sensor.run_tags, observe_run_tags={},
            auto_observe_asset_keys=set(), asset_selection=self.sensor.asset_selection,
            logger=log, emit_backfills=False, evaluation_time=now)
        requests, self.cursor, _ = context.evaluate()
        return list(requests)

    def launch(self, request: dg.RunRequest, job_name: str | None = None,
               ) -> dg.ExecuteInProcessResult:
        """Run one request in this process: a named job (a schedule's or sensor's request) or,
        for the automation's requests, the selected assets and their checks."""
        name = job_name or request.job_name
        if not name and not request.asset_selection:
            raise ValueError("a run request with neither a job nor an asset selection")
        if name:
            job, selection = self.defs.resolve_job_def(name), None
        else:
            job = self.defs.resolve_implicit_global_asset_job_def()
            selection = list(request.asset_selection or [])
            checks = request.asset_check_keys
            every = {c for key in selection for c in self.graph.get(key).check_keys}
            if checks is not None and set(checks) != every:
                # as the daemon runs it: the checks the request names only (a check with an
                # automation condition of its own, the catalog's verify, does not ride along);
                # run as a subset job, so the run records no asset selection of its own
                job = job.get_subset(asset_selection=set(selection),
                                     asset_check_selection=set(checks))
                selection = None
        result = job.execute_in_process(
            instance=self.instance, partition_key=request.partition_key, raise_on_error=False,
            asset_selection=selection,
            tags={**request.tags, **self.tags},
            run_config={**self.run_config, **(request.run_config or {})})
        self.results.append(result)
        if self.on_result:
            self.on_result(result)
        return result

    def nightly(self, day: date | str) -> dg.ExecuteInProcessResult:
        """The nightly schedule's run for `day`, launched here."""
        from orchestration.schedules import daily_backup_schedule

        return self.launch(nightly_request(day), job_name=daily_backup_schedule.job_name)

    def settle(self, now: datetime, max_ticks: int = 10) -> list[dg.ExecuteInProcessResult]:
        """Tick and launch until a tick asks for nothing more; returns the runs launched."""
        launched = []
        for _ in range(max_ticks):
            requests = self.tick(now)
            if not requests:
                return launched
            launched += [self.launch(r) for r in requests]
        raise RuntimeError(f"automation still requesting runs after {max_ticks} ticks")
