"""`talentvault verify`, `talentvault seal` and `talentvault retention` (wired as top-level
commands by `orchestration/cli.py`; try them meanwhile with `python -m assets.backups.cli ...`)."""

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from orchestration.config import data_root

app = typer.Typer(help="Backup integrity and retention.", no_args_is_help=True,
                  pretty_exceptions_enable=False)

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data root (default: $TALENTVAULT_DATA_DIR, else ./data).")]


@app.command("verify")
def verify_command(
    read_data: Annotated[bool, typer.Option(
        "--read-data", help="Also decode every row of every file and recompute each backup "
        "partition's content fingerprint (slower: proves the backup restores).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Re-hash every backup file against its manifest, check the incremental chains and the
    catalog; exits 1 naming each damaged file."""
    from assets.backups.verify import verify

    try:
        report = verify((data_dir or data_root()).resolve(), read_data=read_data)
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command("seal")
def seal_command(
    accept: Annotated[list[str] | None, typer.Option(
        "--accept", help="Accept this partition (`keap/contacts/snapshot_date=2026-01-04`) or "
        "state file (`state/suppression.parquet`) as it is now, after a deliberate restore or "
        "repair; `all` accepts everything (and starts a new ledger if it is damaged). "
        "Repeatable.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Seal the backups written before sealing (and any landing a crash left unrecorded) as
    they are now, after checking their files against their manifests. A partition that changed
    since it was sealed is refused unless named with --accept; exits 1 when anything was
    refused."""
    from assets.backups.verify_seals import SealError, seal_root
    from orchestration.seals import SealKeyError

    try:
        report = seal_root((data_dir or data_root()).resolve(), tuple(accept or ()))
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    except (SealError, SealKeyError) as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from e
    typer.echo("\n".join(report.lines()))
    if report.refused:
        raise typer.Exit(1)


@app.command("retention")
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
    from assets.backups.retention import Policy, prune

    try:
        policy = Policy(days=days, months=months, derived_days=derived_days)
        day = date.fromisoformat(today) if today else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    try:
        report = prune((data_dir or data_root()).resolve(), policy, day, apply=apply)
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.markdown())


if __name__ == "__main__":
    app()
