"""The one door for Parquet bytes: every file the product writes or reads goes through here, so
encryption at rest is one setting (`TALENTVAULT_ENCRYPTION_KEY`) rather than a rule each writer
must remember.

With a key, every Parquet file is encrypted whole (storage/crypt.py: chunked AES-256-GCM, a key
per file derived from the operator's key): DuckDB reads and writes it through the `tvcrypt://`
filesystem registered on each connection (`connect`), so SQL names a file by `duck_path(path)`;
pyarrow reads and writes it through `open_file` / `writer`. Without a key, paths and files are
plain, as before. (Why not Parquet modular encryption: see crypt.py.)

A data root is either wholly plaintext or wholly under one key: `<root>/_encryption.json` names
the key by id (never the key). `check_root` turns a missing or wrong key, or a key set over an
unencrypted root, into one clear error naming the setting; `talentvault encryption rotate` moves
a root from one key (or none) to another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.storage import crypt

KEY_ENV = "TALENTVAULT_ENCRYPTION_KEY"
OLD_KEY_ENV = "TALENTVAULT_ENCRYPTION_KEY_OLD"  # only `encryption rotate` reads it
MARKER = "_encryption.json"


class EncryptionKeyError(ValueError):
    """The key setting does not fit the data (the message names the setting and the fix)."""


@dataclass(frozen=True)
class Key:
    raw: bytes

    @property
    def key_id(self) -> str:
        """Names the key without revealing it (written in the root's marker and manifests)."""
        return crypt.key_id(self.raw).hex()

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode()


def parse_key(value: str | None, setting: str = KEY_ENV) -> Key | None:
    """A base64 AES key (16, 24 or 32 bytes) from a setting's value; None when unset."""
    if not value:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(
            f"{setting} is not base64: set it to 32 random bytes in base64, e.g. the output of "
            "`python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\"`"
        ) from None
    if len(raw) not in (16, 24, 32):
        raise EncryptionKeyError(f"{setting} decodes to {len(raw)} bytes: an AES key is 16, 24 "
                                 "or 32 bytes (32 recommended), base64-encoded")
    return Key(raw)


def current_key() -> Key | None:
    return parse_key(os.environ.get(KEY_ENV))


KeyArg = Key | None | EllipsisType   # `...` (the default): the key in the environment


def _resolve(key: KeyArg) -> Key | None:
    return current_key() if key is ... else key


# -- DuckDB -------------------------------------------------------------------------------------
def connect(database: str = ":memory:", *, key: KeyArg = ..., **kwargs: Any,
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read and write this root's files (`duck_path`)."""
    return register(duckdb.connect(database, **kwargs), key)


def register(con: duckdb.DuckDBPyConnection, key: KeyArg = ...) -> duckdb.DuckDBPyConnection:
    key = _resolve(key)
    if key is not None and crypt.PROTOCOL not in con.list_filesystems():
        con.register_filesystem(crypt.CryptFileSystem(key.raw))
    return con


def duck_path(path: Path | str, key: KeyArg = ...) -> str:
    """How DuckDB names `path` (a file or a glob, absolute): `tvcrypt://` + path with a key."""
    key = _resolve(key)
    return f"{crypt.PROTOCOL}://{path}" if key is not None else str(path)


def local_path(name: str) -> str:
    """The file a DuckDB name (`duck_path`) stands for."""
    prefix = f"{crypt.PROTOCOL}://"
    return name[len(prefix):] if name.startswith(prefix) else name


def write_query(con: duckdb.DuckDBPyConnection, query: str, path: Path | str, *,
                key: KeyArg = ...) -> None:
    """Write the result of `query` as one zstd Parquet file (DuckDB's COPY, streamed). Level 1:
    on the identity profiles it writes files no larger than the default level 3 in ~20 % less
    time (docs/identity.md, "Performance")."""
    key = _resolve(key)
    register(con, key)
    con.execute(f"COPY ({query}) TO '{duck_path(path, key)}' "
                "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)")


# -- pyarrow ------------------------------------------------------------------------------------
class _Writer(pq.ParquetWriter):
    """A ParquetWriter that also closes the encrypting sink it was given."""

    def __init__(self, sink: Any, schema: pa.Schema, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(sink, schema, **kwargs)

    def close(self) -> None:
        super().close()
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def writer(path: Path | str, schema: pa.Schema, *, key: KeyArg = ...) -> pq.ParquetWriter:
    key = _resolve(key)
    if key is None:
        return pq.ParquetWriter(path, schema, compression="zstd")
    return _Writer(crypt.Writer(str(path), key.raw), schema, compression="zstd")


def write_table(table: pa.Table, path: Path | str, *, key: KeyArg = ...) -> None:
    with writer(path, table.schema, key=key) as out:
        out.write_table(table)


def _source(path: Path | str, key: Key | None) -> Any:
    if key is None:
        return str(path)
    if not crypt.is_encrypted(path):
        raise EncryptionKeyError(f"{path} is not encrypted but {KEY_ENV} is set: run "
                                 "`talentvault encryption rotate` to encrypt the data root")
    return crypt.Reader(str(path), key.raw)


def open_file(path: Path | str, *, key: KeyArg = ...) -> pq.ParquetFile:
    key = _resolve(key)
    if key is None and crypt.is_encrypted(path):
        raise EncryptionKeyError(f"{path} is encrypted and {KEY_ENV} is unset: set it to the "
                                 "data root's key")
    try:
        return pq.ParquetFile(_source(path, key))
    except crypt.DecryptionError as e:
        raise EncryptionKeyError(f"{e}: set {KEY_ENV} to the key this data root is encrypted "
                                 "with") from None


def read_table(path: Path | str, *, key: KeyArg = ...,
               schema: pa.Schema | None = None) -> pa.Table:
    table = open_file(path, key=key).read()
    return table.cast(schema) if schema is not None else table


def num_rows(path: Path | str) -> int:
    return open_file(path).metadata.num_rows


def file_key(path: Path | str, keys: list[Key]) -> Key | None | bool:
    """Which of `keys` the file is under: the Key, None for a plaintext file, False for none."""
    if not crypt.is_encrypted(path):
        return None
    for k in keys:
        try:
            crypt.Reader(str(path), k.raw).close()
            return k
        except crypt.DecryptionError:
            continue
    return False


# -- the root's marker --------------------------------------------------------------------------
def marker(root: Path) -> dict[str, Any] | None:
    m = Path(root) / MARKER
    return json.loads(m.read_text()) if m.exists() else None


def write_marker(root: Path, key: Key | None, **extra: Any) -> None:
    m = Path(root) / MARKER
    if key is None and not extra:
        m.unlink(missing_ok=True)
    else:
        tmp = m.with_suffix(".tmp")
        tmp.write_text(json.dumps({"alg": crypt.ALG,
                                   "key_id": key.key_id if key else None, **extra}, indent=2))
        os.replace(tmp, m)
    check_root.cache_clear()


def check_root(root: Path) -> Key | None:
    """The key to use for `root`, after making sure it fits: refuses a missing or wrong key for
    an encrypted root, and a key over a root that already holds unencrypted Parquet. A fresh root
    (no Parquet yet) with a key gets the marker. Returns the current key (None: plaintext)."""
    return _check(Path(root).resolve(), os.environ.get(KEY_ENV, ""),
                  os.environ.get(OLD_KEY_ENV, ""))


@functools.lru_cache(maxsize=64)
def _check(root: Path, key_value: str, old_value: str) -> Key | None:
    key = parse_key(key_value)
    m = marker(root)
    if m and m.get("rotating_from"):
        # only the rotation itself (both keys in its environment) may touch the root meanwhile
        old = parse_key(old_value, OLD_KEY_ENV)
        if (old.key_id if old else "plaintext") == m["rotating_from"] and (
                (key.key_id if key else None) == m.get("key_id")):
            return key
        raise EncryptionKeyError(f"{root} is half-way through a key rotation: run `talentvault "
                                 f"encryption rotate` again with {KEY_ENV} and {OLD_KEY_ENV}")
    if m and m.get("key_id"):
        if key is None:
            raise EncryptionKeyError(f"{root} is encrypted (key id {m['key_id']}) and {KEY_ENV} "
                                     "is unset: set it to that key in this process's environment")
        if key.key_id != m["key_id"]:
            raise EncryptionKeyError(f"{root} is encrypted with key id {m['key_id']} and "
                                     f"{KEY_ENV} is another key (id {key.key_id}): set it to "
                                     "that key, or rotate with `talentvault encryption rotate`")
        return key
    if key is not None:
        if has_parquet(root):
            raise EncryptionKeyError(f"{KEY_ENV} is set but {root} holds unencrypted backups: "
                                     "run `talentvault encryption rotate` to encrypt them first")
        root.mkdir(parents=True, exist_ok=True)
        write_marker(root, key)
    return key


check_root.cache_clear = _check.cache_clear  # type: ignore[attr-defined]


def has_parquet(root: Path) -> bool:
    return next(iter_parquet(root), None) is not None


def iter_parquet(root: Path):
    """Every Parquet file under `root` the product keeps (not staging, trash or spill)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".parquet") and not name.startswith("."):
                yield Path(dirpath) / name
