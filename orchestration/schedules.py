"""Schedules: yesterday's backup every night, and a full snapshot every week.

The weekly full restarts every incremental chain, so a restore or an audit never depends on a
long chain of increments, and catches deletions an id listing could not see.
"""

from datetime import timedelta

import dagster as dg

from assets.greenhouse.extract import SPECS as GREENHOUSE
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from orchestration.jobs import backup_job

EXTRACT_OPS = ["__".join(spec.key.path) for spec in (*GREENHOUSE, *KEAP, *HIGHLEVEL)]

daily_backup_schedule = dg.build_schedule_from_partitioned_job(
    backup_job, hour_of_day=0, minute_of_hour=30, name="daily_backup_schedule",
    description="Every night at 00:30 UTC: back up the day that just ended (incremental).",
)


@dg.schedule(job=backup_job, cron_schedule="0 2 * * 0", execution_timezone="UTC",
             description="Sundays 02:00 UTC: a full snapshot of every entity for Saturday.")
def weekly_full_backup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(
        run_key=f"weekly-full-{day}",
        partition_key=day,
        run_config={"ops": {op: {"config": {"mode": "full"}} for op in EXTRACT_OPS}},
        tags={"talentvault/mode": "full"},
    )
