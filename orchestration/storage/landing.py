"""Landing: how any finished partition becomes visible, durably and all at once.

Every writer of a partition (backups, identity and sync outputs, erasure rewrites) writes its
files into a staging folder beside the final one, then calls `land`: seal the manifest, make
the files read-only, fsync files and folders, rename into place (replacing an older partition),
record it in the seal ledger. A reader never sees half a partition; a power cut never leaves a
manifest pointing at empty files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestration.storage import crypt, parquet, primary, replica, seals
from orchestration.storage.fsync import fsync
from orchestration.storage.swap import swap_into_place


def land(staging: Path, final: Path, manifest: dict[str, Any], *, event: str = "landed",
         reason: str | None = None) -> dict[str, Any]:
    """Seal `manifest`, write it beside the files in `staging`, make every file read-only and
    durable (fsync of each file and of the folder before the rename, of the parent after it),
    rename the folder into place and record it in the seal ledger. Returns the sealed manifest.
    Every writer of a partition (backups, identity/sync outputs, erasure) lands through here."""
    root = final.parents[2]
    seals.check_key(root)
    key = parquet.check_root(root)
    if key is not None:  # which key the files are under (rotation skips what is done)
        manifest = {**manifest, "encryption": {"alg": crypt.ALG, "key_id": key.key_id}}
    manifest = seals.sealed(manifest, seals.partition_target(final))
    (staging / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    for f in staging.iterdir():
        f.chmod(0o444)  # landed partitions are not edited in place by anything
        fsync(f)
    fsync(staging)
    # a bucket primary: the files go up first, invisible until the pointer names them
    uploaded = primary.upload(root, staging, final)
    with primary.exclusive(root):  # the bucket's lease, when the primary is a bucket
        previous = None
        if uploaded:
            bucket, rel, version = uploaded
            previous = bucket.commit_of(rel)
            bucket.commit_version(rel, version, manifest)   # landed: visible to every machine
        swap_into_place(staging, final)
        fsync(final.parent)
        seals.record_partition(final, manifest, event, reason)
    if uploaded:   # an erasure's old version holds the person: gone at once
        bucket.drop_previous(rel, previous, version, erasure=event == "erasure")
    replica.replicate(final, erasure=event == "erasure")  # the second copy, when there is one
    return manifest


def record_removed(folder: Path, event: str, reason: str) -> None:
    """A partition removed on purpose (a prune, an out-of-date checkpoint), after its folder
    was renamed out of sight: the seal ledger entry, a bucket primary's pointer deleted with it
    under the bucket's lease (other machines' caches drop their copy when they see both), and
    the replica's copy removed."""
    root = folder.parents[2]
    with primary.exclusive(root):
        bucket = primary.bucket_for(root)
        if bucket is not None:
            bucket.remove(primary.rel_of(root, folder))
        seals.record_removed(folder, event, reason)
    replica.remove(folder)
