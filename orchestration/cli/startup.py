"""What `talentvault` checks before a subcommand runs: the mode (orchestration/config.py).

A command that talks to a vendor (restore, webhooks) stops at once, with one line naming the
missing or misplaced setting and the fix, instead of failing half-way or falling back to the
sandbox. The demo runs only in sandbox mode. Commands that read the backups alone (sql, verify,
status, ...) do not need vendor settings and are not checked; `status` reports them.
"""

from __future__ import annotations

import typer

from orchestration.config import ModeError, checked_mode, data_root, require_sandbox_mode
from orchestration.storage.bucket import BucketError
from orchestration.storage.parquet import EncryptionKeyError

VENDOR_COMMANDS = ("restore", "webhooks")
KEYLESS_COMMANDS = ("encryption", "sandbox", None)  # work on a root whatever its key


def check_mode_at_start(ctx: typer.Context) -> None:
    """The app callback: runs before every subcommand."""
    try:
        if ctx.invoked_subcommand == "demo":
            require_sandbox_mode("talentvault demo")
        elif ctx.invoked_subcommand in VENDOR_COMMANDS:
            checked_mode()
        if ctx.invoked_subcommand not in KEYLESS_COMMANDS:
            # the encryption key must fit the data root (storage/parquet.py); a bucket
            # primary must answer (storage/primary.py)
            data_root(partitions=ctx.invoked_subcommand != "sql")
    except (ModeError, EncryptionKeyError, BucketError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
