"""The replica: a second copy of every landed partition, for 3-2-1 backups.

With `TALENTVAULT_REPLICA_DIR` set (a folder on another disk, a NAS mount) or
`TALENTVAULT_REPLICA_URL` (a bucket of another account or region: storage/bucket.py, where a
partition becomes visible by its commit pointer), every partition that lands (a backup, an
identity or sync output, an erasure rewrite) is copied there right after it lands, each file
checked against the manifest, so the replica never holds half a partition either. A partition
retention prunes is removed from the replica too, and an erasure's rewrite replaces the
replica's copy, so a forgotten person is not kept in the replica. `talentvault verify` checks
both copies; `verify --repair` copies a missing or damaged partition back from whichever copy is
healthy.

Unset, nothing is copied (the default).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from orchestration.storage.bucket import URL_ENV, Bucket
from orchestration.storage.fsync import fsync
from orchestration.storage.swap import copy_in

ENV_VAR = "TALENTVAULT_REPLICA_DIR"


class ReplicaError(RuntimeError):
    pass


def replica_root() -> Path | None:
    """The replica's root folder, or None when there is no folder replica."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value and os.environ.get(URL_ENV, "").strip():
        raise ReplicaError(f"both {ENV_VAR} and {URL_ENV} are set: keep one replica target")
    return Path(value).expanduser().resolve() if value else None


def replica_bucket() -> Bucket | None:
    """The replica bucket, or None when there is no bucket replica."""
    value = os.environ.get(URL_ENV, "").strip()
    if not value:
        return None
    replica_root()  # refuses both targets at once
    return Bucket(value)


def describe() -> str | None:
    """Where the replica is (a folder or a bucket URL), or None."""
    root = replica_root()
    return str(root) if root else os.environ.get(URL_ENV, "").strip() or None


def rel_of(root: Path, folder: Path) -> Path:
    """A partition's place below its data root: <source>/<entity>/snapshot_date=D."""
    return Path(folder).resolve().relative_to(Path(root).resolve())


def copy_partition(src: Path, dst: Path) -> dict[str, Any]:
    """Copy partition folder `src` to `dst` atomically, every file checked against `src`'s
    manifest on arrival; replaces an older `dst`. Returns the manifest."""
    manifest = json.loads((src / "_manifest.json").read_text())
    copy_in(dst, manifest, lambda name, target: shutil.copyfile(src / name, target),
            lambda name: ReplicaError(f"{src / name}: the copy does not match the manifest's "
                                      "sha256 (the source is damaged: run `talentvault "
                                      "verify`)"))
    return manifest


def replicate(final: Path, *, erasure: bool = False) -> Path | None:
    """Copy a partition that just landed (at `final`, below its data root) to the replica."""
    root = Path(final).resolve().parents[2]
    bucket = replica_bucket()
    if bucket is not None:
        bucket.put_partition(Path(final), str(rel_of(root, final)), erasure=erasure)
        return None
    replica = replica_root()
    if replica is None:
        return None
    if replica == root:
        raise ReplicaError(f"{ENV_VAR} is the data root itself ({root}): point it at another "
                           "disk or mount")
    dst = replica / rel_of(root, final)
    copy_partition(Path(final), dst)
    return dst


def remove(final: Path) -> None:
    """Remove a pruned partition's replica copy (retention)."""
    bucket = replica_bucket()
    if bucket is not None:
        bucket.remove(str(rel_of(Path(final).resolve().parents[2], final)))
        return
    replica = replica_root()
    if replica is None:
        return
    dst = replica / rel_of(Path(final).resolve().parents[2], final)
    if dst.exists():
        trash = dst.parent / f".removed-{dst.name}-{uuid.uuid4().hex[:8]}"
        os.rename(dst, trash)
        fsync(dst.parent)
        shutil.rmtree(trash, ignore_errors=True)
