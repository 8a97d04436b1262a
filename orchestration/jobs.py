"""Jobs: the daily backup of every source, and its weekly full variant."""

import dagster as dg

from assets.backups.verify import backup_files_match_manifests
from orchestration.partitions import daily_snapshots

# the whole-backup verify check runs on its own schedule (verify_job), not with every partition
BACKUP_SELECTION = dg.AssetSelection.groups(
    "greenhouse", "keap", "highlevel", "backups") - dg.AssetSelection.checks(
    backup_files_match_manifests)

backup_job = dg.define_asset_job(
    "backup_job",
    selection=BACKUP_SELECTION,
    partitions_def=daily_snapshots,
    description="Back up Greenhouse, Keap and HighLevel for one day and refresh the catalog.",
)
