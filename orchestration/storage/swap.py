"""Replacing a folder with a finished one in a single rename, for the primary and the replica."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def swap_into_place(staging: Path, final: Path) -> None:
    """Rename a finished staging folder into place, replacing an older one (the old
    folder is renamed aside first, then removed). Callers fsync around it (`land` does)."""
    if final.exists():
        old = final.parent / f".replaced-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, final)
