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
from orchestration.start_state import schedule_status

EXTRACT_OPS = ["__".join(spec.key.path) for spec in (*GREENHOUSE, *KEAP, *HIGHLEVEL)]

@dg.schedule(job=backup_job, cron_schedule="30 0 * * *", execution_timezone="UTC",
             name="daily_backup_schedule", default_status=schedule_status(),
             description="Every night at 00:30 UTC: back up the day that just ended "
                         "(incremental), replacing any open-day backup of it.")
def daily_backup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    # named explicitly: today is a partition too (end_offset=1), so "the last partition" would be
    # the day that has just begun. What follows the backup (identity, the Keap sync) is moved by
    # the automation conditions on those assets (orchestration/automation.py).
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day,
                         tags={"talentvault/trigger": "nightly"})


@dg.schedule(job=backup_job, cron_schedule="0 2 * * 0", execution_timezone="UTC",
             default_status=schedule_status(),
             description="Sundays 02:00 UTC: a full snapshot of every entity for Saturday.")
def weekly_full_backup_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(
        run_key=f"weekly-full-{day}",
        partition_key=day,
        run_config={"ops": {op: {"config": {"mode": "full"}} for op in EXTRACT_OPS}},
        tags={"talentvault/mode": "full"},
    )
