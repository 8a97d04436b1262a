"""`talentvault retention`: the partitions the retention policy no longer keeps, and their
removal with --apply (assets/recovery/retention.py)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from orchestration.cli.options import DataDir, root_of


def retention_command(
    apply: Annotated[bool, typer.Option(
        "--apply", help="Remove the partitions (default: a dry run that only reports).")]
    = False,
    days: Annotated[int, typer.Option(help="Keep every daily backup partition of this many "
                                      "days.")] = 35,
    months: Annotated[int, typer.Option(help="Keep the first full backup partition of each of "
                                        "this many calendar months.")] = 13,
    derived_days: Annotated[int, typer.Option(help="Keep identity/* and sync/* partitions of "
                                              "this many days.")] = 35,
    today: Annotated[str | None, typer.Option(help="Count back from this day (YYYY-MM-DD; "
                                              "default: today, UTC).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Show (or with --apply, remove) the snapshot partitions the retention policy no longer
    keeps. Incremental chains are never broken; the sync ledger and audit trail are never
    pruned."""
    from assets.recovery.retention import Policy, prune

    try:
        policy = Policy(days=days, months=months, derived_days=derived_days)
        day = date.fromisoformat(today) if today else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    try:
        report = prune(root_of(data_dir), policy, day, apply=apply)
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.markdown())
