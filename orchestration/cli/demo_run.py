"""`talentvault demo`: the whole product against the sandbox, in one command.

Starts the sandbox if none is running and plays the night after the sandbox's current day the way
a deployment's daemon does (on a persistent instance, so the runs show in `dagster dev`):
`daily_backup_schedule`'s run of `backup_job` (every backup with its checks), then the
automation sensor's ticks, which launch what the assets' automation conditions ask for: the
catalog's refresh, identity (profiles, quarantine, duplicates, field audit) and the Keap sync
(desired state, changeset, push; held if a blocking check failed). Time is the sandbox's clock.
Then it prints what landed, what the checks found, what the sync did, and SQL to try next.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import dagster as dg
from rich.console import Console
from rich.table import Table

from orchestration.automation import TRIGGER_TAG
from orchestration.config import (
    data_root,
    sandbox_dir,
    sandbox_may_start,
    sandbox_url,
    sandbox_url_chosen,
)
from orchestration.in_process import Automation
from orchestration.instance import release_abandoned_runs, use_project_instance
from orchestration.storage.parquet import connect as connect_duckdb
from sandbox.process import clock

EXAMPLE_QUERIES = [
    "SELECT status, count(*) AS applications FROM greenhouse.applications GROUP BY ALL "
    "ORDER BY 2 DESC",
    "SELECT id, _op, _source_updated_at FROM keap.contacts_history ORDER BY "
    "_source_updated_at DESC LIMIT 5",
    "SELECT count(*) AS candidates FROM greenhouse.candidates_as_of('{as_of}')",
    "SELECT action, status, count(*) FROM sync.ledger GROUP BY ALL ORDER BY ALL",
]


# The world the demo generates when there is none yet. The first sync writes every person into
# the sandbox's Keap under Keap's real API-key rate limit (240 calls a minute), so the world is
# kept to a size whose first push takes minutes, not a quarter of an hour; later days push only
# the day's changes. `talentvault sandbox init --candidates N` makes a bigger one.
DEMO_CANDIDATES = 1000

LAUNCHED_BY, PID = "talentvault/launched_by", "talentvault/pid"


def cover_day(day: str) -> None:
    """Make `day` a partition: the sandbox's days lie in its simulated past, before the default
    first day of an install that has backed up nothing yet (yesterday). Must run before the
    code location is imported (orchestration/first_day.py)."""
    from orchestration.first_day import FIRST_DAY_ENV, earliest_backed_up_day

    if os.environ.get(FIRST_DAY_ENV):
        return
    earliest = earliest_backed_up_day(data_root())
    if earliest is None or day < earliest:
        os.environ[FIRST_DAY_ENV] = day


def sandbox_day(base_url: str) -> date:
    """The last whole day the sandbox has lived: the day before its clock's current instant."""
    now = clock(base_url)
    return (now - timedelta(milliseconds=1)).date()


def run_demo(day: str | None = None, console: Console | None = None) -> dict[str, Any]:
    # sqlalchemy (Dagster's run storage) imports its ORM lazily on first use; finishing that
    # import here, in the main thread, keeps other threads from seeing a half-imported module
    import sqlalchemy.orm  # noqa: F401

    from sandbox.process import ensure_running

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or CI: do not squeeze the table to 80 columns
            console = Console(width=120)
    started = time.monotonic()
    sandbox_may_start()
    base, launched = ensure_running(sandbox_dir(), sandbox_url(), candidates=DEMO_CANDIDATES,
                                    reuse_any=sandbox_url_chosen())
    console.print(f"[bold]sandbox[/] {'started' if launched else 'running'} at {base}")
    partition = day or sandbox_day(base).isoformat()
    cover_day(partition)
    from orchestration.definitions import defs
    instance = use_project_instance()
    abandoned = release_abandoned_runs(instance)
    if abandoned:
        console.print(f"released {len(abandoned)} abandoned earlier run(s) and their "
                      "concurrency slots")
    console.print(f"[bold]backing up[/] partition {partition} into {data_root()}")

    graph = defs.resolve_asset_graph()
    # the day's pipeline: backups, checks, identity, the Keap sync (retention is a maintenance
    # job on its own schedule, not part of a day's run)
    keys = sorted((k for k in graph.get_all_asset_keys()
                   if graph.get(k).group_name != "maintenance"),
                  key=lambda k: k.to_user_string())
    # what a deployment's daemon does, at the sandbox's clock: the nightly schedule's run of
    # backup_job, then the automation sensor's ticks launch what the assets' conditions ask for
    automation = Automation(defs, instance,
                            tags={LAUNCHED_BY: "talentvault demo", PID: str(os.getpid())})
    night = datetime.combine(date.fromisoformat(partition) + timedelta(days=1), dtime(0, 30),
                             tzinfo=UTC)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            automation.tick(night)  # the sensor was ticking before the night's backup
            automation.nightly(partition)
            automation.settle(night)
        except BaseException as exc:  # shown after the progress, not lost in the thread
            failure.append(exc)

    launched_at = time.time()  # progress shows this run's materializations, not older ones
    # one query before the run thread starts: the event-log storage (sqlalchemy) finishes its
    # imports here, not concurrently in two threads (a partially-initialized-module race)
    _print_progress(instance, keys, partition, set(), console, since=launched_at)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    seen: set[str] = set()
    while worker.is_alive():
        _print_progress(instance, keys, partition, seen, console, since=launched_at)
        worker.join(0.5)
    _print_progress(instance, keys, partition, seen, console, since=launched_at)
    if failure:
        console.print(f"[red]automation stopped:[/] {failure[0]}")
    results = automation.results
    summary = summarize(instance, keys, partition)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["success"] = bool(results) and not failure and all(r.success for r in results)
    summary["runs"] = [{"run_id": r.run_id, "job": r.dagster_run.job_name,
                        "trigger": r.dagster_run.tags.get(TRIGGER_TAG, "nightly"),
                        "success": r.success} for r in results]
    summary["checks"] = check_summary(results)
    summary["identity"] = identity_summary(instance, partition)
    summary["sync"] = sync_summary(instance, partition, _push_run(instance, partition))
    _print_summary(summary, partition, console)
    return summary


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str,
            since: float = 0.0):
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None or event.timestamp < since:
        return None
    mat = event.asset_materialization
    # the day's partition; an unpartitioned asset (the catalog, over every day) has none
    return mat if mat.partition in (partition, None) else None


def _print_progress(instance, keys, partition, seen, console, since: float) -> None:
    for key in keys:
        name = key.to_user_string()
        if name in seen:
            continue
        mat = _latest(instance, key, partition, since)
        if mat is None or mat.metadata.get("dagster/row_count") is None:
            continue
        seen.add(name)
        md = mat.metadata
        calls = md.get("api_calls")
        console.print(f"  [green]✓[/] {name:<34} {md['dagster/row_count'].value:>8,} rows"
                      + (f"  {calls.value:>5} API calls" if calls else ""))


def summarize(instance, keys, partition) -> dict[str, Any]:
    rows = []
    for key in keys:
        md = _metadata(instance, key, partition)
        rows.append({"asset": key.to_user_string(), "rows": md.get("dagster/row_count"),
                     "upserts": md.get("upserts"), "deletes": md.get("deletes"),
                     "mode": md.get("mode"), "api_calls": md.get("api_calls"),
                     "seconds": md.get("duration_seconds")})
    return {"partition": partition, "assets": rows,
            "api_calls": sum(r["api_calls"] or 0 for r in rows)}


def _metadata(instance: dg.DagsterInstance, key: dg.AssetKey | list[str],
              partition: str) -> dict[str, Any]:
    """The values of an asset's latest materialization of `partition` (empty when none)."""
    mat = _latest(instance, dg.AssetKey(key) if isinstance(key, list) else key, partition)
    return {k: v.value for k, v in (mat.metadata if mat else {}).items()}


def identity_summary(instance: dg.DagsterInstance, partition: str) -> dict[str, Any]:
    """Profiles, quarantine (per reason) and review-list counts of the day's identity run."""
    profiles = _metadata(instance, ["identity", "candidate_profiles"], partition)
    quarantine = _metadata(instance, ["identity", "quarantine"], partition)
    duplicates = _metadata(instance, ["identity", "possible_duplicates"], partition)
    reasons = {k: v for k, v in quarantine.items()
               if "/" in k and not k.startswith("dagster/") and isinstance(v, int)}
    return {"profiles": profiles.get("dagster/row_count"),
            "candidates": profiles.get("candidates_read"),
            "merged_profiles": profiles.get("profiles_with_several_records"),
            "quarantined": quarantine.get("dagster/row_count"),
            "quarantine_by_reason": dict(sorted(reasons.items())),
            "possible_duplicates": duplicates.get("dagster/row_count")}


def sync_summary(instance: dg.DagsterInstance, partition: str,
                 run_id: str | None) -> dict[str, Any]:
    """What this run's Keap push did: contacts created and updated, tags applied and removed
    (from the ledger: succeeded writes of this run), failures and dead letters."""

    from assets.sync.ledger import ledger_relation

    push = _metadata(instance, ["sync", "keap_push"], partition)
    changeset = _metadata(instance, ["sync", "keap_changeset"], partition)
    done: dict[str, int] = {}
    if run_id and push:
        con = connect_duckdb()
        try:
            ledger_relation(con, data_root())
            done = dict(con.execute(
                "SELECT action, count(*) FROM ledger WHERE run_id = ? AND status = 'succeeded' "
                "GROUP BY action", [run_id]).fetchall())
        finally:
            con.close()
    return {"changes": changeset.get("dagster/row_count"), "pushed": bool(push),
            "created": done.get("create", 0), "updated": done.get("update", 0),
            "tags_added": done.get("tag_add", 0), "tags_removed": done.get("tag_remove", 0),
            "failed": push.get("failed", 0), "dead_letters": push.get("dead_letters_total", 0),
            "api_calls": push.get("api_calls", 0)}


def _push_run(instance: dg.DagsterInstance, partition: str) -> str | None:
    event = instance.get_latest_materialization_event(dg.AssetKey(["sync", "keap_push"]))
    mat = event.asset_materialization if event else None
    return event.run_id if mat is not None and mat.partition == partition else None


def check_summary(results: list[Any]) -> dict[str, Any]:
    """Counts of the runs' data-quality check results, and the failing ones by name."""
    evaluations = [e for r in results for e in r.get_asset_check_evaluations()]
    failed = [e for e in evaluations if not e.passed]
    errors = [e for e in failed if e.severity == dg.AssetCheckSeverity.ERROR]
    return {"evaluated": len(evaluations), "passed": len(evaluations) - len(failed),
            "warnings": len(failed) - len(errors), "errors": len(errors),
            "failing": sorted(f"{e.asset_key.to_user_string()}:{e.check_name}"
                              f" ({e.severity.value})" for e in failed)}


def _print_summary(summary: dict[str, Any], partition: str, console: Console) -> None:
    table = Table(title=f"talentvault backup of {partition}")
    for col in ("asset", "mode", "rows", "upserts", "deletes", "API calls", "seconds"):
        table.add_column(col, justify="left" if col in ("asset", "mode") else "right",
                         no_wrap=True)
    for r in summary["assets"]:
        table.add_row(r["asset"], r["mode"] or "", *(
            "-" if r[k] is None else f"{r[k]:,}" if isinstance(r[k], int) else str(r[k])
            for k in ("rows", "upserts", "deletes", "api_calls", "seconds")))
    console.print(table)
    ok = "[green]succeeded[/]" if summary["success"] else "[red]FAILED (see dagster dev)[/]"
    runs = ", ".join(f"{r['job'] if r['job'] != '__ASSET_JOB' else 'automation'}"
                     f"{'' if r['success'] else ' (failed)'}" for r in summary["runs"])
    console.print(f"runs {ok} ({runs}): {summary['api_calls']:,} API calls in "
                  f"{summary['seconds']}s")
    c = summary["checks"]
    console.print(f"data checks: {c['evaluated']} evaluated, {c['passed']} passed, "
                  f"{c['warnings']} warnings, {c['errors']} errors")
    for name in c["failing"][:10]:
        console.print(f"  [yellow]![/] {name}")
    i = summary.get("identity") or {}
    if i.get("profiles") is not None:
        console.print(f"identity: {i['candidates'] or 0:,} candidates -> {i['profiles']:,} "
                      f"profiles ({i['merged_profiles'] or 0:,} merged from several records); "
                      f"{i['quarantined'] or 0:,} records quarantined; "
                      f"{i['possible_duplicates'] or 0:,} possible duplicates to review")
        for reason, n in i["quarantine_by_reason"].items():
            console.print(f"  quarantine {reason}: {n:,}")
    k = summary.get("sync") or {}
    if k.get("pushed"):
        console.print(f"keap sync: {k['created']:,} contacts created, {k['updated']:,} updated, "
                      f"{k['tags_added']:,} tags applied, {k['tags_removed']:,} removed "
                      f"({k['api_calls']:,} API calls); {k['failed']:,} failed, "
                      f"{k['dead_letters']:,} in the dead letter "
                      "(`talentvault sql \"SELECT * FROM sync.dead_letter\"`)")
    elif k.get("changes") is not None:
        console.print(f"keap sync: {k['changes']:,} changes computed, not pushed "
                      "(a blocking check failed, or the push was not selected)")
    console.print("\nTry SQL over every snapshot:")
    as_of = f"{partition}T12:00:00Z"
    for q in EXAMPLE_QUERIES:
        console.print(f'  uv run talentvault sql "{q.format(as_of=as_of)}"')
    console.print("\nBrowse the runs: uv run talentvault ui  ·  "
                  "Play a day and re-run: uv run talentvault sandbox tick --days 1 && "
                  "uv run talentvault demo")
