"""How far each source's backup reaches: the newest whole day that every one of its entities
holds, and that day's age against the RPO.

Read from the manifests alone (no vendor, no sandbox start, no Dagster), so `talentvault status`
and the freshness alert give the same answer and stay fast. A day counts once its partition's
window reaches the next midnight: an open-day backup (a webhook, someone asking now) does not,
the nightly run that replaces it does. Age = now - the end of that day, so the nightly schedule
(00:30 UTC, yesterday) keeps it near 24 h and the default RPO of 26 h leaves it time to finish.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestration.config import VENDORS, ModeError, sandbox_dir, sandbox_url
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import parse_ts

RPO_VAR = "TALENTVAULT_RPO_HOURS"
DEFAULT_RPO_HOURS = 26.0
SOURCES = tuple(VENDORS)


def rpo_hours() -> float:
    """The recovery point objective: how old the newest whole backed-up day may get."""
    text = os.environ.get(RPO_VAR, "").strip()
    if not text:
        return DEFAULT_RPO_HOURS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ModeError(f"{RPO_VAR}={text!r} is not a number of hours: set it to e.g. 26")
    return value


@dataclass
class EntityState:
    entity: str
    day: str | None              # newest whole day backed up
    mode: str | None             # full / incremental
    rows: int | None             # rows in that day's partition
    open_day: str | None = None  # a newer partition still open (backed up to the vendor's now)


@dataclass
class SourceState:
    source: str
    day: str | None              # the newest whole day every entity holds
    age_hours: float | None
    rpo_hours: float
    entities: list[EntityState] = field(default_factory=list)

    @property
    def late(self) -> bool:
        return self.age_hours is None or self.age_hours > self.rpo_hours

    @property
    def rows(self) -> int:
        return sum(e.rows or 0 for e in self.entities)

    @property
    def modes(self) -> str:
        return "/".join(sorted({e.mode for e in self.entities if e.mode})) or "-"

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "day": self.day, "age_hours": self.age_hours,
                "rpo_hours": self.rpo_hours, "late": self.late, "rows": self.rows,
                "modes": self.modes, "entities": [asdict(e) for e in self.entities]}


def whole_day(manifest: dict[str, Any]) -> bool:
    """The partition's window reaches the end of its day (not an open-day backup)."""
    end = (manifest.get("window") or {}).get("updated_to")
    day = date.fromisoformat(manifest["snapshot_date"])
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return bool(end) and parse_ts(end) >= midnight


def entity_state(storage: SnapshotStorage, source: str, entity: str) -> EntityState:
    state = EntityState(entity, None, None, None)
    for day in reversed(storage.later_partitions(source, entity, "0000-00-00")):
        manifest = storage.manifest(source, entity, day)
        if manifest is None:
            continue
        if whole_day(manifest):
            state.day, state.mode, state.rows = day, manifest.get("mode"), manifest.get("rows")
            return state
        state.open_day = state.open_day or day
    return state


def entities(storage: SnapshotStorage, source: str) -> list[str]:
    base = storage.path() / source
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def source_states(root: Path, now: datetime, rpo: float | None = None) -> list[SourceState]:
    """Every source's backup reach at `now` (a source never backed up has no day: late)."""
    storage = SnapshotStorage(root=str(root))
    rpo = rpo_hours() if rpo is None else rpo
    out = []
    for source in SOURCES:
        states = [entity_state(storage, source, e) for e in entities(storage, source)]
        days = [s.day for s in states]
        day = min(days) if states and all(days) else None   # type: ignore[type-var]
        age = None
        if day is not None:
            end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
            age = round((now - end).total_seconds() / 3600, 1)
        out.append(SourceState(source, day, age, rpo, states))
    return out


def reference_now(current_mode: str) -> tuple[datetime, str]:
    """(now, which clock). Live: the real clock. Sandbox: the world's simulated clock (its data
    is stamped with it), asked over HTTP when the sandbox runs, else read from its world file,
    never by starting it; the real clock when there is no world."""
    if current_mode == "sandbox":
        from sandbox.process import clock_or_none, world_now

        now = clock_or_none(sandbox_url(), timeout=0.5)
        if now is not None:
            return now, "sandbox"
        now = world_now(sandbox_dir())
        if now is not None:
            return now, "sandbox world file"
    return datetime.now(UTC), "real"
