"""SQL straight from the replica bucket (`talentvault sql --from-replica`): the same views as the
SQL door, every row read from the bucket (ranged GETs, decrypted when the root is encrypted), the
session locked to the committed files exactly as the door locks it to local ones.

The catalog is built from the bucket's commit pointers: a temporary index folder holds each
committed partition's manifest and an empty placeholder per file, so the view definitions are
the local ones; each placeholder is then named by its object in the bucket
(`tvbucket://<partition>/_v-<version>/<file>`). What the replica holds is partitions (backups,
identity and sync outputs), so the ledgers and the audit trail are not there to query."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from assets.catalog.sql_door import locked, pinned_statements
from orchestration.storage.bucket import Bucket
from orchestration.storage.bucket_fs import PROTOCOL, BucketFileSystem
from orchestration.storage.parquet import KEY_ENV, EncryptionKeyError, Key
from orchestration.storage.parquet import connect as connect_duckdb


def index_of(bucket: Bucket) -> tuple[Path, dict[str, str]]:
    """The temporary index folder and, for each placeholder path, its object's DuckDB name."""
    index = Path(tempfile.mkdtemp(prefix="talentvault-replica-index-"))
    atexit.register(shutil.rmtree, index, ignore_errors=True)
    names: dict[str, str] = {}
    for rel in bucket.partitions():
        commit = bucket.commit_of(rel)
        if commit is None:   # pruned between the listing and now
            continue
        folder = index / rel
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "_manifest.json").write_text(json.dumps(commit["manifest"]))
        for entry in commit["manifest"]["files"]:
            (folder / entry["file"]).touch()
            names[os.path.join(str(folder), entry["file"])] = \
                f"{PROTOCOL}://{rel}/_v-{commit['version']}/{entry['file']}"
    return index, names


def connect_replica(bucket: Bucket, key: Key | None) -> duckdb.DuckDBPyConnection:
    """A locked session over the bucket's committed partitions (`key`: the root's key, which
    the partitions' manifests name by id)."""
    index, names = index_of(bucket)
    for manifest in index.rglob("_manifest.json"):
        wanted = (json.loads(manifest.read_text()).get("encryption") or {}).get("key_id")
        if wanted and (key is None or key.key_id != wanted):
            raise EncryptionKeyError(
                f"the replica's partitions are encrypted with key id {wanted} and "
                f"{KEY_ENV} is {'another key' if key else 'unset'}: set it to that key")
        if not wanted:
            key = None
        break
    stmts, files = pinned_statements(index, name_of=lambda p: names.get(p, p))
    con = connect_duckdb(key=None, config={"threads": 2, "autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
    con.register_filesystem(BucketFileSystem(bucket, key.raw if key else None))
    # the index's own placeholders are never readable: only the bucket's objects
    return locked(stmts, [f for f in files if f.startswith(f"{PROTOCOL}://")], con)
