"""Partitions: one snapshot per UTC day, from the install's first backup day
(orchestration/first_day.py says which day that is)."""

import warnings

import dagster as dg

from orchestration.first_day import first_day

SNAPSHOT_START = first_day()

# end_offset=1: today is a partition too (an open day, backed up up to now on demand or by the
# webhook sensor; tonight's scheduled run replaces it with the whole day: assets/extract.py).
daily_snapshots = dg.DailyPartitionsDefinition(start_date=SNAPSHOT_START, timezone="UTC",
                                               end_offset=1)

# One run per day in a backfill: an extract reads its own partition's day, and an incremental
# builds on the previous day's manifest (assets/extract.py). Days of a backfill may land out of
# order: a day whose previous day is not there yet is taken full (correct, more API calls), and a
# day landing behind a later one keeps what the later one saw.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# Dagster 1.13 marks `backfill_policy=` on @asset as beta and warns once per asset at import (20
# lines on every `talentvault` command); the policy itself is stable.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
