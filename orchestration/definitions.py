"""The talentvault code location: every asset, check, job, schedule, sensor and resource."""

import dagster as dg

from assets.backups.assets import catalog
from assets.greenhouse.extract import greenhouse_assets
from assets.highlevel.extract import highlevel_assets
from assets.identity.assets import identity_assets
from assets.keap.extract import keap_assets
from orchestration.jobs import backup_job
from orchestration.resources import build_resources
from orchestration.schedules import daily_backup_schedule, weekly_full_backup_schedule

defs = dg.Definitions(
    assets=[*greenhouse_assets, *keap_assets, *highlevel_assets, catalog, *identity_assets],
    jobs=[backup_job],
    schedules=[daily_backup_schedule, weekly_full_backup_schedule],
    resources=build_resources(),
)
