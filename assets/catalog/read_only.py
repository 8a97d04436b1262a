"""The statement check of `talentvault sql` (and of a restore's `--where`): reading only.

SELECT (FROM-first, PIVOT, DESCRIBE, SUMMARIZE ...) and EXPLAIN pass; anything that writes,
attaches, sets or installs is refused, and so is `EXPLAIN ANALYZE` of anything but a SELECT (it
runs its statement). The SQL door (sql_door.py) confines what a session can read; this check
keeps `talentvault sql` from writing at all.
"""

from __future__ import annotations

import re

import duckdb

# Statement types a user may run through `talentvault sql`: reading only.
READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}


class ReadOnlyViolation(ValueError):
    pass


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
