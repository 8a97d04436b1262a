"""`talentvault forget`: erase one person from every backup and suppress them from then on
(assets/recovery/erasure/)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from orchestration.config import data_root


class Source(StrEnum):
    greenhouse = "greenhouse"
    keap = "keap"
    highlevel = "highlevel"


def forget_command(
    email: Annotated[str | None, typer.Option(
        "--email", help="The person's email address.")] = None,
    source: Annotated[Source | None, typer.Option(
        "--source", help="The system the --id values come from.")] = None,
    ids: Annotated[list[str] | None, typer.Option(
        "--id", help="A record id in --source (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Resolve and count what would be erased; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Remove every trace of a person (by email, or by a source record id) from every snapshot,
    identity output and sync file under the data root, and add salted hashes of their
    identifiers to the suppression list so they are never backed up, pushed or restored again.
    Prints counts only (rows and files per entity), never the person's data."""
    from assets.recovery.erasure import ErasureError, forget

    ids = ids or []
    if ids and source is None:
        raise typer.BadParameter("--id needs --source greenhouse|keap|highlevel")
    if source is not None and not ids:
        raise typer.BadParameter("--source needs at least one --id")
    try:
        report = forget(data_root(), email=email,
                        source_ids={source.value: ids} if source else None, apply=not dry_run)
    except ErasureError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo("\n".join(report.lines()))
