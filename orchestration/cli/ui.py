"""`talentvault ui`: Dagster's web UI and daemon (`dagster dev`) on the project's instance."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer


def ui_command(
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface the web UI listens on.")] = "127.0.0.1",
) -> None:
    """Start Dagster's web UI and daemon on the instance `talentvault demo` writes to
    ($DAGSTER_HOME, else .dagster_home/ in the repository): the demo's runs, the assets, the
    schedules and sensors, from any working directory."""
    from orchestration.instance import project_home

    home = project_home()
    if home is None:
        typer.echo("no Dagster instance: set DAGSTER_HOME to a folder holding dagster.yaml "
                   "(README, Runs by itself)", err=True)
        raise typer.Exit(2)
    os.environ["DAGSTER_HOME"] = home
    typer.echo(f"Dagster instance: {home}")
    args = [sys.executable, "-m", "dagster", "dev", "-m", "orchestration.definitions",
            "-p", str(port), "-h", host]
    os.execv(sys.executable, args)
