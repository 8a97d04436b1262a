"""The suppression list: people who asked to be forgotten, kept as salted hashes only.

    <root>/state/suppression.parquet   (hash VARCHAR, kind VARCHAR, added_at TIMESTAMPTZ)
    <root>/state/suppression.salt      32 random bytes (hex), mode 0600, created on first use

An identifier is stored as `sha256(salt ":" kind ":" value)` (hex): the list proves "this
person was erased" for a value you already hold, and tells nothing to anyone reading it without
the salt. Kinds:

- `email`: a normalized address (lower-cased, NFKC, IDNA domain; `assets/identity/emails.py`);
- `greenhouse_candidate`, `greenhouse_application`, `keap_contact`, `highlevel_contact`: a source
  record id as text.

This module is the list itself (its files, salt, locks, SQL registration); what counts as "the
same person" (normalizing an address before hashing it, which rows of a backup are about a
suppressed person) is the identity room's: `assets/identity/suppressed.py`.

Who consults it: extraction (records of a suppressed person are not backed up again), the Keap
sync's desired state (never pushed again) and restores (never resurrected). In SQL:

    suppression.register(con, root)
    ... WHERE tv_identity_hash('email', email) NOT IN (SELECT hash FROM suppressed_hashes)

Writers of the list (`add_hashes`) take an exclusive lock and replace the file atomically,
so concurrent processes never lose an entry; adding an entry twice is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.storage import parquet, primary, seals
from orchestration.storage.fsync import fsync as _fsync

STATE_DIR = "state"
LIST_FILE = "suppression.parquet"
SALT_FILE = "suppression.salt"
LOCK_FILE = ".suppression.lock"
ERASURE_LOCK = ".erasure.lock"
KINDS = ("email", "greenhouse_candidate", "greenhouse_application", "keap_contact",
         "highlevel_contact")
# the source-id kind of each source's person records
SOURCE_KIND = {"greenhouse": "greenhouse_candidate", "keap": "keap_contact",
               "highlevel": "highlevel_contact"}
SCHEMA = pa.schema([("hash", pa.string()), ("kind", pa.string()),
                    ("added_at", pa.timestamp("us", tz="UTC"))])


def state_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR


def list_path(root: Path) -> Path:
    return state_dir(root) / LIST_FILE


def salt(root: Path) -> str:
    """The installation's salt, created (atomically, mode 0600) on first use. Losing it makes
    the list useless: it is backed up with the data root's `state/` folder."""
    path = state_dir(root) / SALT_FILE
    if not path.exists():
        with primary.exclusive(root):   # a bucket primary: another machine's salt wins
            if not path.exists():
                _create_salt(root, path)
    value = path.read_text().strip()
    if len(value) != 64:
        raise RuntimeError(f"{path} is damaged (expected 64 hex characters); restore it from a "
                           "backup of the data root: without it the suppression list cannot "
                           "be matched")
    return value


def _create_salt(root: Path, path: Path) -> None:
    if list_path(root).exists():
        # a new salt would match no erased person: they would come back silently
        raise RuntimeError(f"{path} is missing while the suppression list exists; restore "
                           "it from a copy of the data root (a new salt would match no "
                           "erased person)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SALT_FILE}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)   # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown suppression kind {kind!r}; expected one of {', '.join(KINDS)}")


def hash_of(root: Path, kind: str, normalized: str) -> str:
    """The salted hash of one identifier already in its normalized form (an email as
    `assets/identity/suppressed.normalize` gives it, a source id as text)."""
    check_kind(kind)
    return hashlib.sha256(f"{salt(root)}:{kind}:{normalized}".encode()).hexdigest()


def _read(root: Path) -> pa.Table:
    path = list_path(root)
    if not path.exists():
        return SCHEMA.empty_table()
    return parquet.read_table(path, schema=SCHEMA)


@contextlib.contextmanager
def _locked(root: Path, name: str, mode: int) -> Iterator[None]:
    path = state_dir(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def hashes(root: Path) -> set[str]:
    return set(_read(root).column("hash").to_pylist())


def add_hashes(root: Path, items: Iterable[tuple[str, str]]) -> int:
    """Add (hash, kind) pairs under the list's lock (atomic replace, fsynced); returns how many
    were new."""
    items = list(dict.fromkeys(items))
    if not items:
        return 0
    seals.check_key(root)
    # a bucket primary: under the bucket's lease, on the latest list (storage/primary.py)
    with primary.exclusive(root), _locked(root, LOCK_FILE, fcntl.LOCK_EX):
        current = _read(root)
        known = set(current.column("hash").to_pylist())
        new = [(h, k) for h, k in items if h not in known]
        if not new:
            return 0
        now = datetime.now(UTC)
        added = pa.table({"hash": [h for h, _ in new], "kind": [k for _, k in new],
                          "added_at": [now] * len(new)}, schema=SCHEMA)
        table = pa.concat_tables([current, added])
        path = list_path(root)
        tmp = path.with_name(f".{LIST_FILE}.{uuid.uuid4().hex[:8]}")
        parquet.write_table(table, tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
        record_seals(root, table.num_rows)
    return len(new)


def record_seals(root: Path, rows: int) -> None:
    """Record the list (and the salt's digest, never the salt) in the seal ledger, so `verify`
    notices the list deleted, replaced or shrunk, or the salt swapped (each would silently let
    erased people back in)."""
    seals.record_state(root, f"{STATE_DIR}/{LIST_FILE}", rows=rows)
    if (state_dir(root) / SALT_FILE).exists():
        seals.record_state(root, f"{STATE_DIR}/{SALT_FILE}")


def register(con: duckdb.DuckDBPyConnection, root: Path) -> int:
    """In `con`: TEMP TABLE `suppressed_hashes(hash, kind)` (empty when nothing is suppressed)
    and MACRO `tv_identity_hash(kind, value)` (value: a normalized email or a source id; any
    type, cast to text). Returns the number of suppressed hashes. Creating the macro creates the
    salt on first use, so hashes computed in SQL and in Python always agree."""
    listed = _read(root).select(["hash", "kind"])   # noqa: F841 (read by DuckDB below)
    con.execute("CREATE OR REPLACE TEMP TABLE suppressed_hashes (hash VARCHAR, kind VARCHAR)")
    con.execute("INSERT INTO suppressed_hashes SELECT hash, kind FROM listed")
    s = salt(root)
    con.execute(f"""CREATE OR REPLACE TEMP MACRO tv_identity_hash(kind, value) AS
                    sha256('{s}:' || kind || ':' || CAST(value AS VARCHAR))""")
    return listed.num_rows


@contextlib.contextmanager
def writing(root: Path) -> Iterator[None]:
    """Held (shared) by a writer from reading the list to landing its files, and (exclusively)
    by an erasure: an extraction finishing during an erasure either lands before the erasure
    rewrites files or reads the updated list."""
    with _locked(root, ERASURE_LOCK, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def erasing(root: Path) -> Iterator[None]:
    with _locked(root, ERASURE_LOCK, fcntl.LOCK_EX):
        yield
