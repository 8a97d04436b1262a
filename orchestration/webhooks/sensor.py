"""`webhook_sensor`: a vendor's change reaches the backup within minutes, not at the next night.

Every 30 s the sensor reads the inbox rows after its cursor (one `seq` position per source) and,
per source with new events, requests one run of that source's backup job (its extract assets,
incremental where they can be) for the partition of the day the changes happened (the latest
of the vendor's timestamps; the vendor's today for an event without one).
The run key is the source and the last `seq` it covers, so a re-evaluation never requests the
same run twice.

A source is skipped (its cursor kept, so nothing is lost) while a run of its job or of the daily
`backup_job` is queued or in progress: events arriving during a run are covered by the next one,
and a burst of webhooks never piles up runs. It runs by default in a deployment (stopped with
`TALENTVAULT_START_PAUSED=1`, orchestration/start_state.py); with no receiver deployed the inbox
is empty and each tick costs one directory listing.

The backup run is only the first step: once it lands, the automation conditions on identity and
the Keap sync (orchestration/automation.py) take the same open day on to the push, so a candidate
who applies at 23:47 is tagged in Keap minutes later, and the catalog is refreshed.

Today is a partition (`daily_snapshots` has `end_offset=1`): a run for today backs the open day
up to the vendor's now, and tonight's `daily_backup_schedule` replaces it with the whole day
(assets/extract.py). A day that is not a partition (a vendor clock ahead of ours, or before the
first snapshot day) cannot be requested; such events are passed (the cursor moves on) with a
note, and the nightly backup takes them.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from orchestration.config import sandbox_url
from orchestration.partitions import daily_snapshots
from orchestration.start_state import sensor_status
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.webhooks.events import SOURCES
from orchestration.webhooks.inbox import connect, events_sql
from sandbox.process import clock_or_none

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING]
DAILY_JOB = "backup_job"

source_backup_jobs: dict[str, dg.UnresolvedAssetJobDefinition] = {
    source: dg.define_asset_job(
        f"{source}_backup_job",
        selection=dg.AssetSelection.groups(source),
        partitions_def=daily_snapshots,
        description=f"Back up {source.capitalize()} alone for one day (incremental where the "
        "previous day is backed up; the automation refreshes the catalog after it): what "
        f"webhook_sensor runs when {source.capitalize()} reports changes.",
    )
    for source in SOURCES
}


def pending_by_source(root, cursor: dict[str, int]) -> dict[str, dict]:
    """Per source: the inbox rows after the cursor, summarised (events, rows, deletes, last
    seq, latest vendor day)."""
    days = [_seq_day(cursor.get(s, 0)) for s in SOURCES]
    # a source never seen reads the whole inbox; otherwise from the day before the oldest cursor
    since = None if None in days else min(days) - timedelta(days=1)
    sql = events_sql(root, since=since)
    if sql is None:
        return {}
    where = " OR ".join(f"(source = '{s}' AND seq > {int(cursor.get(s, 0))})" for s in SOURCES)
    con = connect()
    try:
        rows = con.execute(f"""
            SELECT source, count(DISTINCT event_id), count(*), count(*) FILTER (op = 'delete'),
                   max(seq), max(CAST(vendor_timestamp AS DATE)),
                   count(*) FILTER (vendor_timestamp IS NULL)
            FROM ({sql}) WHERE {where} GROUP BY source
        """).fetchall()
    finally:
        con.close()
    return {r[0]: {"events": r[1], "rows": r[2], "deletes": r[3], "last_seq": int(r[4]),
                   "vendor_day": r[5], "undated": r[6]} for r in rows}


def _seq_day(seq: int) -> date | None:
    return datetime.fromtimestamp(seq / 1e6, UTC).date() if seq else None


def vendor_today(source: str) -> date:
    """The vendor's current day: the sandbox's clock for a sandboxed vendor (its timestamps are
    simulated), the real UTC day otherwise."""
    if not os.environ.get(f"{source.upper()}_BASE_URL"):
        now = clock_or_none(sandbox_url(), timeout=5)
        if now is not None:
            return now.date()
    return datetime.now(UTC).date()


def _busy(instance: dg.DagsterInstance, source: str) -> bool:
    for job in (source_backup_jobs[source].name, DAILY_JOB):
        if instance.get_runs(filters=dg.RunsFilter(job_name=job, statuses=ACTIVE), limit=1):
            return True
    return False


@dg.sensor(
    name="webhook_sensor",
    jobs=list(source_backup_jobs.values()),
    minimum_interval_seconds=30,
    default_status=sensor_status(),
    description="Turns vendor webhooks (the inbox the receiver writes) into a backup run of the "
    "changed source for the day of the change: at most one run per source at a time.",
)
def webhook_sensor(context: dg.SensorEvaluationContext,
                   storage: SnapshotStorage) -> dg.SensorResult:
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    pending = pending_by_source(storage.path(), cursor)
    requests, notes = [], []
    for source in SOURCES:
        new = pending.get(source)
        if not new:
            continue
        if _busy(context.instance, source):
            notes.append(f"{source}: {new['events']} event(s) wait for the run in progress")
            continue
        # an event without a time of its own (a Greenhouse deletion, merge or candidate
        # update) happened by the time it was sent: the vendor's today
        days = [d for d in (new["vendor_day"],
                            vendor_today(source) if new["undated"] else None) if d]
        day = max(days).isoformat()
        cursor[source] = new["last_seq"]
        if not daily_snapshots.has_partition_key(day):
            notes.append(f"{source}: {new['events']} event(s) of {day}, not a partition yet: "
                         "tonight's backup takes them")
            continue
        context.log.info("%s: %d event(s) (%d row(s), %d delete(s)) -> backup of %s", source,
                         new["events"], new["rows"], new["deletes"], day)
        requests.append(dg.RunRequest(
            run_key=f"webhook-{source}-{new['last_seq']}",
            job_name=source_backup_jobs[source].name,
            partition_key=day,
            tags={"talentvault/trigger": "webhook", "talentvault/source": source,
                  "talentvault/webhook_events": str(new["events"]),
                  "talentvault/webhook_deletes": str(new["deletes"]),
                  "talentvault/webhook_last_seq": str(new["last_seq"])},
        ))
    for note in notes:
        context.log.info(note)
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(cursor, sort_keys=True),
        skip_reason=None if requests else ("; ".join(notes) or "no new webhook events"))
