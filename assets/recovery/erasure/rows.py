"""Finding the rows about the person in a Parquet file: an SQL predicate over its columns (ids by
column name, addresses as whole addresses in any text, list, map or struct column)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from assets.recovery.erasure.scope import ENTITY_ID, ID_COLUMNS, QUARANTINE_RECORD, id_list, ids_of
from orchestration.storage.parquet import duck_path


def sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    rel = con.sql(f"SELECT * FROM read_parquet('{duck_path(path)}', "
                  "hive_partitioning = false) LIMIT 0")
    return list(zip(rel.columns, [str(t) for t in rel.types], strict=True))


def needle_pattern(needles: list[str]) -> str | None:
    """One RE2 pattern matching any of the addresses as a whole address."""
    if not needles:
        return None
    alt = "|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
    # before: start, a character that cannot end a local part, or a JSON escape (`\\t`, `\\u00a0`)
    before = r"(?:^|[^a-z0-9._%+\-]|\\[a-z]|\\u[0-9a-f]{4})"
    after = r"(?:$|[^a-z0-9.\-]|\.(?:$|[^a-z0-9]))"
    return f"{before}(?:{alt}){after}"


def row_predicate(columns: list[tuple[str, str]], rel_parts: tuple[str, ...],
                  needles: list[str]) -> str | None:
    """SQL: true for a row about the person (None: nothing in this file can be)."""
    names = {c for c, _ in columns}
    conds = []
    for name, type_ in columns:
        q = f'"{name}"'
        kinds = ID_COLUMNS.get(name)
        if name == "id" and len(rel_parts) >= 2:
            # a history checkpoint (history/<source>__<entity>) holds that entity's rows
            owner = tuple(rel_parts[1].split("__", 1)) if rel_parts[0] == "history" \
                else (rel_parts[0], rel_parts[1])
            kinds = ENTITY_ID.get(owner)
        if kinds:
            if type_.endswith("[]"):
                conds.append(f"list_has_any(CAST({q} AS VARCHAR[]), {id_list(kinds)})")
            else:
                conds.append(f"CAST({q} AS VARCHAR) IN {ids_of(kinds)}")
    if {"record_id", "entity"} <= names:
        for entity, k in QUARANTINE_RECORD.items():
            conds.append(f"(entity = '{entity}' AND CAST(record_id AS VARCHAR) IN "
                         f"{ids_of(k)})")
    pattern = needle_pattern(needles)
    if pattern:
        texts = []
        for name, type_ in columns:
            q = f'"{name}"'
            if type_ == "VARCHAR":
                texts.append(f"coalesce({q}, '')")
            elif type_.endswith("[]") or type_.startswith(("STRUCT", "MAP", "UNION")) \
                    or type_ == "JSON":
                texts.append(f"coalesce(CAST(to_json({q}) AS VARCHAR), '')")
        if texts:
            text = "lower(concat_ws(chr(31), " + ", ".join(texts) + "))"
            pre = " OR ".join(f"contains({text}, {sql_str(n)})" for n in needles)
            conds.append(f"(({pre}) AND regexp_matches({text}, {sql_str(pattern)}))")
    return " OR ".join(f"coalesce({c}, FALSE)" for c in conds) if conds else None
