"""What the identity assets read: each entity's state as of the end of the partition day, from
the snapshots, through the one state definition (`orchestration/storage/state_sql.py`).

"As of the end of day D" means the versions in partitions up to and including D whose update
time is before D+1 00:00 UTC: re-running day D later gives the same answer even after later
partitions have landed.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from orchestration.storage.parquet import duck_path
from orchestration.storage.state_sql import files_glob, history_sql, state_sql

KEY = ["id", "_source_updated_at", "_op", "snapshot_date"]


def end_of_day(day: str) -> str:
    """SQL for the last instant of `day` (timestamps are stored in milliseconds)."""
    nxt = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return f"(TIMESTAMPTZ '{nxt} 00:00:00+00' - INTERVAL 1 MILLISECOND)"


def has_partition(root: Path, source: str, entity: str, day: str) -> bool:
    return (root / source / entity / f"snapshot_date={day}" / "_manifest.json").exists()


def require_partition(root: Path, source: str, entity: str, day: str) -> None:
    if not has_partition(root, source, entity, day):
        raise dg.Failure(
            f"{source}/{entity} has no snapshot for {day}: back it up for that day first "
            f"(materialize {source}/{entity} for partition {day}).")


def entity_history(root: Path, source: str, entity: str, day: str, columns: list[str]) -> str:
    """Every version of `columns` (plus id and the state metadata) known at the end of `day`."""
    folder = root / source / entity
    nxt = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    cols = ", ".join(dict.fromkeys([*KEY, *columns]))
    return (f"SELECT {cols} FROM ({history_sql(folder, before_day=nxt)}) "
            f"WHERE _source_updated_at <= {end_of_day(day)}")


def load_state(con: duckdb.DuckDBPyConnection, root: Path, source: str, entity: str,
               day: str, columns: list[str], target: str, *, required: bool = True,
               ids: str | None = None) -> int:
    """Create table `target` with the state of `source/entity` as of the end of `day`: the
    listed columns (names or SQL expressions over a snapshot row), `_source_updated_at` and
    `snapshot_date` (the partition holding the version). `ids` (a SELECT of one column) keeps
    only those records: their rows alone are read and decoded.

    Which version is current comes from `state_sql` over the versions' keys only (id, update
    time, op, partition); the winning rows' columns are then read by a join. Sorting narrow
    keys instead of whole records makes this 1.5-3x faster at a million records."""
    if required:
        require_partition(root, source, entity, day)
    current_keys(con, root, source, entity, day, "_current_keys", ids=ids)
    n = load_rows(con, root, source, entity, day, columns, target, "_current_keys")
    con.execute("DROP TABLE _current_keys")
    return n


def current_keys(con: duckdb.DuckDBPyConnection, root: Path, source: str, entity: str,
                 day: str, target: str, *, extra: list[str] | None = None,
                 ids: str | None = None) -> int:
    """Create table `target(id, _source_updated_at, snapshot_date, *extra)`: which version of
    each record is current at the end of `day` (no rows when `day` has no partition, as
    `load_state` reads a missing entity). `extra` columns are read from every version: keep
    them narrow."""
    cols = ", ".join(["id", "_source_updated_at", "snapshot_date", *(extra or [])])
    if not has_partition(root, source, entity, day):
        empty = _empty_snapshot(source, entity)  # noqa: F841  (read by DuckDB by name)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {cols} FROM empty")
        return 0
    keys = entity_history(root, source, entity, day, extra or [])
    folder = root / source / entity
    nxt = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    only = f"WHERE id IN ({ids})" if ids else ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT {cols} FROM ({state_sql(keys, entity_dir=folder, before_day=nxt)}) {only}
    """)
    return con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]


def load_rows(con: duckdb.DuckDBPyConnection, root: Path, source: str, entity: str,
              day: str, columns: list[str], target: str, keys: str) -> int:
    """Create table `target` with the listed columns (plus id, `_source_updated_at`,
    `snapshot_date`) of the versions named by the table `keys` (from `current_keys`)."""
    cols = ", ".join(dict.fromkeys(["id", *columns, "_source_updated_at", "snapshot_date"]))
    if not has_partition(root, source, entity, day):
        empty = _empty_snapshot(source, entity)  # noqa: F841  (read by DuckDB by name)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {cols} FROM empty")
        return 0
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT {cols} FROM ({versions(root, source, entity, day)}) v
        SEMI JOIN {keys} c ON v.id = c.id AND v.snapshot_date = c.snapshot_date
            AND v._source_updated_at IS NOT DISTINCT FROM c._source_updated_at
    """)
    return con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]


def _empty_snapshot(source: str, entity: str) -> pa.Table:
    """No rows, the snapshot's columns and types: what a missing entity reads as."""
    import importlib

    schema = getattr(importlib.import_module(f"assets.{source}.schemas"), entity).arrow_schema()
    return schema.append(pa.field("snapshot_date", pa.date32())).empty_table()


def versions(root: Path, source: str, entity: str, day: str) -> str:
    """Every upsert row of the partitions up to `day` (a version may sit in two partitions)."""
    return f"""
        SELECT * FROM read_parquet('{duck_path(files_glob(root / source / entity))}',
                                   hive_partitioning = true,
                                   hive_types = {{'snapshot_date': DATE}},
                                   union_by_name = true)
        WHERE snapshot_date <= DATE '{day}' AND _op = 'upsert'
    """
