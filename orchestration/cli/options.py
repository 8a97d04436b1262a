"""Options shared by several `talentvault` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.config import data_root

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data root (default: $TALENTVAULT_DATA_DIR, else ./data).")]


def root_of(data_dir: Path | None) -> Path:
    """The data root a `--data-dir` option names, else the configured one."""
    from orchestration.storage.parquet import EncryptionKeyError, check_root

    try:
        root = (data_dir or data_root()).resolve()
        check_root(root)
    except EncryptionKeyError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    return root
