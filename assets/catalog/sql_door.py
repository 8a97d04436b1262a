"""The SQL door: the catalog as people query it, confined by DuckDB itself to the backup files.

`talentvault sql` (`connect()`), `locked_connection()` (people's own Python) and `init_script()`
(the duckdb CLI) open the catalog the same way: DuckDB's own sandbox, locked, then the views of
`assets/catalog/views.py`:

- `allowed_paths` is the exact list of files the views read now (each glob of a view definition
  is replaced by the files it matches), so nothing else on the host is readable: not
  `/etc/passwd`, not a source file, not `state/` (the suppression salt, Keap's OAuth tokens, the
  webhook hook secret live there, and `SECRETS_DIR` is never allowed). A path is matched as
  written, so `keap/../state/...` is refused too. No backup folder is allowed (only a private
  spill folder), so no new file can be created next to a backup file;
- `enable_external_access = false`: no other file, no http(s)/s3 URL, no ATTACH of another
  database, no INSTALL/LOAD;
- no extension autoload/autoinstall, no community extensions;
- `lock_configuration = true`: `SET`, `RESET` and `PRAGMA` can no longer loosen any of it.

What DuckDB cannot do: make a file it may read unwritable. `COPY ... TO` an allowed backup file
with `USE_TMP_FILE false` would overwrite it; landed files are read-only on disk (for every user
but root) and hashed in their manifest (`talentvault verify` names the damage).
`talentvault sql` adds the statement check (`check_read_only`: SELECT and plain EXPLAIN only), so
through it nothing can write. The connection from `locked_connection()` and the duckdb CLI
session have no statement check: give other people `talentvault sql`.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb

from assets.catalog.views import catalog_statements
from orchestration.config import data_root
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import local_path

# where the installation keeps its secrets (the suppression salt, Keap's rotating OAuth token in
# keap_oauth.json, Keap's hook secrets in webhooks/): never readable through the door, even if a
# view named a file there
SECRETS_DIR = "state"
# a SQL string literal (quotes doubled inside)
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_GLOB_CHARS = re.compile(r"[*?\[]")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def pinned_statements(root: Path, name_of: Callable[[str], str] | None = None,
                      ) -> tuple[list[str], list[str]]:
    """The catalog DDL with every glob under the data root replaced by the list of files it
    matches now, and those files (the only ones the door may read). A file under `state/` (the
    secrets) or that is a link leading out of the data root is left out. `name_of(path)` gives
    the name DuckDB reads a matched file by (default: the path, as the view named it)."""
    root = Path(root).resolve()
    real_root = os.path.realpath(root)
    secrets = os.path.join(real_root, SECRETS_DIR, "")
    files: set[str] = set()

    def readable(path: str) -> bool:
        real = os.path.realpath(path)
        return (os.path.isfile(real) and real.startswith(f"{real_root}{os.sep}")
                and not real.startswith(secrets))

    def expand(match: re.Match) -> str:
        named = match.group(1).replace("''", "'")
        text = local_path(named)   # an encrypted root's files are named `tvcrypt://<path>`
        prefix = named[:len(named) - len(text)]
        rename = name_of or (lambda p: prefix + p)
        if not text.startswith(f"{root}{os.sep}"):
            return match.group(0)
        if not _GLOB_CHARS.search(text):    # one file named as it is
            if readable(text):
                files.add(rename(text))
                return _quote(rename(text))
            return match.group(0)
        found = sorted(rename(p) for p in glob.glob(text, recursive=True, include_hidden=True)
                       if readable(p))
        if not found:
            return match.group(0)   # reading it fails with DuckDB's permission error
        files.update(found)
        return "[" + ", ".join(map(_quote, found)) + "]"

    stmts = [_LITERAL.sub(expand, s) for s in catalog_statements(root)]
    return stmts, sorted(files)


def lock_statements(files: list[str], temp_dir: str = "") -> list[str]:
    """The settings that confine a session to `files`, in the order DuckDB accepts them
    (allowed paths before external access goes off, the lock last). `temp_dir` is where large
    sorts spill ('' = never spill); DuckDB lets the session use it."""
    paths = "[" + ", ".join(map(_quote, files)) + "]"
    return [
        "SET TimeZone = 'UTC'",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        f"SET temp_directory = {_quote(temp_dir)}",
        f"SET allowed_paths = {paths}",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ]


def connect(root: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every catalog view, locked to the backup files (module doc)."""
    root = Path(root or data_root()).resolve()
    return locked(*pinned_statements(root))


def locked(stmts: list[str], files: list[str],
           con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """`con` (a new connection by default) locked to `files`, then the catalog `stmts`."""
    spill = tempfile.mkdtemp(prefix="talentvault-sql-")
    atexit.register(shutil.rmtree, spill, ignore_errors=True)
    con = con or connect_duckdb(config={"threads": 2, "autoinstall_known_extensions": False,
                                        "autoload_known_extensions": False})
    for stmt in lock_statements(files, spill):
        con.execute(stmt)
    for stmt in stmts:
        con.execute(stmt)
    return con


def locked_connection(root: Path | None = None) -> duckdb.DuckDBPyConnection:
    """`connect()` for people's own Python: the session is recorded in the audit trail
    (`sql_session`); its queries are not, one by one (`talentvault sql` records each)."""
    from orchestration.storage import audit

    root = Path(root or data_root()).resolve()
    con = connect(root)
    audit.record(root, "sql_session", target="catalog", details={"via": "python"})
    return con


def init_script(root: Path | None = None) -> str:
    """A duckdb CLI init script: the same locks, then the same views (in memory).
    `duckdb -init FILE` (not `-safe`: safe mode turns external access off before the script
    can name the backup files)."""
    root = Path(root or data_root()).resolve()
    stmts, files = pinned_statements(root)
    head = [f"-- talentvault SQL door over {root}: reads only the backup files listed below,",
            "-- no network, no extensions, settings locked. Regenerate after new backups:",
            "--   talentvault sql --duckdb-init FILE"]
    body = [s.strip() + ";" for s in [*lock_statements(files), *stmts]]
    return "\n".join(head + body) + "\n"


def relations_named(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """The catalog views and table macros a query names (`keap.contacts`,
    `keap.contacts_as_of`), from its text with string literals and comments removed."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", _LITERAL.sub("''", sql), flags=re.S).lower()
    known = con.execute(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
        "UNION SELECT schema_name, function_name FROM duckdb_functions() "
        "WHERE function_type = 'table_macro' AND schema_name <> 'main' "
        "AND NOT internal").fetchall()
    found = []
    for schema, name in known:
        pattern = rf'(?<!\w)"?{schema}"?\s*\.\s*"?{re.escape(name)}"?(?!\w)'
        if re.search(pattern, text):
            found.append(f"{schema}.{name}")
    return sorted(found)
