"""`talentvault encryption`: which key the data root is under, and moving it to another key
(orchestration/storage/rekey.py). Keys come only from the environment:
TALENTVAULT_ENCRYPTION_KEY (the key to use from now on; unset to decrypt) and, for a rotation,
TALENTVAULT_ENCRYPTION_KEY_OLD (the key the root is under now; unset when it is plaintext)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from orchestration.cli.options import DataDir

encryption_app = typer.Typer(help="Encryption at rest: status and key rotation.",
                             no_args_is_help=True)


def _root(data_dir: Path | None) -> Path:
    from orchestration.config import configured_root

    return data_dir.resolve() if data_dir else configured_root()


@encryption_app.command("status")
def status_command(data_dir: DataDir = None) -> None:
    """The data root's key id (never the key) and whether this environment's key fits it."""
    from orchestration.storage import crypt, parquet

    root = _root(data_dir)
    try:
        key = parquet.current_key()
    except parquet.EncryptionKeyError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    marker = parquet.marker(root) or {}
    files = list(parquet.iter_parquet(root))
    encrypted = sum(1 for f in files if crypt.is_encrypted(f))
    typer.echo(json.dumps({
        "data_root": str(root), "encrypted_with_key_id": marker.get("key_id"),
        "rotating_from": marker.get("rotating_from"),
        "environment_key_id": key.key_id if key else None,
        "key_fits": (key.key_id if key else None) == marker.get("key_id"),
        "parquet_files": len(files), "encrypted_files": encrypted}, indent=2))


@encryption_app.command("rotate")
def rotate_command(data_dir: DataDir = None) -> None:
    """Re-encrypt every file of the data root from TALENTVAULT_ENCRYPTION_KEY_OLD (unset: the
    root is plaintext) to TALENTVAULT_ENCRYPTION_KEY (unset: decrypt). Stop schedules, sensors
    and the daemon first; other processes refuse the root until it is done. Safe to run again
    after a crash: it finishes what is left."""
    from orchestration.storage import parquet
    from orchestration.storage.rekey import rotate

    root = _root(data_dir)
    try:
        new = parquet.current_key()
        old = parquet.parse_key(os.environ.get(parquet.OLD_KEY_ENV), parquet.OLD_KEY_ENV)
        parquet.check_root.cache_clear()
        done = rotate(root, new, old)
    except parquet.EncryptionKeyError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{done.partitions} partitions and {done.loose_files} other files re-encrypted "
               f"({done.already} partitions were already under the new key); data root now "
               f"{'under key id ' + new.key_id if new else 'plaintext'}" if not done.problems
               else "rotation not finished:\n  " + "\n  ".join(done.problems))
    if done.problems:
        raise typer.Exit(1)
