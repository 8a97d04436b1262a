"""Freshness = the recovery point objective: how old may the newest backup of a source be.

Every backup asset declares `dg.FreshnessPolicy.time_window(fail_window=RPO)`: by default a
backup at least every 26 hours (the nightly run every 24, plus two hours of slack), configurable
with `TALENTVAULT_RPO_HOURS`. Dagster's daemon (`dagster dev` or `dagster-daemon`; the freshness
daemon is on by default) evaluates it and the UI shows each asset as fresh or stale.

`backup_freshness(instance)` computes the same state per source from the run history, without a
daemon, for `talentvault status` and alerts: a source is as fresh as its stalest entity.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

RPO_ENV = "TALENTVAULT_RPO_HOURS"
DEFAULT_RPO_HOURS = 26.0
SOURCES = ("greenhouse", "keap", "highlevel")


def rpo() -> timedelta:
    """The recovery point objective: `TALENTVAULT_RPO_HOURS` (default 26)."""
    text = os.environ.get(RPO_ENV, "").strip()
    if not text:
        return timedelta(hours=DEFAULT_RPO_HOURS)
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if hours * 60 < 1:  # Dagster's smallest freshness window is a minute
        raise ValueError(f"{RPO_ENV}={text!r} is not a number of hours of at least 1/60: set it "
                         "to the age a backup may reach (e.g. 26), or unset it")
    return timedelta(hours=hours)


def backup_freshness_policy() -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=rpo())


@dataclass(frozen=True)
class SourceFreshness:
    """One source's backup against the RPO. `state`: PASS (within the RPO), FAIL (older), or
    UNKNOWN (some entity never backed up)."""

    source: str
    state: str
    rpo_hours: float
    last_backup_at: str | None     # the stalest entity's latest backup (UTC, ISO-8601)
    age_hours: float | None
    stalest_entity: str | None
    last_whole_day: str | None     # the latest day every entity holds whole (a closed window)
    entities: int
    never_backed_up: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backup_freshness(instance: dg.DagsterInstance, now: datetime | None = None,
                     ) -> list[SourceFreshness]:
    """Per source, how old its backup is against the RPO (see `SourceFreshness`)."""
    from assets.greenhouse.extract import SPECS as GREENHOUSE
    from assets.highlevel.extract import SPECS as HIGHLEVEL
    from assets.keap.extract import SPECS as KEAP

    now = now or datetime.now(UTC)
    limit = rpo()
    out = []
    for source, specs in zip(SOURCES, (GREENHOUSE, KEAP, HIGHLEVEL), strict=True):
        latest: dict[str, float] = {}
        whole: dict[str, str | None] = {}
        for spec in specs:
            name = spec.key.to_user_string()
            event = instance.get_latest_materialization_event(spec.key)
            if event is None:
                continue
            latest[name] = event.timestamp
            whole[name] = _last_whole_day(instance, spec.key)
        never = sorted(s.key.to_user_string() for s in specs
                       if s.key.to_user_string() not in latest)
        stalest = min(latest, key=latest.get) if latest else None
        at = datetime.fromtimestamp(latest[stalest], UTC) if stalest else None
        age = (now - at) if at else None
        days = [d for d in whole.values() if d]
        state = ("UNKNOWN" if never or age is None
                 else "FAIL" if age >= limit else "PASS")
        out.append(SourceFreshness(
            source, state, round(limit.total_seconds() / 3600, 2),
            at.isoformat().replace("+00:00", "Z") if at else None,
            round(age.total_seconds() / 3600, 2) if age is not None else None, stalest,
            min(days) if days and len(days) == len(whole) and not never else None,
            len(specs), never))
    return out


def _last_whole_day(instance: dg.DagsterInstance, key: dg.AssetKey,
                    scan: int = 50) -> str | None:
    """The latest partition of `key` backed up whole: its window ended at the next midnight
    (an open-day backup ends at the vendor's now)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=scan,
                                              ascending=False).records
    days = []
    for record in records:
        mat = record.asset_materialization
        if mat is None or not mat.partition:
            continue
        end = mat.metadata.get("window_to")
        next_midnight = (datetime.fromisoformat(mat.partition) + timedelta(days=1)).date()
        if end is not None and str(end.value).startswith(f"{next_midnight.isoformat()}T00:00:00"):
            days.append(mat.partition)
    return max(days, default=None)
