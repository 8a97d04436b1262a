"""Freshness = the recovery point objective, declared on every backup asset.

`dg.FreshnessPolicy.time_window(fail_window=RPO)`: a backup at least every 26 hours by default
(the nightly run every 24, plus two hours of slack), `TALENTVAULT_RPO_HOURS` to change it (the
same setting `talentvault status` and the freshness alert judge by:
orchestration/storage/backup_state.py).
Dagster's daemon (`dagster dev` or `dagster-daemon`; its freshness daemon is on by default)
evaluates the policy, and the UI shows each backup asset fresh or stale.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from orchestration.storage.backup_state import rpo_hours


def backup_freshness_policy() -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=rpo_hours()))
