"""The replica bucket as DuckDB sees it: an fsspec filesystem (`tvbucket://<partition>/...`,
registered on a connection) whose files are read with ranged GETs through obstore and, when the
root is encrypted, decrypted chunk by chunk (storage/crypt.py). Read-only; the SQL door names the
files it may open one by one (`assets/catalog/sql_door.py`, `connect_replica`)."""

from __future__ import annotations

from typing import Any

import obstore as obs
from fsspec import AbstractFileSystem

from orchestration.storage import crypt
from orchestration.storage.bucket import Bucket

PROTOCOL = "tvbucket"


class BucketSource:
    """Positional reads of one object (ranged GETs)."""

    def __init__(self, bucket: Bucket, path: str) -> None:
        self.bucket, self.name = bucket, path
        self.size = int(bucket._call(obs.head, bucket.store, path)["size"])

    def pread(self, n: int, offset: int) -> bytes:
        n = min(n, self.size - offset)
        if n <= 0:
            return b""
        return bytes(self.bucket._call(obs.get_range, self.bucket.store, self.name,
                                       start=offset, length=n))

    def close(self) -> None:
        pass


class BucketFileSystem(AbstractFileSystem):
    protocol = (PROTOCOL,)
    root_marker = ""
    cachable = False

    def __init__(self, bucket: Bucket, master: bytes | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket, self.master = bucket, master

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        if path.startswith(f"{PROTOCOL}://"):
            path = path[len(PROTOCOL) + 3:]
        return path.lstrip("/")

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "r" not in mode:
            raise PermissionError(f"{PROTOCOL}: the replica is read-only here")
        source = BucketSource(self.bucket, self._strip_protocol(path))
        if self.master is not None:
            return crypt.Reader(source.name, self.master, source)
        return crypt.PlainReader(source)

    def info(self, path: Any, **kwargs: Any) -> dict[str, Any]:
        name = self._strip_protocol(path)
        try:
            meta = self.bucket._call(obs.head, self.bucket.store, name)
        except FileNotFoundError:
            raise FileNotFoundError(path) from None
        size = int(meta["size"])
        if self.master is not None:
            size = crypt.plaintext_size(size)
        return {"name": name, "size": size, "type": "file", "mtime": meta["last_modified"]}

    def modified(self, path: Any) -> Any:
        return self.info(path)["mtime"]

    def ls(self, path: Any, detail: bool = False, **kwargs: Any) -> Any:
        name = self._strip_protocol(path)
        entries = [self.info(name)] if name.endswith(".parquet") else []
        return entries if detail else [e["name"] for e in entries]
