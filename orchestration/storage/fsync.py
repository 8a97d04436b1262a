"""Durability: flush a file's or a folder's entry to disk (after a write, a rename or an unlink)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync(path: Path | str) -> None:
    """fsync a file or a directory (opened read-only: both can be, on POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
