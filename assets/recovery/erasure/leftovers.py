"""Leftovers of killed runs under the data root: an erasure swap a crash interrupted is finished,
and staging folders (which may hold personal data) are removed."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from assets.recovery.erasure.scope import SKIP_TOP
from orchestration.storage import seals
from orchestration.storage.fsync import fsync as _fsync

STALE_SECONDS = 15 * 60                     # a staging folder untouched this long is a leftover


def recover_and_clean(root: Path, apply: bool) -> int:
    """Finish an erasure swap a crash interrupted, and remove staging folders of killed runs
    (they may hold personal data); returns how many folders were removed."""
    removed = 0
    now = time.time()
    for d in root.rglob(".*"):
        if not d.is_dir() or any(p in SKIP_TOP for p in d.relative_to(root).parts[:1]):
            continue
        name = d.name
        if name.startswith(".erasing-") and (d / "_manifest.json").exists():
            target = d.parent / name[len(".erasing-"):].rsplit("-", 1)[0]
            if not target.exists():
                if apply:
                    os.rename(d, target)   # the crash fell between the two renames
                    _fsync(target.parent)
                    manifest = json.loads((target / "_manifest.json").read_text())
                    if "seal" in manifest:
                        seals.record_partition(target, manifest, "recovered")
                continue
        stale = name.startswith((".replaced-", ".erasing-")) or (
            name.startswith(".staging-") and _newest_mtime(d) < now - STALE_SECONDS)
        if stale:
            removed += 1
            if apply:
                shutil.rmtree(d, ignore_errors=True)
    return removed


def _newest_mtime(d: Path) -> float:
    times = [d.stat().st_mtime] + [p.stat().st_mtime for p in d.rglob("*") if p.exists()]
    return max(times)
