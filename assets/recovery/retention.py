"""Retention: which snapshot partitions to keep, and pruning the rest safely.

Policy (defaults):
- backups (`<source>/<entity>`): every daily partition of the last `days` (35) days, and the
  first full partition of each of the last `months` (13) calendar months (the current one
  included);
- derived partitions (`identity/*`, `sync/*`): the last `derived_days` (35) days, and always the
  newest partition of each output;
- never pruned: the sync ledger (`sync/ledger`), the audit trail (`audit/`), the suppression list
  (`state/`), the seal ledger (`seals/`), anything that is not a `snapshot_date=` partition with
  a readable manifest.

Safety:
- An incremental partition is never left without its base. The kept window of daily partitions
  is extended back to the latest full partition taken before the window's first day (a full of
  day D holds the state at the end of D, which is the start of the window when D is the day
  before it): every instant in the window stays restorable exactly. Hence the newest full and
  everything after it are always kept.
- A partition is removed atomically: renamed into the entity's `.trash` folder (readers glob
  `snapshot_date=*` and never see it again), then deleted. A `.trash` left by an interrupted
  prune is emptied by the next one.
- The catalog file is rewritten after a prune (the state views list the full partitions).
- A dry run (the default everywhere but the daily schedule) changes nothing and reports the same
  plan: per entity, the partitions and bytes that would go.

Pruning a partition does not change the state of any kept instant: the state is fenced by full
partitions (`orchestration/storage/state_sql.py`), so records deleted in a pruned incremental
stay deleted.
"""

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from assets.catalog.views import write_catalog_file
from orchestration.storage import audit
from orchestration.storage.fsync import fsync
from orchestration.storage.landing import record_removed
from orchestration.storage.snapshots import SnapshotStorage

BACKUP_SOURCES = ("greenhouse", "keap", "highlevel")
DERIVED_SOURCES = ("identity", "sync")
NEVER_PRUNED = {("sync", "ledger")}
TRASH = ".trash"


@dataclass(frozen=True)
class Policy:
    days: int = 35          # every daily backup partition of the last `days` days
    months: int = 13        # the first full backup partition of each of the last `months` months
    derived_days: int = 35  # identity/* and sync/* partitions

    def __post_init__(self) -> None:
        if self.days < 1 or self.derived_days < 1 or self.months < 0:
            raise ValueError("retention policy: days and derived_days must be at least 1, "
                             f"months at least 0 (got {self})")


@dataclass
class EntityPlan:
    """What the policy keeps and removes of one backed-up entity or derived output."""

    source: str
    entity: str
    kind: str                                   # backup | derived
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    monthly: list[str] = field(default_factory=list)   # kept as a month's first full
    anchor: str | None = None                   # first kept day of the daily window
    extended_days: int = 0                      # window extended back to reach a full
    bytes_removed: int = 0
    unreadable: list[str] = field(default_factory=list)  # kept: manifest unreadable

    @property
    def name(self) -> str:
        return f"{self.source}/{self.entity}"


@dataclass
class PruneReport:
    today: str
    policy: Policy
    applied: bool
    entities: list[EntityPlan] = field(default_factory=list)

    @property
    def partitions_removed(self) -> int:
        return sum(len(e.removed) for e in self.entities)

    @property
    def bytes_removed(self) -> int:
        return sum(e.bytes_removed for e in self.entities)

    def counts(self) -> dict[str, int]:
        return {"entities": len(self.entities),
                "entities_pruned": sum(1 for e in self.entities if e.removed),
                "partitions_removed": self.partitions_removed,
                "bytes_removed": self.bytes_removed,
                "partitions_kept": sum(len(e.kept) for e in self.entities)}

    def to_dict(self) -> dict[str, Any]:
        return {"today": self.today, "policy": asdict(self.policy), "applied": self.applied,
                **self.counts(),
                "entities": [{**asdict(e), "name": e.name} for e in self.entities]}

    def markdown(self) -> str:
        verb = "Removed" if self.applied else "Would remove (dry run)"
        p = self.policy
        lines = [f"{verb}: {self.partitions_removed} partitions, {_size(self.bytes_removed)} "
                 f"(today {self.today}; daily {p.days} days, monthly fulls {p.months} months, "
                 f"derived {p.derived_days} days)", "",
                 "| entity | kept | removed | bytes | removed days | note |",
                 "|---|---:|---:|---:|---|---|"]
        for e in self.entities:
            note = []
            if e.extended_days:
                note.append(f"window extended {e.extended_days} days back to the full of "
                            f"{e.anchor}")
            if e.monthly:
                note.append(f"monthly fulls {', '.join(e.monthly)}")
            if e.unreadable:
                note.append(f"{len(e.unreadable)} unreadable manifests kept")
            lines.append(f"| {e.name} | {len(e.kept)} | {len(e.removed)} | "
                         f"{_size(e.bytes_removed)} | {_ranges(e.removed) or '-'} | "
                         f"{'; '.join(note) or '-'} |")
        return "\n".join(lines)


# -- the policy, on lists of days -----------------------------------------------------------------
def months_back(today: date, months: int) -> date:
    """The first day of the calendar month `months - 1` months before today's."""
    index = today.year * 12 + today.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def plan_backup(modes: dict[str, str], policy: Policy, today: date) -> tuple[set[str], str | None,
                                                                          list[str]]:
    """(days kept, anchor, monthly days) for one backed-up entity, given each partition's mode.
    Days whose mode is unknown (manifest unreadable) are kept by the caller."""
    days = sorted(modes)
    if not days:
        return set(), None, []
    cutoff = (today - timedelta(days=policy.days)).isoformat()
    fulls = [d for d in days if modes[d] == "full"]
    before = [d for d in fulls if d < cutoff]
    # the chain that covers the window's first instant starts at the last full before it
    anchor = before[-1] if before else days[0]
    keep = {d for d in days if d >= anchor}
    monthly: list[str] = []
    if policy.months:
        horizon = months_back(today, policy.months).isoformat()
        first_of_month: dict[str, str] = {}
        for d in fulls:
            if d >= horizon:
                first_of_month.setdefault(d[:7], d)
        monthly = sorted(d for d in first_of_month.values() if d not in keep)
        keep |= set(monthly)
    _assert_chains_kept(modes, keep)
    return keep, anchor, monthly


def _assert_chains_kept(modes: dict[str, str], keep: set[str]) -> None:
    """Guard: every kept incremental whose base existed still has it."""
    for d in keep:
        if modes.get(d) == "incremental":
            previous = (date.fromisoformat(d) - timedelta(days=1)).isoformat()
            if previous in modes and previous not in keep:
                raise AssertionError(f"retention would leave the incremental partition {d} "
                                     f"without its base {previous}; nothing was removed")


def plan_derived(days: list[str], policy: Policy, today: date) -> set[str]:
    """Days kept of a derived output: the last `derived_days` days and always the newest."""
    if not days:
        return set()
    cutoff = (today - timedelta(days=policy.derived_days)).isoformat()
    return {d for d in days if d >= cutoff} | {max(days)}


# -- the data root --------------------------------------------------------------------------------
def _entity_dirs(root: Path) -> list[tuple[str, str, str, Path]]:
    out = []
    for kind, sources in (("backup", BACKUP_SOURCES), ("derived", DERIVED_SOURCES)):
        for source in sources:
            base = root / source
            if not base.is_dir():
                continue
            for d in sorted(p for p in base.iterdir() if p.is_dir()):
                if d.name.startswith((".", "_")) or (source, d.name) in NEVER_PRUNED:
                    continue
                if any(d.glob("snapshot_date=*/_manifest.json")):
                    out.append((kind, source, d.name, d))
    return out


def _partitions(entity_dir: Path) -> tuple[dict[str, str], list[str]]:
    """({day: mode} of landed partitions with a readable manifest, [days unreadable])."""
    modes, unreadable = {}, []
    for m in sorted(entity_dir.glob("snapshot_date=*/_manifest.json")):
        day = m.parent.name.split("=", 1)[1]
        try:
            modes[day] = str(json.loads(m.read_text()).get("mode") or "derived")
        except (OSError, ValueError):
            unreadable.append(day)
    return modes, unreadable


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def plan(root: Path, policy: Policy, today: date) -> PruneReport:
    """The prune plan for the whole data root (nothing is changed)."""
    report = PruneReport(today.isoformat(), policy, applied=False)
    for kind, source, entity, entity_dir in _entity_dirs(Path(root)):
        modes, unreadable = _partitions(entity_dir)
        e = EntityPlan(source, entity, kind, unreadable=unreadable)
        if kind == "backup":
            keep, e.anchor, e.monthly = plan_backup(modes, policy, today)
            cutoff = today - timedelta(days=policy.days)
            if e.anchor and date.fromisoformat(e.anchor) < cutoff - timedelta(days=1):
                e.extended_days = (cutoff - date.fromisoformat(e.anchor)).days - 1
        else:
            keep = plan_derived(sorted(modes), policy, today)
        e.kept = sorted(keep | set(unreadable))
        e.removed = sorted(set(modes) - keep)
        e.bytes_removed = sum(_folder_bytes(entity_dir / f"snapshot_date={d}")
                              for d in e.removed)
        report.entities.append(e)
    return report


def prune(root: Path, policy: Policy | None = None, today: date | None = None,
          apply: bool = False, *, run_id: str | None = None) -> PruneReport:
    """Plan, and with `apply` remove, the partitions the policy does not keep. Records an audit
    event `retention_prune` (status `dry_run` when nothing was removed on purpose)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist: set TALENTVAULT_DATA_DIR "
                                "or pass --data-dir")
    policy = policy or Policy()
    today = today or datetime.now(UTC).date()
    report = plan(root, policy, today)
    if apply:
        for e in report.entities:
            entity_dir = root / e.source / e.entity
            _empty_trash(entity_dir)
            for day in e.removed:
                _remove(entity_dir, entity_dir / f"snapshot_date={day}")
            _empty_trash(entity_dir)
        report.applied = True
        if report.partitions_removed and (root / "catalog.duckdb").exists():
            write_catalog_file(root)
    audit.record(
        root, "retention_prune", target="data root", run_id=run_id,
        status="succeeded" if apply else "dry_run", counts=report.counts(),
        details={"policy": asdict(policy), "today": report.today,
                 "entities": {e.name: {"partitions": len(e.removed), "bytes": e.bytes_removed,
                                       "days": e.removed}
                              for e in report.entities if e.removed}})
    return report


def _remove(entity_dir: Path, folder: Path) -> None:
    """Rename into `.trash` (atomic: readers stop seeing it at once), record the prune in the
    seal ledger (so verify knows the partition went on purpose), then delete."""
    trash = entity_dir / TRASH
    trash.mkdir(exist_ok=True)
    target = trash / f"{folder.name}-{uuid.uuid4().hex[:8]}"
    os.rename(folder, target)
    fsync(entity_dir)
    record_removed(folder, "pruned", "retention")
    shutil.rmtree(target)


def _empty_trash(entity_dir: Path) -> None:
    """Finish an interrupted prune: what sits in `.trash` was removed by it (recorded again in
    the seal ledger in case the crash fell before the record)."""
    trash = entity_dir / TRASH
    if trash.is_dir():
        for d in sorted(trash.glob("snapshot_date=*")):
            record_removed(entity_dir / d.name.rsplit("-", 1)[0], "pruned",
                           "retention (an interrupted prune, finished)")
        shutil.rmtree(trash)


def _ranges(days: list[str]) -> str:
    """'2026-01-02..2026-01-04, 2026-01-09' for a sorted list of days."""
    out: list[list[str]] = []
    for d in days:
        if out and date.fromisoformat(d) - date.fromisoformat(out[-1][1]) == timedelta(days=1):
            out[-1][1] = d
        else:
            out.append([d, d])
    return ", ".join(a if a == b else f"{a}..{b}" for a, b in out)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# -- Dagster --------------------------------------------------------------------------------------
class RetentionConfig(dg.Config):
    apply: bool = False
    """False (default): report what would be removed and change nothing."""
    days: int = 35
    """Keep every daily backup partition of this many days."""
    months: int = 13
    """Keep the first full backup partition of each of this many calendar months."""
    derived_days: int = 35
    """Keep identity/* and sync/* partitions of this many days."""
    today: str = ""
    """The day the policy counts back from (YYYY-MM-DD); empty: today's UTC date."""


@dg.asset(
    key=["backups", "retention"],
    group_name="maintenance",
    kinds={"parquet"},
    description="Applies the retention policy: keeps every daily snapshot of the last 35 days "
    "and the first full snapshot of each of the last 13 months, removes older snapshots without "
    "ever breaking a chain of daily changes, and reports per entity what was (or, in a dry "
    "run, would be) removed. The sync ledger and the audit trail are never pruned.",
)
def retention(context: dg.AssetExecutionContext, config: RetentionConfig,
              storage: SnapshotStorage) -> dg.MaterializeResult:
    policy = Policy(config.days, config.months, config.derived_days)
    today = date.fromisoformat(config.today) if config.today else None
    report = prune(storage.path(), policy, today, apply=config.apply, run_id=context.run_id)
    context.log.info("retention %s: %d partitions, %d bytes over %d entities",
                     "applied" if report.applied else "dry run", report.partitions_removed,
                     report.bytes_removed, report.counts()["entities_pruned"])
    return dg.MaterializeResult(metadata={
        "applied": report.applied,
        "partitions_removed": report.partitions_removed,
        "bytes_removed": report.bytes_removed,
        "entities_pruned": report.counts()["entities_pruned"],
        "today": report.today,
        "plan": dg.MetadataValue.md(report.markdown()),
    })
