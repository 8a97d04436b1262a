"""Replacing a folder with a finished one in a single rename, for the primary and the replica."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def copy_in(dst: Path, manifest: dict[str, Any], fetch: Callable[[str, Path], None],
            damaged: Callable[[str], Exception]) -> None:
    """Copy a partition into `dst` whole: each file `fetch(name, target)`-ed into a staging
    folder beside it and checked against the manifest's sha256 (`damaged(name)` is raised
    otherwise), the manifest written, everything made read-only and durable, then swapped into
    place. The replica's copies and repairs (the primary's landings go through `landing.land`)."""
    from orchestration.storage.files import sha256_file
    from orchestration.storage.fsync import fsync

    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = dst.parent / f".incoming-{dst.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for entry in manifest["files"]:
            target = staging / entry["file"]
            fetch(entry["file"], target)
            if sha256_file(target) != entry.get("sha256"):
                raise damaged(entry["file"])
        (staging / "_manifest.json").write_text(json.dumps(manifest, indent=2))
        for f in staging.iterdir():
            f.chmod(0o444)
            fsync(f)
        fsync(staging)
        swap_into_place(staging, dst)
        fsync(dst.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
