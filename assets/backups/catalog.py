"""The DuckDB catalog: read-only SQL over every snapshot.

For each backed-up entity:
  <source>.<entity>_history        every version once (with `snapshot_date`)
  <source>.<entity>                the current state
  <source>.<entity>_as_of(ts)      the state at a point in time (table macro)

`open_catalog()` builds these views in an in-memory database, unconfined: for talentvault's own
code (restore, verify, erasure). People query through the SQL door (`assets/backups/sql_door.py`:
the same views, confined to the backup files and locked). `write_catalog_file()` saves the same
definitions as `<root>/catalog.duckdb`, for tools that open a database file (not a locked door).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb

from assets.identity.catalog import identity_statements
from orchestration.storage.state_sql import history_sql, state_sql

SOURCES = ("greenhouse", "keap", "highlevel")
CATALOG_FILE = "catalog.duckdb"

# Statement types a user may run through `talentvault sql`: reading only.
READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}


class ReadOnlyViolation(ValueError):
    pass


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
        stmts += [
            f"CREATE OR REPLACE VIEW {name}_history AS {history}",
            f"CREATE OR REPLACE VIEW {name} AS {state_sql(history, entity_dir=folder)}",
            f"CREATE OR REPLACE MACRO {name}_as_of(ts) AS TABLE "
            f"{state_sql(history, 'CAST(ts AS TIMESTAMPTZ)', entity_dir=folder)}",
        ]
    return stmts + identity_statements(root) + audit_statements(root) + _extension_statements(root)


def audit_statements(root: Path) -> list[str]:
    """`audit.events`: the append-only audit trail (one file per event)."""
    stmts = ["CREATE SCHEMA IF NOT EXISTS audit"]
    if any((root / "audit" / "events").glob("date=*/*.parquet")):
        files = root / "audit" / "events" / "date=*" / "*.parquet"
        stmts.append(f"CREATE OR REPLACE VIEW audit.events AS SELECT * EXCLUDE (date) FROM "
                     f"read_parquet('{files}', hive_partitioning = true, union_by_name = true)")
    return stmts


# Modules that add views of their own outputs: each has `catalog_statements(root) -> list[str]`
# (imported lazily so `talentvault sql` stays light and a missing optional part never breaks it).
EXTENSIONS = ("assets.sync.catalog", "assets.backups.extra_catalog",
              "orchestration.webhooks.catalog")


def _extension_statements(root: Path) -> list[str]:
    import importlib

    stmts: list[str] = []
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        stmts += module.catalog_statements(root)
    return stmts


def open_catalog(root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every catalog view (not confined: talentvault's own code)."""
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET TimeZone = 'UTC'")
    for stmt in catalog_statements(root):
        con.execute(stmt)
    return con


_PREFIX_TOKEN = re.compile(r"\s+|--[^\n]*|/\*.*?\*/|\([^)]*\)|\w+", re.S)


def explain_analyze_target(text: str) -> str | None:
    """For `EXPLAIN ANALYZE <statement>` (which runs the statement, not only plans it): the
    statement's text; else None. Skips comments and reads `EXPLAIN (ANALYZE, ...)` options."""
    pos, words = 0, []
    while len(words) < 2 and (m := _PREFIX_TOKEN.match(text, pos)):
        tok, pos = m.group(0), m.end()
        if tok.startswith("("):
            if re.search(r"\banaly[sz]e\b", tok, re.I):
                return text[pos:]
        elif tok[0].isalnum() or tok[0] == "_":
            words.append(tok.upper())
    return text[pos:] if words in (["EXPLAIN", "ANALYZE"], ["EXPLAIN", "ANALYSE"]) else None


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but reading (COPY, ATTACH, INSERT, CREATE, SET, INSTALL ...): SELECT
    (FROM-first, PIVOT, DESCRIBE, SUMMARIZE ...) and EXPLAIN only. `EXPLAIN ANALYZE` runs its
    statement, so that statement must be a SELECT too."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise ReadOnlyViolation(f"cannot parse the query: {e}") from e
    if not statements:
        raise ReadOnlyViolation("no statement given")
    for st in statements:
        kind = st.type.name
        inner = explain_analyze_target(st.query) if kind == "EXPLAIN" else None
        if inner is not None:
            try:
                kinds = [s.type.name for s in con.extract_statements(inner)]
            except duckdb.Error:
                kinds = ["an unreadable"]
            if kinds != ["SELECT"]:
                kind = f"EXPLAIN ANALYZE of {kinds[0] if kinds else 'nothing'}"
        if kind not in READ_ONLY_TYPES:
            raise ReadOnlyViolation(
                f"refused: {kind} statements are not allowed here. The SQL entry point is "
                "read-only, so no backup can be changed through it; use SELECT (or EXPLAIN), "
                "and --output/--format to save results")


def write_catalog_file(root: Path) -> Path:
    """Save the view definitions to `<root>/catalog.duckdb` (atomically replaced)."""
    target = root / CATALOG_FILE
    tmp = root / f".{CATALOG_FILE}.{uuid.uuid4().hex[:8]}"
    con = duckdb.connect(str(tmp))
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
