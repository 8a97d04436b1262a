"""`talentvault mapping check [FILE]`: validate the Keap sync's mapping document, and check it
against the backup (assets/sync/mapping/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

mapping_app = typer.Typer(
    help="The Keap sync's mapping document: which ATS events, fields and tags reach Keap.",
    no_args_is_help=True,
)


@mapping_app.callback()
def _mapping() -> None:
    """The Keap sync's mapping document."""


@mapping_app.command("check")
def mapping_check(
    file: Annotated[Path | None, typer.Argument(
        help="Mapping YAML (default: $TALENTVAULT_SYNC_MAPPING, else the shipped default).")
    ] = None,
    date: Annotated[str | None, typer.Option(
        "--date", help="Backup day to check against (default: the latest).")] = None,
    offline: Annotated[bool, typer.Option(
        help="Only validate the file; do not compare it with the backup.")] = False,
    names: Annotated[bool, typer.Option(
        "--names", help="Also list the names the backup holds (sources, departments, offices, "
        "stages, rejection reasons, job custom fields) with counts or sample values.")] = False,
) -> None:
    """Validate a mapping document, then compare it with the latest snapshots: ATS fields
    missing from the backup, stage names and statuses nothing maps. Exit code 1 on problems,
    2 when the file is missing or not YAML (syntax error, a key written twice)."""
    from assets.sync.mapping import (
        MappingError,
        MappingSyntaxError,
        check_mapping,
        load_mapping,
    )
    from orchestration.config import data_root

    try:
        mapping = load_mapping(file)
    except MappingSyntaxError as e:     # not a YAML document at all: bad input, exit 2
        typer.echo(f"error: {e.problems[0]}", err=True)
        raise typer.Exit(2) from None
    except MappingError as e:
        for p in e.problems:
            typer.echo(str(p))
        typer.echo(f"{len(e.problems)} problem(s)", err=True)
        raise typer.Exit(1) from None
    problems = [] if offline else check_mapping(mapping, data_root(), date)
    for p in problems:
        typer.echo(str(p))
    if names and not offline:
        from assets.sync.mapping.check import latest_day
        from assets.sync.mapping.names import available_names, names_lines

        day = date or latest_day(data_root())
        if day is not None:
            typer.echo("\n".join(names_lines(available_names(data_root(), day), day)))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        typer.echo(f"{len(errors)} problem(s), {len(problems) - len(errors)} warning(s)",
                   err=True)
        raise typer.Exit(1)
    where = "" if offline else f" and matches the backup in {data_root()}"
    typer.echo(f"{mapping.path}: valid{where} ({len(mapping.fields)} fields, "
               f"{len(mapping.cross)} crossing events)")
