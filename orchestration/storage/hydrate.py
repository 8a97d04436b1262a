"""A bucket primary's cache brought up to the bucket (storage/primary.py has the whole model):
the records first (the bucket's copy wins over one this cache has not changed), then every
partition whose committed manifest differs from the cache's (a pointer whose ETag did not change
since the last look is not even read); a cached partition the bucket no longer holds is dropped
when the seal ledger records it pruned, kept (and reported by `verify`) otherwise.

`config.data_root()` calls `hydrate` at most every `HYDRATE_EVERY` seconds per process, so a
run step, a CLI command and a sensor tick each see what other machines landed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from orchestration.storage import bucket_state, parquet, primary, seals
from orchestration.storage.bucket import COMMIT, Bucket
from orchestration.storage.files import partition_folders, replace_json

HYDRATE_EVERY = 10.0
POINTERS = ".primary-pointers.json"   # in the cache: partition -> pointer ETag last seen

_hydrated: dict[tuple[Path, bool], float] = {}
_lock = threading.Lock()


def hydrate(root: Path, *, force: bool = False, partitions: bool = True) -> dict[str, int]:
    """Bring the cache at `root` up to the primary bucket (see the module docstring); without
    `partitions`, the records only (`talentvault sql` reads partitions from the bucket)."""
    b = primary.bucket_for(root)
    if b is None:
        return {}
    root = Path(root).resolve()
    with _lock:
        last = _hydrated.get((root, partitions), -1e9)
        if not force and time.monotonic() - last < HYDRATE_EVERY:
            return {}
        root.mkdir(parents=True, exist_ok=True)
        pulled = bucket_state.pull_state(root, b, parquet.current_key(), overwrite="clean")
        counts = _partitions(root, b) if partitions else {}
        _hydrated[(root, partitions)] = time.monotonic()
        if partitions:
            _hydrated[(root, False)] = _hydrated[(root, True)]
        return {"records": len(pulled), **counts}


def _partitions(root: Path, b: Bucket) -> dict[str, int]:
    seen_path = root / POINTERS
    seen = json.loads(seen_path.read_text()) if seen_path.exists() else {}
    pointers = {m["path"][:-len(COMMIT) - 1]: m["e_tag"] for m in b._list()
                if m["path"].endswith(f"/{COMMIT}")}
    fetched = dropped = 0
    for rel, etag in sorted(pointers.items()):
        local = root / rel / "_manifest.json"
        if seen.get(rel) == etag and local.exists():
            continue
        commit = b.commit_of(rel)
        if commit is None:
            continue
        current = json.loads(local.read_text()) if local.exists() else None
        if current != commit["manifest"]:
            b.get_partition(rel, root / rel)
            fetched += 1
        seen[rel] = etag
    gone = [f for f in partition_folders(root) if primary.rel_of(root, f) not in pointers]
    if gone:
        latest: dict[str, str] = {}
        entries, _ = seals.read(root)
        for e in entries:
            latest[e.get("target")] = e.get("event")
        for folder in gone:
            if latest.get(primary.rel_of(root, folder)) in seals.REMOVAL_EVENTS:
                trash = folder.parent / f".removed-{folder.name}-{uuid.uuid4().hex[:8]}"
                os.rename(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
                dropped += 1
    replace_json(seen_path, {r: e for r, e in seen.items() if r in pointers})
    return {"partitions": fetched, "dropped": dropped}
