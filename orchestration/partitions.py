"""Partitions: one snapshot per UTC day."""

import dagster as dg

# The first day a backup can be taken for. A first run (or one after a gap) is a full snapshot,
# so history before this date is still captured, in that first partition.
SNAPSHOT_START = "2025-10-01"

# end_offset=1: today is a partition too (an open day, backed up up to now on demand or by the
# webhook sensor; tonight's scheduled run replaces it with the whole day: assets/extract.py).
daily_snapshots = dg.DailyPartitionsDefinition(start_date=SNAPSHOT_START, timezone="UTC",
                                               end_offset=1)
