"""`talentvault sql`: run a read-only query over the catalog and print or save the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from assets.backups.catalog import ReadOnlyViolation, check_read_only, open_catalog
from orchestration.config import data_root

FORMATS = ("table", "csv", "json", "parquet")


def run_and_print(query: str, fmt: str = "table", output: Path | None = None,
                  limit: int = 50, con: duckdb.DuckDBPyConnection | None = None) -> int:
    """Returns a process exit code: 0 ok, 2 refused or invalid."""
    err = Console(stderr=True, soft_wrap=True)  # messages are not reflowed mid-sentence
    if fmt not in FORMATS:
        err.print(f"[red]error:[/] --format must be one of {', '.join(FORMATS)}")
        return 2
    if fmt == "parquet" and output is None:
        err.print("[red]error:[/] --format parquet needs --output FILE")
        return 2
    root = data_root()
    if output is not None and root in output.resolve().parents:
        err.print(f"[red]error:[/] refusing to write {output} inside the backup folder {root}")
        return 2
    con = con or open_catalog(root)
    try:
        check_read_only(con, query)
        table = con.sql(query).fetch_arrow_table()
    except ReadOnlyViolation as e:
        err.print(f"[red]{e}[/]")
        return 2
    except duckdb.Error as e:
        err.print(f"[red]error:[/] {e}")
        return 2
    if fmt == "table":
        _print_table(table, limit, output)
    elif fmt == "csv":
        pacsv.write_csv(table, str(output) if output else sys.stdout.buffer)
    elif fmt == "json":
        text = "\n".join(json.dumps(r, default=str, ensure_ascii=False) for r in table.to_pylist())
        if output:
            output.write_text(text + "\n")
        else:
            print(text)
    else:
        pq.write_table(table, output, compression="zstd")
    if output:
        err.print(f"{table.num_rows} rows written to {output}")
    return 0


def _print_table(table, limit: int, output: Path | None) -> None:
    view = Table(show_lines=False)
    for name in table.column_names:
        view.add_column(name)
    for row in table.slice(0, limit).to_pylist():
        view.add_row(*("" if v is None else str(v) for v in row.values()))
    console = Console(file=open(output, "w") if output else None, width=200 if output else None)
    console.print(view)
    if table.num_rows > limit:
        console.print(f"({table.num_rows} rows, {limit} shown; --limit N or --format csv)")


def interactive() -> None:
    con = open_catalog(data_root())
    print("talentvault sql (read-only). Views: "
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
