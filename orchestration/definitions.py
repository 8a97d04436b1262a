"""The talentvault code location: every asset, check, job, schedule, sensor and resource."""

import warnings

import dagster as dg

from assets.catalog.asset import catalog
from assets.greenhouse.extract import greenhouse_assets
from assets.highlevel.extract import highlevel_assets
from assets.identity.assets import identity_assets
from assets.keap.extract import keap_assets
from assets.recovery.retention import retention
from assets.recovery.verify.check import backup_files_match_manifests
from assets.sync.changeset import keap_changeset
from assets.sync.desired import keap_desired
from assets.sync.push import keap_push
from assets.sync.reverse import reverse
from orchestration import pools
from orchestration.automation import automation_sensor
from orchestration.jobs import (
    backup_job,
    restore_apply_job,
    restore_preview_job,
    retention_job,
    verify_job,
)
from orchestration.owners import with_owners
from orchestration.resources import build_resources
from orchestration.schedules import (
    daily_backup_schedule,
    retention_schedule,
    verify_schedule,
    weekly_full_backup_schedule,
)
from orchestration.sensors import alert_sensors
from orchestration.webhooks.sensor import source_backup_jobs, webhook_sensor

# One process per step (isolation, parallel extraction), forked from a server that imported the
# code location and GX once per run (orchestration/preload.py): a step starts in ~0.1 s instead of
# re-importing 7-16 s of modules. Measured in docs/bench_checks.md.
STEP_EXECUTOR = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["orchestration.preload"]}}},
    name="forkserver_multiprocess")

# a step waiting for a pool slot frees the slots of runs whose process is gone, gives up after a
# bounded time naming the run that holds it, and hears SIGTERM (orchestration/pools.py)
pools.install()

ASSETS = [*greenhouse_assets, *keap_assets, *highlevel_assets, catalog, *identity_assets,
          retention, keap_desired, keap_changeset, keap_push, reverse]

# the UI shows each asset's owner (orchestration/owners.py) and the file and line defining it
# (local paths, opened from a checkout: there is no hosted repository to link to). The code
# references are beta in Dagster 1.13 and say so once per asset at every load: not shown.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    UI_ASSETS = dg.with_source_code_references(with_owners(ASSETS))

defs = dg.Definitions(
    assets=UI_ASSETS,
    asset_checks=[backup_files_match_manifests],
    jobs=[backup_job, verify_job, retention_job, restore_preview_job, restore_apply_job,
          *source_backup_jobs.values()],
    schedules=[daily_backup_schedule, weekly_full_backup_schedule, verify_schedule,
               retention_schedule],
    sensors=[webhook_sensor, automation_sensor(), *alert_sensors],
    resources=build_resources(),
    executor=STEP_EXECUTOR,
)
