"""Encrypted files at rest: a chunked AES-256-GCM format with random access, and the fsspec
filesystem (`tvcrypt://`) through which DuckDB and pyarrow read and write it.

Why not Parquet modular encryption: DuckDB 2.0 and pyarrow do not read each other's encrypted
list columns ("Computed AES tag differs" one way, "Failed decryption finalization" the other),
and DuckDB writes encrypted Parquet only with its httpfs extension (OpenSSL), which cannot be
installed offline for 2.0. Encrypting whole files below the Parquet layer keeps every reader and
writer unchanged: DuckDB reads `tvcrypt:///abs/path/*.parquet` through a registered fsspec
filesystem, pyarrow gets a file object.

Format (the STREAM construction of online authenticated encryption, as in Tink's streaming AEAD):

    header  = b"TVCRYPT1" | key_id (8 bytes) | salt (16 random bytes) | chunk size (u32, BE)
    file key = HKDF-SHA256(master key, salt, info = b"talentvault-file-v1" | key_id)
    chunk i  = AES-GCM(file key, nonce = i as 11 bytes BE | last-flag byte, aad = header)

Every file has its own key (a fresh salt), so nonces never repeat across files; the last-chunk
flag makes truncation at a chunk boundary fail authentication; any changed byte fails its chunk's
tag. Chunks are independent, so a reader seeks to the footer of a Parquet file without
decrypting what lies before it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import threading
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fsspec.implementations.local import LocalFileSystem

MAGIC = b"TVCRYPT1"
ALG = "tvcrypt1-aes256-gcm-hkdf"    # the format's name in markers and manifests
CHUNK = 1 << 20                      # plaintext bytes per chunk
TAG = 16
HEADER = struct.Struct(">8s8s16sI")  # magic, key id, salt, chunk size
PROTOCOL = "tvcrypt"


class DecryptionError(OSError):
    """A file that does not open with the key, or was changed or cut after it was written."""


def key_id(master: bytes) -> bytes:
    return hashlib.sha256(b"talentvault-file-key-id:" + master).digest()[:8]


def _file_key(master: bytes, kid: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                       info=b"talentvault-file-v1" + kid).derive(master))


def _nonce(i: int, last: bool) -> bytes:
    return i.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def is_encrypted(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def plaintext_size(cipher_size: int, chunk: int = CHUNK) -> int:
    body = cipher_size - HEADER.size
    n = max(1, -(-body // (chunk + TAG)))
    return body - TAG * n


class LocalSource:
    """Positional reads of a local file (thread-safe: pread)."""

    def __init__(self, path: str) -> None:
        self.name = path
        self._fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size

    def pread(self, n: int, offset: int) -> bytes:
        return os.pread(self._fd, n, offset)

    def close(self) -> None:
        os.close(self._fd)


class RandomAccess(io.RawIOBase):
    """A seekable, read-only file over positional reads (`_read_at`). Safe for DuckDB's threads
    sharing one handle: each thread keeps its own position (DuckDB's Python filesystem bridge
    makes a positional read a seek then a read, on the same thread)."""

    size: int

    def __init__(self, source: Any) -> None:
        self._source, self.name = source, source.name
        self._local = threading.local()

    @property
    def _pos(self) -> int:
        return getattr(self._local, "pos", 0)

    @_pos.setter
    def _pos(self, value: int) -> None:
        self._local.pos = value

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _read_at(self, offset: int, n: int) -> bytes:
        return self._source.pread(n, offset)

    def readinto(self, buf: Any) -> int:
        pos = self._pos
        want = max(0, min(len(buf), self.size - pos))
        done = 0
        while done < want:
            piece = self._read_at(pos + done, want - done)
            if not piece:
                break
            buf[done:done + len(piece)] = piece
            done += len(piece)
        self._pos = pos + done
        return done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        buf = bytearray(max(0, min(size, self.size - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n])

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


class PlainReader(RandomAccess):
    """An unencrypted file through the same positional reads."""

    def __init__(self, source: Any) -> None:
        super().__init__(source)
        self.size = source.size


class Reader(RandomAccess):
    """The plaintext of an encrypted file, chunk by chunk (each thread caches its last chunk)."""

    def __init__(self, path: str, master: bytes, source: Any = None) -> None:
        super().__init__(source or LocalSource(path))
        head = self._source.pread(HEADER.size, 0)
        if len(head) < HEADER.size or head[:8] != MAGIC:
            self._source.close()
            raise DecryptionError(f"{path} is not an encrypted talentvault file")
        _, kid, salt, self._chunk = HEADER.unpack(head)
        if kid != key_id(master):
            self._source.close()
            raise DecryptionError(f"{path} was encrypted with another key")
        self._header, self._aead = head, _file_key(master, kid, salt)
        self.size = plaintext_size(self._source.size, self._chunk)
        self._n = max(1, -(-(self.size) // self._chunk))

    def _chunk_at(self, i: int) -> bytes:
        cached = getattr(self._local, "chunk", (-1, b""))
        if cached[0] == i:
            return cached[1]
        data = self._source.pread(self._chunk + TAG, HEADER.size + i * (self._chunk + TAG))
        try:
            plain = self._aead.decrypt(_nonce(i, i == self._n - 1), data, self._header)
        except InvalidTag:
            raise DecryptionError(f"{self.name}: chunk {i} fails authentication "
                                  "(changed, cut short, or another key)") from None
        self._local.chunk = (i, plain)
        return plain

    def _read_at(self, offset: int, n: int) -> bytes:
        i, off = divmod(offset, self._chunk)
        return self._chunk_at(i)[off:off + n]


class Writer(io.RawIOBase):
    """Encrypts what is written, chunk by chunk; `close()` writes the final chunk (durably)."""

    def __init__(self, path: str, master: bytes) -> None:
        self._raw, self.name = open(path, "wb"), path
        kid, salt = key_id(master), os.urandom(16)
        self._header = HEADER.pack(MAGIC, kid, salt, CHUNK)
        self._aead = _file_key(master, kid, salt)
        self._raw.write(self._header)
        self._buf, self._i, self._written = bytearray(), 0, 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        self._buf += data
        self._written += len(data)
        if len(self._buf) > CHUNK:  # keep the last chunk back: only close() knows it is last
            view, at = memoryview(self._buf), 0
            while len(self._buf) - at > CHUNK:
                self._emit(view[at:at + CHUNK], last=False)
                at += CHUNK
            rest = bytes(view[at:])
            view.release()
            self._buf = bytearray(rest)
        return len(data)

    def _emit(self, plain: bytes | memoryview, *, last: bool) -> None:
        self._raw.write(self._aead.encrypt(_nonce(self._i, last), plain, self._header))
        self._i += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buf), last=True)
            self._buf.clear()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
        super().close()


def recrypt(src: str | os.PathLike, dst: str | os.PathLike, src_master: bytes | None,
            dst_master: bytes | None) -> None:
    """The plaintext of `src` (under `src_master`, or plain) written durably to `dst` under
    `dst_master` (or plain), streamed chunk by chunk. Raises DecryptionError for a wrong key."""
    reader = Reader(str(src), src_master) if src_master else open(src, "rb")
    with reader, (Writer(str(dst), dst_master) if dst_master else open(dst, "wb")) as writer:
        shutil.copyfileobj(reader, writer, CHUNK)
        if not dst_master:
            writer.flush()
            os.fsync(writer.fileno())   # (a Writer fsyncs when it closes)


class CryptFileSystem(LocalFileSystem):
    """Local files, encrypted: `tvcrypt:///abs/path` (register it on a DuckDB connection)."""

    protocol = (PROTOCOL,)
    root_marker = "/"
    cachable = False

    def __init__(self, master: bytes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.master = master

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        if path.startswith(f"{PROTOCOL}://"):
            path = path[len(PROTOCOL) + 3:]
        return LocalFileSystem._strip_protocol(path)

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{self._strip_protocol(name)}"

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if "r" in mode:
            return Reader(path, self.master)
        if "w" in mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return Writer(path, self.master)
        raise ValueError(f"{PROTOCOL}: mode {mode!r} is not supported (read or write whole files)")

    def info(self, path: Any, **kwargs: Any) -> dict[str, Any]:
        out = super().info(path, **kwargs)
        if out.get("type") == "file":
            out = {**out, "size": plaintext_size(out["size"])}
        return out

    def ls(self, path: Any, detail: bool = False, **kwargs: Any) -> Any:
        out = super().ls(path, detail=detail, **kwargs)
        if detail:
            return [{**e, "size": plaintext_size(e["size"])} if e.get("type") == "file" else e
                    for e in out]
        return out
