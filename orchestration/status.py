"""What `talentvault status` reports: per source, how far the backup reaches and how its checks
stand; the last Keap push, the last verify, failed runs; the mode, which credentials are present
(names, never values) and whether the sandbox runs. And what of it needs a person.

Read from the data root (manifests, the audit trail) and the Dagster instance's event log, so
it answers in a second or two and never calls a vendor or starts the sandbox.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.config import (
    MODE_VAR,
    VENDORS,
    ModeError,
    checked_mode,
    data_root,
    missing_live_settings,
    sandbox_url,
)
from orchestration.instance import project_home
from orchestration.sensors import PUSH_KEY, VERIFY_CHECK
from orchestration.storage.backup_state import reference_now, rpo_hours, source_states
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path

CHECK_EVENTS_READ = 2000   # the newest check evaluations: a daily backup makes ~150
RUNS_READ = 200
RECENT = timedelta(days=14)


def mode_state() -> tuple[dict[str, Any], list[str]]:
    raw = os.environ.get(MODE_VAR, "").strip() or None
    try:
        current, error = checked_mode(), None
    except ModeError as e:
        current, error = raw or "unset", str(e)
    credentials = {}
    for vendor, v in VENDORS.items():
        credentials[vendor] = {
            "present": [n for n in v.names() if os.environ.get(n, "").strip()],
            "missing": missing_live_settings(vendor) if current == "live" else []}
    return ({"mode": current, "setting": raw, "error": error, "credentials": credentials},
            [error] if error else [])


def sandbox_state() -> dict[str, Any]:
    from sandbox.process import is_up

    url = sandbox_url()
    return {"url": url, "running": is_up(url, timeout=0.3)}


def check_health(instance: dg.DagsterInstance) -> dict[str, dict[str, Any]]:
    """The latest evaluation of each check, grouped by the source (first key part) it checks."""
    storage = instance.event_log_storage
    # SQLite keeps a database per run: look only in runs of the last weeks, not every run ever
    recent = dg.RunShardedEventsCursor(id=0, run_updated_after=datetime.now(UTC) - RECENT) \
        if storage.is_run_sharded else None
    records = storage.get_event_records(
        dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=recent),
        limit=CHECK_EVENTS_READ, ascending=False)
    latest: dict[tuple, dg.EventLogRecord] = {}
    for r in records:
        ev = r.event_log_entry.dagster_event.event_specific_data
        latest.setdefault((ev.asset_key, ev.check_name), r)
    out: dict[str, dict[str, Any]] = {}
    for (key, name), r in sorted(latest.items(), key=lambda kv: kv[0][0].to_user_string()):
        ev = r.event_log_entry.dagster_event.event_specific_data
        group = out.setdefault(key.path[0], {"passed": 0, "failed": []})
        if ev.passed:
            group["passed"] += 1
            continue
        run = None if ev.partition or not r.run_id else instance.get_run_by_id(r.run_id)
        group["failed"].append({
            "check": f"{key.to_user_string()} {name}", "run_id": r.run_id or None,
            "partition": ev.partition or (run.tags.get("dagster/partition") if run else None),
            "severity": ev.severity.value, "blocking": bool(ev.blocking)})
    return out


def last_push(instance: dg.DagsterInstance, root: Path) -> dict[str, Any] | None:
    from orchestration.storage.snapshots import SnapshotStorage

    records = instance.fetch_materializations(PUSH_KEY, limit=1).records
    if not records:
        return None
    r = records[0]
    meta = {k: getattr(v, "value", v) for k, v in r.asset_materialization.metadata.items()}
    rejects = SnapshotStorage(root=str(root)).manifest("sync", "keap_rejects", r.partition_key) \
        if r.partition_key else None
    return {"day": r.partition_key, "run_id": r.run_id, "at": r.timestamp,
            **{k: meta.get(k) for k in ("sent", "succeeded", "failed", "failed_permanent",
                                        "dead_letters_total", "dry_run")},
            "rejects": rejects.get("rows") if rejects else None}


def failed_runs(instance: dg.DagsterInstance) -> tuple[int, list[dict[str, Any]]]:
    """(jobs and assets seen, the failed runs that are the latest of one of them). An asset run
    counts for each asset it selected, so automation runs with varying selections are judged
    per asset: a later successful run of the asset clears it."""
    seen: set[str] = set()
    failed: dict[str, dict[str, Any]] = {}
    for rec in instance.get_run_records(limit=RUNS_READ):
        run = rec.dagster_run
        if not run.is_finished:
            continue
        what = ({k.to_user_string() for k in run.asset_selection} if run.asset_selection
                else {run.job_name})
        latest_of = what - seen
        seen |= what
        if latest_of and run.status == dg.DagsterRunStatus.FAILURE:
            failed[run.run_id] = {"job": run.job_name, "run_id": run.run_id,
                                  "partition": run.tags.get("dagster/partition"),
                                  "latest_for": sorted(latest_of)[:5]}
    return len(seen), list(failed.values())


def last_verify(root: Path) -> dict[str, Any] | None:
    """The newest `verify` event of the audit trail, one day folder at a time from the newest
    (a day can hold thousands of events: every SQL query is audited too)."""

    from orchestration.storage.audit import events_dir

    folder = events_dir(root)
    if not folder.is_dir():
        return None
    con = connect_duckdb()
    try:
        for day in sorted(folder.glob("date=*"), reverse=True):
            if not any(day.glob("*.parquet")):
                continue
            row = con.execute(
                "SELECT \"at\", status, run_id, counts FROM read_parquet(?) "
                "WHERE action = 'verify' ORDER BY \"at\" DESC LIMIT 1",
                [duck_path(day / "*.parquet")]).fetchone()
            if row:
                return {"at": row[0].isoformat(), "status": row[1], "run_id": row[2],
                        "counts": json.loads(row[3] or "{}")}
    finally:
        con.close()
    return None


def install_status() -> dict[str, Any]:
    """Everything `talentvault status` shows, with `needs_human`: the reasons to act now."""
    mode, needs = mode_state()
    root = data_root()
    status: dict[str, Any] = {**mode, "data_root": str(root), "sandbox": sandbox_state()}
    try:
        rpo = rpo_hours()
    except ModeError as e:
        needs.append(str(e))
        rpo = 26.0
    now, clock = reference_now(mode["mode"] if mode["mode"] in ("live", "sandbox") else "live")
    status["now"], status["clock"] = now.isoformat(), clock
    sources = [s.to_json() for s in source_states(root, now, rpo)]
    for s in sources:
        if s["day"] is None:
            needs.append(f"{s['source']}: no whole day backed up yet (run backup_job for "
                         "yesterday, or wait for the nightly schedule at 00:30 UTC)")
        elif s["late"]:
            needs.append(f"{s['source']}: late, newest whole day {s['day']} is "
                         f"{s['age_hours']} h old (RPO {s['rpo_hours']:g} h)")
    status["sources"] = sources
    home = project_home()
    status["instance"] = home
    status["checks"], status["push"], status["failed_runs"], status["runs_for"] = {}, None, [], 0
    if home and not Path(home).is_dir():
        needs.append(f"DAGSTER_HOME={home} is not a folder: point it at the Dagster instance the "
                     "schedules run in")
    elif home:
        with dg.DagsterInstance.from_config(home) as instance:
            status["checks"] = check_health(instance)
            status["push"] = last_push(instance, root)
            status["runs_for"], status["failed_runs"] = failed_runs(instance)
    for group in status["checks"].values():
        for f in group["failed"]:
            if f["severity"] == "ERROR" and not f["check"].endswith(VERIFY_CHECK):
                needs.append(f"check failed: {f['check']} ({f['partition'] or '-'})"
                             + (": the Keap push of that day is held" if f["blocking"] else ""))
    push = status["push"]
    if push and push.get("failed_permanent"):
        needs.append(f"the Keap push for {push['day']} dead-lettered {push['failed_permanent']} "
                     "change(s): SELECT * FROM sync.dead_letter")
    for run in status["failed_runs"]:
        needs.append(f"latest run of {run['job']} failed: run {run['run_id']}"
                     + (f" (for {', '.join(run['latest_for'])})"
                        if run["latest_for"] != [run["job"]] else ""))
    status["verify"] = last_verify(root)
    if status["verify"] and status["verify"]["status"] != "succeeded":
        needs.append(f"verify found damage at {status['verify']['at']}: "
                     f"{status['verify']['counts'].get('damaged', '?')} damaged; run "
                     "`talentvault verify` to list them")
    status["protection"] = protection(root)
    status["needs_human"] = needs
    return status


def protection(root: Path) -> dict[str, Any]:
    """How the backups are protected: where the primary is (a folder, or a bucket and this
    machine's cache of it), encryption (the key's id, never the key), the replica (a folder or a
    bucket URL) and the seals (keyed or plain sha256)."""
    from orchestration.storage import parquet, primary, replica, seals

    marker = parquet.marker(root) or {}
    try:
        where = replica.describe()
    except replica.ReplicaError as e:
        where = f"misconfigured: {e}"
    return {"primary": primary.describe() or {"folder": str(root)},
            "encryption_key_id": marker.get("key_id"), "replica": where,
            "seals": seals.sealer().alg}
