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
    return (data_dir or data_root()).resolve()
