"""The first snapshot partition of an install.

Dagster needs a fixed first partition when the code location loads. It is, in order:
`TALENTVAULT_FIRST_DAY` (YYYY-MM-DD: set it before a first backfill of days before the install);
else the earliest day already backed up under the data root (so it stays put as backups
accumulate, and moves with retention when it prunes the oldest days); else yesterday (UTC), the
day a fresh install's first nightly run backs up. A first run (or one after a gap) is a full
snapshot, so history before the first day is still captured, in that first partition. Kept
apart from orchestration/partitions.py so the demo can settle the day before the partitions are
built.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

FIRST_DAY_ENV = "TALENTVAULT_FIRST_DAY"
BACKUP_SOURCES = ("greenhouse", "keap", "highlevel")
_DAY = re.compile(r"snapshot_date=(\d{4}-\d{2}-\d{2})$")


def first_day(root: Path | None = None, today: date | None = None) -> str:
    """The first snapshot partition (see the module docstring)."""
    configured = os.environ.get(FIRST_DAY_ENV, "").strip()
    if configured:
        try:
            return date.fromisoformat(configured).isoformat()
        except ValueError:
            raise ValueError(f"{FIRST_DAY_ENV}={configured!r} is not a date: set it to the first "
                             "day to back up as YYYY-MM-DD, or unset it") from None
    from orchestration.config import data_root

    backed_up = earliest_backed_up_day(root or data_root())
    if backed_up:
        return backed_up
    return ((today or datetime.now(UTC).date()) - timedelta(days=1)).isoformat()


def earliest_backed_up_day(root: Path) -> str | None:
    days = [m.group(1) for source in BACKUP_SOURCES
            for folder in (root / source).glob("*/snapshot_date=*")
            if (m := _DAY.search(folder.name))]
    return min(days, default=None)
