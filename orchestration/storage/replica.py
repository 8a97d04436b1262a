"""The replica: a second copy of every landed partition, for 3-2-1 backups.

With `TALENTVAULT_REPLICA_DIR` set (a folder on another disk, a NAS mount; an object-store
replica comes with the storage root as a URL, issue 15), every partition that lands (a backup,
an identity or sync output, an erasure rewrite) is copied there right after it lands: into a
staging folder, each file re-hashed against the manifest, fsynced, then renamed into place, so
the replica never holds half a partition either. A partition retention prunes is removed from
the replica too, and an erasure's rewrite replaces the replica's copy, so a forgotten person is
not kept in the replica. `talentvault verify` checks both copies; `verify --repair` copies a
missing or damaged partition back from whichever copy is healthy.

Unset, nothing is copied (the default).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from orchestration.storage.fsync import fsync
from orchestration.storage.seals import sha256_file
from orchestration.storage.swap import swap_into_place

ENV_VAR = "TALENTVAULT_REPLICA_DIR"


class ReplicaError(RuntimeError):
    pass


def replica_root() -> Path | None:
    """The replica's root folder, or None when there is no replica."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else None


def rel_of(root: Path, folder: Path) -> Path:
    """A partition's place below its data root: <source>/<entity>/snapshot_date=D."""
    return Path(folder).resolve().relative_to(Path(root).resolve())


def copy_partition(src: Path, dst: Path) -> dict[str, Any]:
    """Copy partition folder `src` to `dst` atomically, every file checked against `src`'s
    manifest on arrival; replaces an older `dst`. Returns the manifest."""
    manifest = json.loads((src / "_manifest.json").read_text())
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = dst.parent / f".incoming-{dst.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for entry in manifest["files"]:
            target = staging / entry["file"]
            shutil.copyfile(src / entry["file"], target)
            if sha256_file(target) != entry.get("sha256"):
                raise ReplicaError(f"{src / entry['file']}: the copy does not match the "
                                   "manifest's sha256 (the source is damaged: run "
                                   "`talentvault verify`)")
        shutil.copyfile(src / "_manifest.json", staging / "_manifest.json")
        for f in staging.iterdir():
            f.chmod(0o444)
            fsync(f)
        fsync(staging)
        swap_into_place(staging, dst)
        fsync(dst.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def replicate(final: Path) -> Path | None:
    """Copy a partition that just landed (at `final`, below its data root) to the replica."""
    replica = replica_root()
    if replica is None:
        return None
    root = Path(final).resolve().parents[2]
    if replica == root:
        raise ReplicaError(f"{ENV_VAR} is the data root itself ({root}): point it at another "
                           "disk or mount")
    dst = replica / rel_of(root, final)
    copy_partition(Path(final), dst)
    return dst


def remove(final: Path) -> None:
    """Remove a pruned partition's replica copy (retention)."""
    replica = replica_root()
    if replica is None:
        return
    dst = replica / rel_of(Path(final).resolve().parents[2], final)
    if dst.exists():
        trash = dst.parent / f".removed-{dst.name}-{uuid.uuid4().hex[:8]}"
        os.rename(dst, trash)
        fsync(dst.parent)
        shutil.rmtree(trash, ignore_errors=True)
