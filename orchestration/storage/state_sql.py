"""The one definition of "state as of time T" over snapshot partitions, as DuckDB SQL.

A partition holds versions (`_op = 'upsert'`) and deletions (`_op = 'delete'`) stamped with the
source's update time. The state as of T is, for each id, its latest version at or before T,
unless that version is a delete. The same version may sit in two partitions (overlapping
incremental windows, a full after incrementals): history keeps one per (id, time, op).

Full snapshots fence the state. A full partition lists every record alive when it was taken (and
writes a delete row for each record that vanished since the backed-up state), so a record that
appears neither in the latest full at or before T nor in any later partition was gone by then.
Without this fence, once retention prunes the incrementals between two fulls, a record deleted in
a pruned incremental would come back from the older full. Versions themselves are still read
from every partition: a full holds each record's version at the moment it was taken, which may be
newer than T for a T earlier the same day, and the older version then comes from before it.
The list of full partition dates comes from the manifests when the SQL is built (the catalog is
rebuilt by every `talentvault sql`, by the catalog asset and after a retention prune).
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.storage.parquet import duck_path


def files_glob(entity_dir: Path) -> str:
    return str(entity_dir / "snapshot_date=*" / "*.parquet")


def _scan(entity_dir: Path) -> str:
    return (f"read_parquet('{duck_path(files_glob(entity_dir))}', hive_partitioning = true, "
            f"hive_types = {{'snapshot_date': DATE}}, union_by_name = true)")


def history_sql(entity_dir: Path, *, before_day: str | None = None) -> str:
    """Every version once, with its partition date (`snapshot_date`)."""
    where = f"WHERE snapshot_date < DATE '{before_day}'" if before_day else ""
    return f"""
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY id, _source_updated_at, _op ORDER BY snapshot_date) AS rn
            FROM {_scan(entity_dir)}
            {where}
        ) WHERE rn = 1
    """


def full_days(entity_dir: Path, *, before_day: str | None = None) -> list[str]:
    """Snapshot dates of the entity's full partitions (manifest `mode` = full), oldest first.
    A manifest that cannot be read is skipped here (`talentvault verify` reports it)."""
    days = []
    for m in sorted(Path(entity_dir).glob("snapshot_date=*/_manifest.json")):
        day = m.parent.name.split("=", 1)[1]
        if before_day is not None and day >= before_day:
            continue
        try:
            mode = json.loads(m.read_text()).get("mode")
        except (OSError, ValueError):
            continue
        if mode == "full":
            days.append(day)
    return days


def full_fence(entity_dir: Path, as_of: str | None = None, *,
               before_day: str | None = None) -> str:
    """SQL condition on `id`: the record appears in the latest full partition at or before the
    day of `as_of` (the newest full when `as_of` is None), or in a partition after it. Empty when
    the entity has no full partition (then every partition counts)."""
    days = full_days(entity_dir, before_day=before_day)
    if not days:
        return ""
    if as_of is None:
        base = f"DATE '{days[-1]}'"
    else:
        values = ", ".join(f"(DATE '{d}', TIMESTAMPTZ '{d} 00:00:00+00')" for d in days)
        base = (f"(SELECT max(_full_day) FROM (VALUES {values}) _fulls(_full_day, _full_start) "
                f"WHERE _full_start <= {as_of})")
    upper = f" AND snapshot_date < DATE '{before_day}'" if before_day else ""
    return (f"id IN (SELECT id FROM {_scan(entity_dir)} "
            f"WHERE snapshot_date >= coalesce({base}, DATE '0001-01-01'){upper})")


def state_sql(history: str, as_of: str | None = None, *, entity_dir: Path | None = None,
              before_day: str | None = None) -> str:
    """Current state (or as of the SQL timestamp expression `as_of`) from a history query.

    Pass the entity's folder as `entity_dir` (and the history's `before_day`, if any) to fence
    the state by full snapshots (see the module docstring); every state read of backups should,
    so that pruned incrementals never bring deleted records back."""
    cond = f"WHERE _source_updated_at <= {as_of}" if as_of else ""
    fence = full_fence(entity_dir, as_of, before_day=before_day) if entity_dir else ""
    return f"""
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY id
                ORDER BY _source_updated_at DESC NULLS LAST, (_op = 'delete') DESC) AS rn
            FROM ({history}) {cond}
        ) WHERE rn = 1 AND _op = 'upsert' {f'AND {fence}' if fence else ''}
    """


def entity_state_sql(entity_dir: Path, as_of: str | None = None, *,
                     before_day: str | None = None) -> str:
    """The fenced state of one backed-up entity (from partitions before `before_day`, if given)."""
    return state_sql(history_sql(entity_dir, before_day=before_day), as_of,
                     entity_dir=entity_dir, before_day=before_day)
