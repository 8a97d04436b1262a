"""The DuckDB catalog: read-only SQL over every snapshot.

For each backed-up entity:
  <source>.<entity>_history        every version once (with `snapshot_date`)
  <source>.<entity>                the current state
  <source>.<entity>_as_of(ts)      the state at a point in time (table macro)

`open_catalog()` builds these views in an in-memory database, unconfined: for talentvault's own
code (restore, verify, erasure). People query through the SQL door (`assets/catalog/sql_door.py`:
the same views, confined to the backup files and locked). `write_catalog_file()` saves the same
definitions as `<root>/catalog.duckdb`, for tools that open a database file (not a locked door).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from assets.identity.catalog import identity_statements
from assets.sync.catalog import catalog_statements as sync_statements
from orchestration.storage.checkpoints import catalog_state_sql, valid_checkpoints
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path
from orchestration.storage.state_sql import history_sql
from orchestration.webhooks.catalog import catalog_statements as webhook_statements

SOURCES = ("greenhouse", "keap", "highlevel")
CATALOG_FILE = "catalog.duckdb"
# the views other rooms add over their own outputs, after the backups, identity and the audit
# trail: each gives the DDL of its views for a data root
EXTENSIONS: tuple[Callable[[Path], list[str]], ...] = (sync_statements, webhook_statements)


def backed_up_entities(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(source, entity, folder) of every entity with at least one landed partition."""
    for source in SOURCES:
        base = root / source
        if not base.is_dir():
            continue
        for entity_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            if any(entity_dir.glob("snapshot_date=*/*.parquet")):
                yield source, entity_dir.name, entity_dir


def catalog_statements(root: Path) -> list[str]:
    """The DDL of the whole catalog, in order."""
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {s}" for s in SOURCES]
    for source, entity, folder in backed_up_entities(root):
        history = history_sql(folder)
        name = f"{source}.{entity}"
        cps = valid_checkpoints(folder)
        stmts += [
            f"CREATE OR REPLACE VIEW {name}_history AS {history}",
            f"CREATE OR REPLACE VIEW {name} AS {catalog_state_sql(folder, cps=cps)}",
            f"CREATE OR REPLACE MACRO {name}_as_of(ts) AS TABLE "
            f"{catalog_state_sql(folder, 'CAST(ts AS TIMESTAMPTZ)', cps=cps)}",
        ]
    stmts += identity_statements(root) + audit_statements(root)
    for extension in EXTENSIONS:
        stmts += extension(root)
    return stmts


def audit_statements(root: Path) -> list[str]:
    """`audit.events`: the append-only audit trail (one file per event)."""
    stmts = ["CREATE SCHEMA IF NOT EXISTS audit"]
    if any((root / "audit" / "events").glob("date=*/*.parquet")):
        files = root / "audit" / "events" / "date=*" / "*.parquet"
        stmts.append(f"CREATE OR REPLACE VIEW audit.events AS SELECT * EXCLUDE (date) FROM "
                     f"read_parquet('{duck_path(files)}', hive_partitioning = true, "
                     "union_by_name = true)")
    return stmts


def open_catalog(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every catalog view (not confined: talentvault's own code)."""
    con = connect_duckdb(config={"threads": 2})
    con.execute("SET TimeZone = 'UTC'")
    for stmt in catalog_statements(root):
        con.execute(stmt)
    return con


def write_catalog_file(root: Path) -> Path:
    """Save the view definitions to `<root>/catalog.duckdb` (atomically replaced)."""
    target = root / CATALOG_FILE
    tmp = root / f".{CATALOG_FILE}.{uuid.uuid4().hex[:8]}"
    con = connect_duckdb(str(tmp))
    try:
        for stmt in catalog_statements(root):
            con.execute(stmt)
    finally:
        con.close()
    os.replace(tmp, target)
    wal = tmp.with_name(tmp.name + ".wal")
    if wal.exists():
        wal.unlink()
    return target


def describe(root: Path) -> list[dict[str, object]]:
    """Views with their current row counts (for summaries)."""
    con = open_catalog(root)
    out = []
    for source, entity, _ in backed_up_entities(root):
        n = con.execute(f"SELECT count(*) FROM {source}.{entity}").fetchone()[0]
        versions = con.execute(f"SELECT count(*) FROM {source}.{entity}_history").fetchone()[0]
        out.append({"view": f"{source}.{entity}", "rows": n, "versions": versions})
    return out
