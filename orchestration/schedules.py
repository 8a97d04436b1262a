"""Schedules: yesterday's backup every night, a full snapshot every week, and after the night's
backups the retention policy (04:00 UTC) and verify (05:00 UTC).

The weekly full restarts every incremental chain, so a restore or an audit never depends on a
long chain of increments, and catches deletions an id listing could not see.
"""

from datetime import timedelta

import dagster as dg

from assets.greenhouse.extract import SPECS as GREENHOUSE
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from orchestration.jobs import backup_job, retention_job, verify_job
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


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=schedule_status(),
    run_config={"ops": {"backups__retention": {"config": {"apply": True}}}},
    description="Every day at 04:00 UTC (after the night's backups): apply the retention "
    "policy with its defaults.",
)

verify_schedule = dg.ScheduleDefinition(
    name="verify_schedule",
    job=verify_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=schedule_status(),
    description="Every day at 05:00 UTC (after the night's backups): verify every backup file.",
)
