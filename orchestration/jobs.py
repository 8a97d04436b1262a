"""Jobs: the daily backup of every source, and its weekly full variant."""

import dagster as dg

from orchestration.partitions import daily_snapshots

BACKUP_SELECTION = dg.AssetSelection.groups("greenhouse", "keap", "highlevel", "backups")

backup_job = dg.define_asset_job(
    "backup_job",
    selection=BACKUP_SELECTION,
    partitions_def=daily_snapshots,
    description="Back up Greenhouse, Keap and HighLevel for one day and refresh the catalog.",
)
