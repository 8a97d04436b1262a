"""`talentvault sql`: run a read-only query through the SQL door and print or save the result.

Every query, refused ones included, is recorded in the audit trail
(orchestration/storage/read_audit.py) before any row is shown or saved: a read that cannot be
recorded is not shown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from assets.catalog import sql_door
from assets.catalog.read_only import ReadOnlyViolation, check_read_only
from orchestration.config import data_root
from orchestration.storage import read_audit

FORMATS = ("table", "csv", "json", "parquet")


def sql_command(
    query: Annotated[str | None, typer.Argument(
        help="A SELECT over the catalog; without one, an interactive prompt opens.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json | parquet")]
    = "table",
    output: Annotated[Path | None, typer.Option(help="Write the result to this file.")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown in table format.")] = 50,
    duckdb_init: Annotated[Path | None, typer.Option(
        "--duckdb-init", help="Write a duckdb CLI init script with the same views and locks "
        "to this file ('-' = stdout), for `duckdb -init FILE`.")] = None,
    from_replica: Annotated[bool, typer.Option(
        "--from-replica", help="Read the partitions straight from the replica bucket "
        "(TALENTVAULT_REPLICA_URL) instead of the data root.")] = False,
) -> None:
    """Read-only SQL over every snapshot: <source>.<entity> (current state),
    <source>.<entity>_history (every version) and <source>.<entity>_as_of(ts). Only the backup
    files are readable (no other file, URL or extension; settings locked); statements that
    would write (COPY, CREATE, INSERT, ATTACH, SET ...) are refused; every query is recorded in
    audit.events."""
    if duckdb_init is not None:
        raise typer.Exit(write_init_script(duckdb_init))
    con = replica_connection() if from_replica else primary_connection()
    if query is None:
        interactive(con)
    else:
        raise typer.Exit(run_and_print(query, fmt, output, limit, con))


def primary_connection() -> duckdb.DuckDBPyConnection | None:
    """A bucket primary: the locked session reading partitions straight from the bucket and the
    root's records from the cache (None for a folder root: the door over it)."""
    from orchestration.storage import primary

    return replica_connection(primary.bucket()) if primary.url() else None


def replica_connection(bucket=None) -> duckdb.DuckDBPyConnection:
    """The locked session over the replica bucket (or `bucket`, a bucket primary), or a
    one-line error (exit 2)."""
    from assets.catalog.replica_door import connect_replica
    from orchestration.storage import parquet, replica
    from orchestration.storage.bucket import BucketError

    try:
        records = data_root(partitions=False) if bucket is not None else None
        bucket = bucket or replica.replica_bucket()
        if bucket is None:
            raise BucketError(f"--from-replica reads the replica bucket: set {replica.URL_ENV}")
        return connect_replica(bucket, parquet.current_key(), records)
    except (BucketError, replica.ReplicaError, parquet.EncryptionKeyError) as e:
        Console(stderr=True).print(f"error: {e}", markup=False, style="red")
        raise typer.Exit(2) from None


def output_problem(output: Path, root: Path) -> str | None:
    """Why results cannot be written to `output`, or None."""
    target = output.expanduser().resolve()
    if target == root or root in target.parents:
        return (f"refusing to write {output} inside the backup folder {root}: choose a file "
                "outside it (e.g. --output ~/result.csv)")
    if target.is_dir():
        return f"--output {output} is a folder: give a file name (e.g. {output}/result.csv)"
    if not target.parent.is_dir():
        return f"--output {output}: the folder {target.parent} does not exist; create it first"
    return None


def run_and_print(query: str, fmt: str = "table", output: Path | None = None,
                  limit: int = 50, con: duckdb.DuckDBPyConnection | None = None) -> int:
    """Returns a process exit code: 0 ok, 2 refused or invalid, 1 not recorded or not saved."""
    err = Console(stderr=True, soft_wrap=True)  # messages are not reflowed mid-sentence
    if fmt not in FORMATS:
        err.print(f"[red]error:[/] --format must be one of {', '.join(FORMATS)}")
        return 2
    if fmt == "parquet" and output is None:
        err.print("[red]error:[/] --format parquet needs --output FILE")
        return 2
    root = data_root(partitions=False)
    if output is not None and (problem := output_problem(output, root)):
        err.print(f"error: {problem}", markup=False, style="red")
        return 2
    con = con or sql_door.connect(root)
    relations: list[str] = []
    try:
        check_read_only(con, query)
        relations = sql_door.relations_named(con, query)
        table = con.sql(query).fetch_arrow_table()
    except (ReadOnlyViolation, duckdb.Error) as e:
        message = str(e) if isinstance(e, ReadOnlyViolation) else f"error: {_first_line(e)}"
        if isinstance(e, duckdb.PermissionException):
            message += (" (the SQL door reads only the backup files; no other file, URL or "
                        "extension, and its settings are locked)")
        refused = isinstance(e, ReadOnlyViolation | duckdb.PermissionException)
        _record(root, query, relations, "refused" if refused else "failed", err,
                error=type(e).__name__)
        err.print(message, markup=False, style="red")
        return 2
    if not _record(root, query, relations, "succeeded", err, table=table, output=output,
                   fmt=fmt):
        return 1
    try:
        _write(table, fmt, output, limit)
    except (OSError, pa.ArrowException) as e:
        reason = getattr(e, "strerror", None) or _first_line(e)
        err.print(f"error: cannot write {output}: {reason}", markup=False, style="red")
        return 1
    if output:
        err.print(f"{table.num_rows} rows written to {output}")
    return 0


def write_init_script(target: Path) -> int:
    """`talentvault sql --duckdb-init FILE`: the locked door for the duckdb CLI."""
    from orchestration.storage.parquet import current_key

    err = Console(stderr=True, soft_wrap=True)
    root = data_root()   # a bucket primary: the script reads this machine's cache of it
    if current_key() is not None:
        err.print("error: the duckdb CLI cannot read an encrypted data root (its files open "
                  "only through talentvault's filesystem): use `talentvault sql`, or "
                  "`assets.catalog.sql_door.locked_connection()` in Python", markup=False,
                  style="red")
        return 2
    text = sql_door.init_script(root)
    if str(target) == "-":
        sys.stdout.write(text)
    else:
        if problem := output_problem(target, root):
            err.print(f"error: {problem}", markup=False, style="red")
            return 2
        target.write_text(text)
        err.print(f"wrote {target}: open it with `duckdb -init {target}` (regenerate after new "
                  "backups)", markup=False)
    from orchestration.storage import audit

    audit.record(root, "sql_session", target="catalog", details={"via": "duckdb-init"})
    return 0


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _record(root: Path, query: str, relations: list[str], status: str, err: Console,
            **kwargs) -> bool:
    try:
        read_audit.record_query(root, query, relations=relations, status=status, **kwargs)
    except (OSError, RuntimeError) as e:     # RuntimeError: a damaged installation salt
        err.print(f"error: the read could not be recorded in the audit trail ({e}); nothing "
                  "shown. Check that the data root is writable.", markup=False, style="red")
        return False
    return True


def text_safe(table: pa.Table) -> pa.Table:
    """The table with nested columns (lists, structs, maps) as JSON text, for CSV."""
    cols = []
    for col in table.columns:
        if pa.types.is_nested(col.type) or pa.types.is_map(col.type):
            col = pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                            for v in col.to_pylist()], pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _write(table: pa.Table, fmt: str, output: Path | None, limit: int) -> None:
    if fmt == "table":
        _print_table(table, limit, output)
    elif fmt == "csv":
        pacsv.write_csv(text_safe(table), str(output) if output else sys.stdout.buffer)
    elif fmt == "json":
        text = "\n".join(json.dumps(r, default=str, ensure_ascii=False) for r in table.to_pylist())
        if output:
            output.write_text(text + "\n")
        else:
            print(text)
    else:
        pq.write_table(table, output, compression="zstd")


def _print_table(table: pa.Table, limit: int, output: Path | None) -> None:
    view = Table(show_lines=False)
    for name in table.column_names:
        view.add_column(name)
    for row in table.slice(0, limit).to_pylist():
        view.add_row(*("" if v is None else str(v) for v in row.values()))
    console = Console(file=open(output, "w") if output else None, width=200 if output else None)
    console.print(view)
    if table.num_rows > limit:
        console.print(f"({table.num_rows} rows, {limit} shown; --limit N or --format csv)")


def interactive(con: duckdb.DuckDBPyConnection | None = None) -> None:
    con = con or sql_door.connect(data_root(partitions=False))
    print("talentvault sql (read-only; every query is recorded in audit.events). Views: "
          + ", ".join(r[0] for r in con.execute(
              "SELECT schema_name || '.' || view_name FROM duckdb_views() "
              "WHERE NOT internal ORDER BY 1").fetchall()))
    print("End a query with ';'. Ctrl-D quits.")
    buf: list[str] = []
    while True:
        try:
            line = input("sql> " if not buf else "...> ")
        except EOFError:
            print()
            return
        buf.append(line)
        if line.rstrip().endswith(";"):
            run_and_print("\n".join(buf), con=con)
            buf.clear()

