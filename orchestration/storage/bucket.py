"""An object-store replica (`TALENTVAULT_REPLICA_URL`, e.g. `s3://bucket/talentvault`): the
second copy of every landed partition in a bucket of another account or region, through obstore
(S3 and S3-compatible stores; GCS and Azure URLs work the same way).

An object store has no rename, so a partition becomes visible by its commit pointer:

    <prefix>/<source>/<entity>/snapshot_date=D/_v-<version>/part-00000.parquet ...
    <prefix>/<source>/<entity>/snapshot_date=D/_commit.json   {version, manifest, committed_at}

The files are uploaded under a fresh version prefix, each checked against the manifest's sha256
before upload; `_commit.json` (one PUT, atomic) is written last and names the version; readers go
through it and never see half a partition. A re-run (or an erasure rewrite, a key rotation)
commits a new version, then deletes the versions the pointer no longer names, so a forgotten
person's bytes leave the bucket with the rewrite. Versions left by a crashed upload are deleted
by the next commit of that partition and by `verify --repair` once they are older than an hour
(an upload still running elsewhere is never touched); an erasure's commit deletes them at once.

Credentials and endpoint come from the standard settings of the store (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP` for a local S3 server;
`GOOGLE_*`, `AZURE_*`), never from a file here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import obstore as obs
from obstore.store import from_url

from orchestration.storage.files import sha256_file
from orchestration.storage.swap import copy_in
from orchestration.times import iso

URL_ENV = "TALENTVAULT_REPLICA_URL"
COMMIT = "_commit.json"
GRACE = timedelta(hours=1)   # a version this young may be an upload still under way


class BucketError(RuntimeError):
    """The bucket cannot be used (the message names the setting to fix)."""


_UNREACHABLE = re.compile(r"error sending request|connect|dns|timed out", re.I)
_REFUSED = re.compile(r"status code: 403|403 Forbidden|InvalidAccessKeyId|SignatureDoesNotMatch|"
                      r"AccessDenied")
_NO_BUCKET = re.compile(r"NoSuchBucket")


def _explain(e: Exception, url: str, setting: str = URL_ENV) -> BucketError:
    """One line naming the setting and what to check (timings in the store's message, such as
    "in 403.1ms", are not status codes: the patterns match the server's words)."""
    text = str(e)
    first = text.split("\n")[0][:300]
    if _UNREACHABLE.search(first) and "status code" not in first:
        hint = "the store is unreachable: check AWS_ENDPOINT / the network"
    elif _REFUSED.search(text):
        hint = "the credentials were refused: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    elif _NO_BUCKET.search(text):
        hint = "the bucket does not exist: create it, or fix the bucket name in the URL"
    else:
        hint = first
    return BucketError(f"{setting}={url}: {hint}")


class Bucket:
    """One bucket (prefix included): the replica, or the primary (storage/primary.py);
    `setting` is the environment variable its errors name."""

    def __init__(self, url: str, setting: str = URL_ENV) -> None:
        self.url = url.rstrip("/")
        self.setting = setting
        try:
            # client options replace the environment's: carry AWS_ALLOW_HTTP over by hand
            options = {"timeout": "120s", "connect_timeout": "10s",
                       "allow_http": os.environ.get("AWS_ALLOW_HTTP", "").lower() == "true"}
            self.store = from_url(self.url, client_options=options)
        except Exception as e:  # noqa: BLE001 - obstore raises several kinds for a bad URL
            raise BucketError(f"{setting}={url} is not an object-store URL obstore "
                              "understands (s3://bucket/prefix, gs://..., az://...): "
                              f"{e}") from None

    # -- reading --------------------------------------------------------------------------------
    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as e:  # noqa: BLE001 - every store error becomes one clear line
            raise _explain(e, self.url, self.setting) from None

    def _list(self, prefix: str | None = None):
        """Object metadata under `prefix` (whole path segments), errors made clear."""
        def run() -> list[dict[str, Any]]:
            return [meta for batch in obs.list(self.store, prefix=prefix, chunk_size=1000)
                    for meta in batch]
        return self._call(run)

    def commit_of(self, rel: str) -> dict[str, Any] | None:
        try:
            data = self._call(lambda: bytes(obs.get(self.store, f"{rel}/{COMMIT}").bytes()))
        except FileNotFoundError:
            return None
        return json.loads(data)

    def partitions(self) -> list[str]:
        """Every committed partition, as `<source>/<entity>/snapshot_date=D`."""
        return sorted(meta["path"][:-len(COMMIT) - 1] for meta in self._list()
                      if meta["path"].endswith(f"/{COMMIT}"))

    def file_sha256(self, rel: str, version: str, name: str) -> str | None:
        def run() -> str:
            digest = hashlib.sha256()
            for chunk in obs.get(self.store, f"{rel}/_v-{version}/{name}"):
                digest.update(chunk)
            return digest.hexdigest()
        try:
            return self._call(run)
        except FileNotFoundError:
            return None

    # -- writing --------------------------------------------------------------------------------
    def put_partition(self, folder: Path, rel: str, *, erasure: bool = False) -> dict[str, Any]:
        """Upload a landed partition as a new version, commit it, drop older versions."""
        version, manifest = self.upload_version(folder, rel)
        previous = self.commit_of(rel)
        commit = self.commit_version(rel, version, manifest)
        self.drop_previous(rel, previous, version, erasure=erasure)
        return commit

    def upload_version(self, folder: Path, rel: str) -> tuple[str, dict[str, Any]]:
        """Upload `folder`'s files (checked against its manifest) under a fresh version prefix,
        invisible until committed. Returns (version, manifest)."""
        manifest = json.loads((folder / "_manifest.json").read_text())
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        for entry in manifest["files"]:
            src = folder / entry["file"]
            if sha256_file(src) != entry.get("sha256"):
                raise BucketError(f"{src}: does not match its manifest (run `talentvault "
                                  f"verify`); not uploaded to {self.url}")
            self._call(obs.put, self.store, f"{rel}/_v-{version}/{entry['file']}", src)
        return version, manifest

    def commit_version(self, rel: str, version: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Make an uploaded version the partition's visible one (one PUT of the pointer)."""
        commit = {"version": version, "manifest": manifest, "committed_at": iso(datetime.now(UTC))}
        self._call(obs.put, self.store, f"{rel}/{COMMIT}", json.dumps(commit, indent=2).encode())
        return commit

    def drop_previous(self, rel: str, previous: dict[str, Any] | None, version: str, *,
                      erasure: bool = False) -> None:
        """After a commit: delete the version the pointer named before (at once) and other
        versions older than the grace (a crashed upload; a younger one may be another process's
        upload still under way). An erasure's rewrite deletes every other version at once: a
        forgotten person's bytes must not wait."""
        if previous is not None and previous["version"] != version:
            self._call(obs.delete, self.store, [m["path"] for m in self._list(
                f"{rel}/_v-{previous['version']}")])
        self.collect_garbage(rel, keep=version, grace=timedelta(0) if erasure else GRACE)

    def collect_garbage(self, rel: str, keep: str | None, grace: timedelta = GRACE) -> int:
        """Delete the objects of versions other than `keep` older than `grace`."""
        cutoff = datetime.now(UTC) - grace
        doomed = []
        # object_store lists by whole path segments: list the partition, keep its versions
        for meta in self._list(rel):
            if not meta["path"].startswith(f"{rel}/_v-"):
                continue
            version = meta["path"][len(rel) + 4:].split("/", 1)[0]
            if version != keep and (grace == timedelta(0) or meta["last_modified"] < cutoff):
                doomed.append(meta["path"])
        if doomed:
            self._call(obs.delete, self.store, doomed)
        return len(doomed)

    def remove(self, rel: str) -> None:
        """A pruned partition: the pointer first (invisible at once), then its files."""
        try:
            self._call(obs.delete, self.store, f"{rel}/{COMMIT}")
        except FileNotFoundError:
            pass
        self.collect_garbage(rel, keep=None, grace=timedelta(0))

    def get_partition(self, rel: str, dst: Path) -> dict[str, Any]:
        """Download a committed partition into `dst` (staged, checked, renamed into place)."""
        commit = self.commit_of(rel)
        if commit is None:
            raise BucketError(f"{self.url}/{rel}: no committed copy in the replica")
        manifest, version = commit["manifest"], commit["version"]

        def fetch(name: str, target: Path) -> None:
            def run() -> None:
                with open(target, "wb") as out:
                    for chunk in obs.get(self.store, f"{rel}/_v-{version}/{name}"):
                        out.write(chunk)
            self._call(run)

        copy_in(dst, manifest, fetch, lambda name: BucketError(
            f"{self.url}/{rel}/{name}: the replica's copy does not match its manifest"))
        return manifest
