"""The `talentvault` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assets.backups.cli import retention_command, seal_command, verify_command
from assets.backups.cli_forget import forget_command
from assets.backups.cli_restore import app as restore_app
from assets.sync.cli import mapping_app, sync_app
from orchestration.audit_cli import audit_app
from orchestration.runs_cli import runs_app
from orchestration.sandbox_cli import sandbox_app
from orchestration.startup import check_mode_at_start
from orchestration.status_cli import status_command
from orchestration.webhooks.cli import webhooks_app

app = typer.Typer(
    help="talentvault: backups, data checks and Keap sync for recruiting data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.callback()(check_mode_at_start)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(mapping_app, name="mapping")
app.add_typer(sync_app, name="sync")
app.command("status")(status_command)
app.command("verify")(verify_command)
app.command("seal")(seal_command)
app.command("retention")(retention_command)
app.command("forget")(forget_command)
app.add_typer(restore_app, name="restore")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(audit_app, name="audit")
app.add_typer(runs_app, name="runs")


@app.command("demo")
def demo(
    day: Annotated[str | None, typer.Option(
        help="Partition (YYYY-MM-DD) to back up; default: the sandbox's last whole day.")] = None,
) -> None:
    """The main job: start the sandbox if needed, back up every entity of Greenhouse, Keap and
    HighLevel for the sandbox's current day through Dagster, refresh the SQL catalog, and print
    a summary with example queries. Run it again after `talentvault sandbox tick`."""
    from orchestration.demo import run_demo

    summary = run_demo(day)
    if not summary["success"]:
        raise typer.Exit(1)


@app.command("sql")
def sql(
    query: Annotated[str | None, typer.Argument(
        help="A SELECT over the catalog; without one, an interactive prompt opens.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json | parquet")]
    = "table",
    output: Annotated[Path | None, typer.Option(help="Write the result to this file.")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown in table format.")] = 50,
    duckdb_init: Annotated[Path | None, typer.Option(
        "--duckdb-init", help="Write a duckdb CLI init script with the same views and locks "
        "to this file ('-' = stdout), for `duckdb -init FILE`.")] = None,
) -> None:
    """Read-only SQL over every snapshot: <source>.<entity> (current state),
    <source>.<entity>_history (every version) and <source>.<entity>_as_of(ts). Only the backup
    files are readable (no other file, URL or extension; settings locked); statements that
    would write (COPY, CREATE, INSERT, ATTACH, SET ...) are refused; every query is recorded in
    audit.events."""
    from orchestration.sqlcli import interactive, run_and_print, write_init_script

    if duckdb_init is not None:
        raise typer.Exit(write_init_script(duckdb_init))
    if query is None:
        interactive()
    else:
        raise typer.Exit(run_and_print(query, fmt, output, limit))


if __name__ == "__main__":
    app()
