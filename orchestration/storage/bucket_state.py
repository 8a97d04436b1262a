"""The root's own records in the replica bucket, beside the partitions: the erasure list and its
salt, the audit trail, the sync and restore ledgers, restore plans, the seal ledger and the
encryption marker. Without them a primary rebuilt from the bucket would have its backups but not
know whom it erased (the next backup would take them in again), what it pushed or restored.

They are copied to `<prefix>/_state/<path>` when `verify` runs (the daily verify job) and right
after a `forget`, each file one PUT, then `_state/_index.json` (path -> sha256) last. Files that
are not Parquet are encrypted on the way when the root has a key (Parquet files already are).
Never copied: the vendor tokens and webhook secrets under `state/`, the rate budget, locks,
write-ahead logs of running pushes, the catalog (rebuilt). `verify --repair` brings back every
file of the index that the primary lacks; it never overwrites a file the primary has.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
import uuid
from pathlib import Path

import obstore as obs

from orchestration.storage import crypt
from orchestration.storage.bucket import Bucket
from orchestration.storage.files import replace_json, sha256_file
from orchestration.storage.fsync import fsync
from orchestration.storage.parquet import Key

PREFIX = "_state"
INDEX = f"{PREFIX}/_index.json"
KEPT = ("_encryption.json", "audit/events/*/*.parquet", "seals/ledger.jsonl",
        "sync/ledger/run_id=*/*.parquet", "restore/ledger/run_id=*/*.parquet",
        "restore/plans/*/*", "state/suppression.parquet", "state/suppression.salt")


def state_files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and
                       not d.startswith("snapshot_date=") and d != "sandbox"]
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if not name.startswith(".") and any(fnmatch.fnmatch(rel, p) for p in KEPT):
                out.append(rel)
    return sorted(out)


def _index(bucket: Bucket) -> dict[str, dict]:
    try:
        return json.loads(bytes(bucket._call(lambda: obs.get(bucket.store, INDEX).bytes())))
    except FileNotFoundError:
        return {}


def push_state(root: Path, bucket: Bucket, key: Key | None, *, prune: bool = False,
               synced_cache: bool = False) -> int:
    """Upload the state files that changed since the last push; with `prune`, delete the ones
    the primary no longer has (after an erasure). Returns how many objects changed.
    `synced_cache`: `root` is a bucket primary's cache (records what it now holds)."""
    root = Path(root)
    index, changed = _index(bucket), 0
    digest = Digests(root, synced_cache)
    local = {rel: digest(rel) for rel in state_files(root)}
    digest.save(set(local))
    key_id = key.key_id if key else None
    for rel, sha in local.items():
        if index.get(rel, {}).get("sha256") == sha and index[rel].get("key_id") == key_id:
            continue   # (after a key rotation every file goes again, under the new key)
        sealed = key is not None and not rel.endswith((".parquet", "_encryption.json"))
        if sealed:
            with tempfile.TemporaryDirectory() as tmp:
                enc = Path(tmp) / "f"
                crypt.recrypt(root / rel, enc, None, key.raw)
                bucket._call(obs.put, bucket.store, f"{PREFIX}/{rel}", enc)
        else:
            bucket._call(obs.put, bucket.store, f"{PREFIX}/{rel}", root / rel)
        index[rel] = {"sha256": sha, "sealed": sealed, "key_id": key_id}
        changed += 1
    if prune:
        gone = set(index) - set(local)
        if synced_cache:   # only what this cache held and removed (never a record it could
            gone &= set(_synced(root))   # not pull, e.g. one under another key)
        gone = sorted(gone)
        if gone:
            bucket._call(obs.delete, bucket.store, [f"{PREFIX}/{rel}" for rel in gone])
            for rel in gone:
                del index[rel]
            changed += len(gone)
    if changed:
        bucket._call(obs.put, bucket.store, INDEX, json.dumps(index, indent=1).encode())
    if (root / SYNCED).exists() or synced_cache:
        _save_synced(root, {rel: entry["sha256"] for rel, entry in index.items()})
    return changed


SYNCED = ".state-synced.json"   # a bucket primary's cache: path -> sha256 last pulled/pushed
SHAS = ".state-shas.json"       # a bucket primary's cache: path -> [size, mtime_ns, inode, sha]


class Digests:
    """sha256 of the root's record files, re-hashed only when size, mtime or inode changed (a
    bucket primary pushes at every landing: without it each push would re-read every audit
    event; a file replaced by rename has a new inode, an append a new size)."""

    def __init__(self, root: Path, remember: bool) -> None:
        self.root, self.remember = Path(root), remember
        path = self.root / SHAS
        self.known = json.loads(path.read_text()) if remember and path.exists() else {}

    def __call__(self, rel: str) -> str:
        st = os.stat(self.root / rel)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = self.known.get(rel)
        if hit and hit[:3] == stamp:
            return hit[3]
        sha = sha256_file(self.root / rel)
        self.known[rel] = [*stamp, sha]
        return sha

    def save(self, keep: set[str] | None = None) -> None:
        if not self.remember:
            return
        replace_json(self.root / SHAS, {r: v for r, v in self.known.items()
                                        if keep is None or r in keep})


def _synced(root: Path) -> dict[str, str]:
    path = Path(root) / SYNCED
    return json.loads(path.read_text()) if path.exists() else {}


def _save_synced(root: Path, synced: dict[str, str]) -> None:
    replace_json(Path(root) / SYNCED, synced)


def pull_state(root: Path, bucket: Bucket, key: Key | None, *,
               overwrite: bool | str = False) -> list[str]:
    """Download indexed state files (decrypting sealed ones); returns their paths. By default
    only the ones the root lacks (a replica's repair never overwrites). A bucket primary's cache
    takes the bucket's copy over its own: always under the lease (`overwrite=True`); outside it
    (`overwrite="clean"`) only where the cache holds what it last pulled or pushed, never a
    change a writer here has not pushed yet."""
    root, restored = Path(root), []
    synced = _synced(root) if overwrite else {}
    digest = Digests(root, bool(overwrite))
    for rel, entry in sorted(_index(bucket).items()):
        target = root / rel
        if target.exists():
            if not overwrite:
                continue
            here = digest(rel)
            if here == entry.get("sha256"):
                synced[rel] = here
                continue
            if overwrite == "clean" and synced.get(rel) != here:
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.pull")
        with open(tmp, "wb") as out:
            for chunk in bucket._call(lambda r=rel: obs.get(bucket.store, f"{PREFIX}/{r}")):
                out.write(chunk)
        if entry.get("sealed"):
            sealed, tmp = tmp, tmp.with_suffix(".plain")
            try:
                if key is None:
                    raise crypt.DecryptionError("no key")
                crypt.recrypt(sealed, tmp, key.raw, None)
            except crypt.DecryptionError:
                tmp.unlink(missing_ok=True)   # under another key: left for that key
                continue
            finally:
                sealed.unlink()
        if sha256_file(tmp) != entry.get("sha256"):
            tmp.unlink()
            continue
        if rel.startswith("state/"):
            tmp.chmod(0o600)
        fsync(tmp)
        os.replace(tmp, target)
        restored.append(rel)
        synced[rel] = entry["sha256"]
    if overwrite:
        _save_synced(root, synced)
        digest.save()
    return restored
