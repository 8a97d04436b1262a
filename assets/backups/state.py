"""The one definition of "state as of time T" over snapshot partitions, as DuckDB SQL.

A partition holds versions (`_op = 'upsert'`) and deletions (`_op = 'delete'`) stamped with the
source's update time. The state as of T is, for each id, its latest version at or before T,
unless that version is a delete. The same version may sit in two partitions (overlapping
incremental windows, a full after incrementals): history keeps one per (id, time, op).
"""

from __future__ import annotations

from pathlib import Path


def files_glob(entity_dir: Path) -> str:
    return str(entity_dir / "snapshot_date=*" / "*.parquet")


def history_sql(entity_dir: Path, *, before_day: str | None = None) -> str:
    """Every version once, with its partition date (`snapshot_date`)."""
    where = f"WHERE snapshot_date < DATE '{before_day}'" if before_day else ""
    return f"""
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY id, _source_updated_at, _op ORDER BY snapshot_date) AS rn
            FROM read_parquet('{files_glob(entity_dir)}', hive_partitioning = true,
                              hive_types = {{'snapshot_date': DATE}}, union_by_name = true)
            {where}
        ) WHERE rn = 1
    """


def state_sql(history: str, as_of: str | None = None) -> str:
    """Current state (or as of the SQL timestamp expression `as_of`) from a history query."""
    cond = f"WHERE _source_updated_at <= {as_of}" if as_of else ""
    return f"""
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY id
                ORDER BY _source_updated_at DESC NULLS LAST, (_op = 'delete') DESC) AS rn
            FROM ({history}) {cond}
        ) WHERE rn = 1 AND _op = 'upsert'
    """
