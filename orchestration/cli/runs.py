"""`talentvault runs release`: end the Dagster runs whose process is gone and free their
concurrency-pool slots (orchestration/instance.py). Runs do this themselves when they wait for a
pool, and the daemon of `dagster dev` does it too (dagster.yaml `run_monitoring:`); the command is
for doing it by hand, and for a run on another machine, which is never judged dead from here."""

from __future__ import annotations

from typing import Annotated

import typer

runs_app = typer.Typer(
    help="Dagster runs of this instance: release the ones whose process is gone.",
    no_args_is_help=True,
)


@runs_app.callback()
def _runs() -> None:
    """Dagster runs of this instance."""


@runs_app.command("release")
def release_command(
    run_ids: Annotated[list[str] | None, typer.Argument(
        help="Runs to release (default: every run whose process is gone).")] = None,
    force: Annotated[bool, typer.Option(
        help="Release the named runs even when their process cannot be checked from this "
        "machine (it ran elsewhere): only when you know it is gone.")] = False,
) -> None:
    """Mark failed the runs whose process was killed or crashed, and free their concurrency-pool
    slots, so the runs waiting for those pools go on. A live run is never released: let it
    finish, or terminate it first. Exit code 1 when a named run cannot be released."""
    from orchestration.instance import (
        release_abandoned_runs,
        release_run,
        run_worker,
        use_project_instance,
    )

    instance = use_project_instance()
    by = "`talentvault runs release`"
    if not run_ids:
        freed = release_abandoned_runs(instance, by=by)
        for run_id in freed:
            typer.echo(f"released run {run_id}: its process is gone")
        typer.echo(f"{len(freed)} run(s) released" if freed
                   else "no run to release: every running run's process is alive")
        return
    refused = 0
    for run_id in run_ids:
        worker = run_worker(instance, run_id)
        if worker.status is None or worker.alive or (worker.alive is None and not force):
            why = ("no such run in this instance (DAGSTER_HOME)" if worker.status is None else
                   f"{worker.describe()}: let it finish or terminate it first" if worker.alive
                   else f"{worker.describe()}: add --force if you know its process is gone")
            typer.echo(f"run {run_id} not released: {why}", err=True)
            refused += 1
            continue
        release_run(instance, worker, by)
        typer.echo(f"released run {run_id} ({worker.describe()})")
    if refused:
        raise typer.Exit(1)
