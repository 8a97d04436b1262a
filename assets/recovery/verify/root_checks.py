"""Checks over the data root as a whole: every incremental chain has its base, leftovers of
interrupted runs (warnings), the files kept without manifests (audit trail, sync ledger, state)
read back, and the catalog builds with every view readable."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from assets.catalog.views import open_catalog
from assets.recovery.verify.partitions import BACKUP_SOURCES, DERIVED_SOURCES, read_all, rel_path
from assets.recovery.verify.report import Problem, VerifyReport
from orchestration.storage import audit, parquet

# Parquet files kept without manifests (append-only stores): read back, never re-hashed
UNMANIFESTED = (("audit", "events"), ("sync", "ledger"), ("state",))
LEFTOVER_PREFIXES = (".staging-", ".replaced-", ".erasing-", ".trash", ".pruned-")


def check_chains(root: Path, manifests: dict[Path, dict[str, Any]],
                  report: VerifyReport) -> None:
    """Every incremental backup partition has its base: the previous day's partition, and a
    full partition at the start of its chain."""
    modes: dict[Path, dict[str, str]] = {}
    for folder, m in manifests.items():
        entity_dir = folder.parent
        if entity_dir.parent.name in BACKUP_SOURCES:
            modes.setdefault(entity_dir, {})[folder.name.split("=", 1)[1]] = m.get("mode", "?")
    for entity_dir, days in sorted(modes.items()):
        for day in sorted(days):
            if days[day] != "incremental":
                continue
            previous = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
            if previous not in days:
                report.problems.append(Problem(
                    rel_path(root, entity_dir / f"snapshot_date={day}"), "chain",
                    f"incremental partition without its base: snapshot_date={previous} is "
                    "missing, so the state after it cannot be rebuilt; take a full snapshot "
                    "(`mode: full`) of this entity"))


def check_leftovers(root: Path, report: VerifyReport) -> None:
    for source in (*BACKUP_SOURCES, *DERIVED_SOURCES):
        base = root / source
        if not base.is_dir():
            continue
        for entity_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for p in sorted(entity_dir.iterdir()):
                if p.name.startswith(LEFTOVER_PREFIXES):
                    report.warnings.append(Problem(
                        rel_path(root, p), "leftover",
                        "left by an interrupted run (invisible to readers); safe to delete"))
    events = audit.events_dir(root)
    if events.is_dir():
        for p in sorted(events.glob("date=*/.*.tmp")):
            report.warnings.append(Problem(rel_path(root, p), "leftover",
                                           "unfinished audit event; safe to delete"))


def check_unmanifested(con: duckdb.DuckDBPyConnection, root: Path, report: VerifyReport,
                        read_data: bool) -> None:
    """The audit trail, sync ledger and state files: readable (footer, or every row)."""
    for parts in UNMANIFESTED:
        base = root.joinpath(*parts)
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.parquet")):
            if path.name.startswith("."):
                continue
            report.other_files += 1
            try:
                if read_data:
                    read_all(path)
                else:
                    parquet.open_file(path).metadata  # noqa: B018 - reading the footer is the check
            except Exception as e:  # noqa: BLE001
                report.problems.append(Problem(rel_path(root, path), "unreadable",
                                               f"Parquet file unreadable ({type(e).__name__})"))


def _safe(e: Exception) -> str:
    """The first line of a DuckDB error with quoted values blanked (a conversion error can
    quote a record's value); quoted file paths are kept."""
    line = str(e).splitlines()[0] if str(e) else type(e).__name__
    return re.sub(r"'([^'/]*)'", "'…'", line)[:300]


def check_catalog(root: Path, report: VerifyReport) -> None:
    """The catalog builds and every view reads (a damaged file a view reads shows here too)."""
    try:
        con = open_catalog(root)
    except duckdb.Error as e:
        report.problems.append(Problem("catalog:build", "catalog",
                                       f"the catalog does not build: {_safe(e)}"))
        return
    try:
        views = con.execute("""
            SELECT schema_name, view_name FROM duckdb_views()
            WHERE NOT internal AND database_name = current_database()
            ORDER BY 1, 2""").fetchall()
        for schema, view in views:
            name = f'"{schema}"."{view}"'
            try:
                con.execute(f"SELECT count(*) FROM {name}").fetchone()
                report.views += 1
            except duckdb.Error as e:
                report.problems.append(Problem(
                    f"catalog:{schema}.{view}", "catalog",
                    f"view cannot be read: {_safe(e)}"))
    finally:
        con.close()
