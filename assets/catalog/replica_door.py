"""SQL straight from the replica bucket (`talentvault sql --from-replica`): the same views as the
SQL door, every row read from the bucket (ranged GETs, decrypted when the root is encrypted), the
session locked to the committed files exactly as the door locks it to local ones.

The catalog is built from the bucket's commit pointers: a temporary index folder holds each
committed partition's manifest and an empty placeholder per file, so the view definitions are
the local ones; each placeholder is then named by its object in the bucket
(`tvbucket://<partition>/_v-<version>/<file>`). What the replica holds is partitions (backups,
identity and sync outputs), so the ledgers and the audit trail are not there to query.

A bucket primary (`TALENTVAULT_DATA_DIR=s3://...`) is read the same way by plain `talentvault
sql`, with one addition: the root's records (audit trail, sync and restore ledgers), which the
cache holds up to date, are linked into the index, so every view of the local door is there."""

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
from orchestration.storage.parquet import KEY_ENV, EncryptionKeyError, Key, duck_path
from orchestration.storage.parquet import connect as connect_duckdb

RECORDS = ("audit/events/date=*/*.parquet", "sync/ledger/run_id=*/part-00000.parquet",
           "restore/ledger/run_id=*/part-00000.parquet")


def index_of(bucket: Bucket, records: Path | None = None) -> tuple[Path, dict[str, str]]:
    """The temporary index folder and, for each placeholder path, its object's DuckDB name.
    With `records` (a bucket primary's cache), the index lives inside it and the cache's record
    files are hard-linked in (read as they are, from the cache)."""
    index = Path(tempfile.mkdtemp(prefix=".sql-index-", dir=records))
    atexit.register(shutil.rmtree, index, ignore_errors=True)
    for pattern in RECORDS if records else ():
        for f in records.glob(pattern):
            (index / f.relative_to(records)).parent.mkdir(parents=True, exist_ok=True)
            os.link(f, index / f.relative_to(records))
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


def connect_replica(bucket: Bucket, key: Key | None,
                    records: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A locked session over the bucket's committed partitions (`key`: the root's key, which
    the partitions' manifests name by id); `records`: a bucket primary's cache (see above)."""
    index, names = index_of(bucket, records)
    for manifest in index.rglob("_manifest.json"):
        wanted = (json.loads(manifest.read_text()).get("encryption") or {}).get("key_id")
        if wanted and (key is None or key.key_id != wanted):
            raise EncryptionKeyError(
                f"the replica's partitions are encrypted with key id {wanted} and "
                f"{KEY_ENV} is {'another key' if key else 'unset'}: set it to that key")
        if not wanted:
            key = None
        break
    stmts, files = pinned_statements(index, name_of=lambda p: names.get(p) or duck_path(p, key))
    con = connect_duckdb(key=key, config={"threads": 2, "autoinstall_known_extensions": False,
                                          "autoload_known_extensions": False})
    con.register_filesystem(BucketFileSystem(bucket, key.raw if key else None))
    # the index's own placeholders are never readable: only the bucket's objects (and the
    # linked records)
    placeholders = {duck_path(p, key) for p in names}
    return locked(stmts, [f for f in files if f not in placeholders], con)
