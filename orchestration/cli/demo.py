"""`talentvault demo`: the whole product against the sandbox (run by cli/demo_run.py)."""

from __future__ import annotations

from typing import Annotated

import typer


def demo_command(
    day: Annotated[str | None, typer.Option(
        help="Partition (YYYY-MM-DD) to back up; default: the sandbox's last whole day.")] = None,
) -> None:
    """The main job: start the sandbox if needed, back up every entity of Greenhouse, Keap and
    HighLevel for the sandbox's current day through Dagster, refresh the SQL catalog, and print
    a summary with example queries. Run it again after `talentvault sandbox tick`."""
    from orchestration.cli.demo_run import run_demo
    from sandbox.process import StaleSandbox

    try:
        summary = run_demo(day)
    except StaleSandbox as e:   # another world or another checkout's server on the port
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if not summary["success"]:
        raise typer.Exit(1)
