"""How a day moves on by itself: the automation conditions after the backups, and the sensor
that evaluates them.

The nightly `daily_backup_schedule` backs up day D (`backup_job`); a webhook backs up one source
for the open day (`webhook_sensor`). Everything after the backups is declared on the assets and
moved by `default_automation_condition_sensor` (RUNNING by default, orchestration/start_state.py):

- `SYNC_CHAIN` (identity profiles, `sync/keap_desired`, `sync/keap_changeset`, `sync/keap_push`):
  runs for D once something it reads for D has landed, nothing it reads is in progress, and every
  blocking check on what it reads passed. Only yesterday and today are considered
  (`in_latest_time_window` with a two-day lookback: the partitions have `end_offset=1`, so the
  latest window alone would be today and the nightly partition of yesterday would never move);
  a backfill of older days never pushes old states into Keap.
- `CLOSED_DAY` (the duplicates review list and the field audit): the same gate, for the day that
  has ended only, once all its backups exist, so a webhook does not redo a whole-world audit.
- `CATALOG_REFRESH` (`backups/catalog`, one unpartitioned asset over every day): refreshed once
  any partition of a backup it reads has landed since its last refresh (the nightly backup, a
  webhook's open-day backup, a re-run), when no backup is in progress. It is not gated by the
  blocking checks: the catalog holds view definitions over the files on disk, which
  `talentvault sql` reads the same way with or without a refresh.
- `ON_ITS_SCHEDULE_ONLY` (the verify check on the catalog): never requested here. A check without
  a condition of its own rides along with every automated run of its asset; verify re-hashes
  every file, so it runs on `verify_schedule` only, as before.

The gate holds across runs: a day whose blocking check failed stays held (the condition's
evaluation in the UI says which check) until the data is fixed and the backup re-run, and a
backup whose run failed holds it too. An open day backs up only the source that changed, so a
backup partition that does not exist for the day does not hold the chain: identity, the
changeset and the push read the backed-up state *as of* the day, which the earlier partitions
hold.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

BACKUP_GROUPS = ("greenhouse", "keap", "highlevel")
BACKUPS = dg.AssetSelection.groups(*BACKUP_GROUPS)
# yesterday (the nightly partition) and today (the open day): see the module docstring
RECENT = timedelta(days=2)
AUTOMATION_SENSOR = "default_automation_condition_sensor"
TRIGGER_TAG = "talentvault/trigger"

AC = dg.AutomationCondition

# every dependency: its latest run did not fail, and its blocking checks passed on what it holds
# for the day (or will run in this tick's run, which stops the chain itself if they fail); a
# backup with no partition for the day has nothing to judge
UPSTREAM_GATE = AC.all_deps_match(
    (AC.all_checks_match(AC.check_passed() | AC.will_be_requested(), blocking_only=True)
     | AC.missing())
    & ~AC.execution_failed()
).with_label("upstream blocking checks passed, no upstream failure")

_MOVES = (AC.any_deps_updated().since_last_handled()
          & ~AC.any_deps_in_progress() & ~AC.in_progress())

SYNC_CHAIN = (
    AC.in_latest_time_window(lookback_delta=RECENT)
    & _MOVES
    & ~AC.any_deps_missing().ignore(BACKUPS)
    & UPSTREAM_GATE
).with_label("after the day's backups (yesterday or today), blocking checks passed")

CLOSED_DAY = (
    AC.in_latest_time_window(lookback_delta=RECENT) & ~AC.in_latest_time_window()
    & _MOVES
    & ~AC.any_deps_missing()
    & UPSTREAM_GATE
).with_label("after the nightly backups of the day that ended, blocking checks passed")

CATALOG_REFRESH = (
    AC.any_deps_updated().since_last_handled()
    & ~AC.any_deps_in_progress() & ~AC.in_progress()
).with_label("after any backup partition lands, no backup in progress")

ON_ITS_SCHEDULE_ONLY = (AC.missing() & ~AC.missing()).with_label(
    "never by the automation: on its own schedule only")


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """The sensor that evaluates every asset's automation condition (every 30 s in the daemon).
    Declared rather than left implicit so it starts RUNNING in a deployment."""
    from orchestration.start_state import sensor_status

    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=sensor_status(),
        minimum_interval_seconds=30,
        run_tags={TRIGGER_TAG: "automation"},
        description="Moves each day on after its backups: identity, the Keap desired state, "
        "changeset and push (held while a blocking check fails), the duplicates review and the "
        "field audit; and refreshes the SQL catalog after any backup. Started by default; "
        "TALENTVAULT_START_PAUSED=1 starts it stopped.",
    )


PUSH_KEY = dg.AssetKey(["sync", "keap_push"])


def held_by(defs: dg.Definitions, instance: dg.DagsterInstance, day: str) -> list[str]:
    """The blocking checks upstream of the Keap push whose latest result is a failure for `day`,
    as `asset:check`: why that day's push is held (empty when nothing holds it). Like the gate,
    it judges each check by its latest execution. For alerts and status; the automation's own
    evaluation in the UI says the same."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus,
    )

    graph = defs.resolve_asset_graph()
    checks = [c for key in graph.get_ancestor_asset_keys(PUSH_KEY)
              for c in graph.get(key).check_keys if graph.get(c).blocking]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    held = []
    for key, record in latest.items():
        if record.status != AssetCheckExecutionRecordStatus.FAILED:
            continue
        # in-asset checks are recorded without a partition: the run's partition says the day
        run = instance.get_run_by_id(record.run_id) if record.run_id else None
        partition = record.partition or (run.tags.get("dagster/partition") if run else None)
        if partition == day:
            held.append(f"{key.asset_key.to_user_string()}:{key.name}")
    return sorted(held)
