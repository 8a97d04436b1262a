"""`talentvault verify` and `talentvault seal`: is every backup file what its manifest and the
seal ledger say it is (assets/recovery/verify/)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestration.cli.options import DataDir, root_of


def verify_command(
    read_data: Annotated[bool, typer.Option(
        "--read-data", help="Also decode every row of every file and recompute each backup "
        "partition's content fingerprint (slower: proves the backup restores).")] = False,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Copy each damaged or missing partition back from the healthy copy "
        "(primary or TALENTVAULT_REPLICA_DIR), then verify again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Re-hash every backup file against its manifest (and its replica copy, when there is
    one), check the incremental chains and the catalog; exits 1 naming each damaged file."""
    from assets.recovery.verify import repair as repair_from_copies
    from assets.recovery.verify import verify
    from orchestration.storage.bucket import BucketError
    from orchestration.storage.replica import ReplicaError, describe

    root = root_of(data_dir)
    try:
        if repair and not root.exists() and describe() is not None:
            root.mkdir(parents=True)   # a lost primary rebuilt from the replica
        report = verify(root, read_data=read_data)
        if repair and not report.ok:
            fixed = repair_from_copies(root, report)
            typer.echo("\n".join(fixed.lines() or ["nothing the copies can repair"]))
            report = verify(root, read_data=read_data)
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    except (ReplicaError, BucketError) as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if not report.ok:
        raise typer.Exit(1)


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
    from assets.recovery.verify import SealError, seal_root
    from orchestration.storage.seals import SealKeyError

    try:
        report = seal_root(root_of(data_dir), tuple(accept or ()))
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e
    except (SealError, SealKeyError) as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from e
    typer.echo("\n".join(report.lines()))
    if report.refused:
        raise typer.Exit(1)
