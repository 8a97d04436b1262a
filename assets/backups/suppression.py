"""The suppression list: people who asked to be forgotten, kept as salted hashes only.

    <root>/state/suppression.parquet   (hash VARCHAR, kind VARCHAR, added_at TIMESTAMPTZ)
    <root>/state/suppression.salt      32 random bytes (hex), mode 0600, created on first use

An identifier is stored as `sha256(salt ":" kind ":" value)` (hex): the list proves "this
person was erased" for a value you already hold, and tells nothing to anyone reading it without
the salt. Kinds:

- `email`: a normalized address (lower-cased, NFKC, IDNA domain; `assets/identity/emails.py`);
- `greenhouse_candidate`, `greenhouse_application`, `keap_contact`, `highlevel_contact`: a source
  record id as text.

Who consults it: extraction (records of a suppressed person are not backed up again), the Keap
sync's desired state (never pushed again) and restores (never resurrected). In SQL:

    suppression.register(con, root)
    ... WHERE tv_identity_hash('email', email) NOT IN (SELECT hash FROM suppressed_hashes)

Writers of the list (`add`, `add_many`) take an exclusive lock and replace the file atomically,
so concurrent processes never lose an entry; adding an entry twice is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration import seals
from orchestration.fsync import fsync as _fsync

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
    value = path.read_text().strip()
    if len(value) != 64:
        raise RuntimeError(f"{path} is damaged (expected 64 hex characters); restore it from a "
                           "backup of the data root: without it the suppression list cannot "
                           "be matched")
    return value


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown suppression kind {kind!r}; expected one of {', '.join(KINDS)}")


def normalize(kind: str, value: object) -> str:
    """The form a value is hashed in: emails normalized as the identity assets do (falling back
    to trimmed lower case for an address the validator rejects), ids as text."""
    text = str(value).strip()
    if kind != "email":
        return text
    from assets.identity.emails import reference_email

    return reference_email(text) or unicodedata.normalize("NFKC", text).strip().lower()


def identity_hash(root: Path, kind: str, value: object, *, normalized: bool = False) -> str:
    """The salted hash of one identifier (`normalized=True`: the value is already normalized)."""
    _check_kind(kind)
    v = str(value) if normalized else normalize(kind, value)
    return hashlib.sha256(f"{salt(root)}:{kind}:{v}".encode()).hexdigest()


def _read(root: Path) -> pa.Table:
    path = list_path(root)
    if not path.exists():
        return SCHEMA.empty_table()
    return pq.read_table(path, schema=SCHEMA)


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


def is_suppressed(root: Path, kind: str, value: object) -> bool:
    """Whether an identifier (email or source id) belongs to an erased person."""
    if not list_path(root).exists():
        return False
    return identity_hash(root, kind, value) in hashes(root)


def add(root: Path, kind: str, value: object) -> bool:
    """Suppress one identifier; returns False when it already was."""
    return add_hashes(root, [(identity_hash(root, kind, value), kind)]) == 1


def add_many(root: Path, items: Iterable[tuple[str, object]]) -> int:
    """Suppress (kind, value) pairs; returns how many were new."""
    return add_hashes(root, [(identity_hash(root, k, v), k) for k, v in items])


def add_hashes(root: Path, items: Iterable[tuple[str, str]]) -> int:
    """Add (hash, kind) pairs under the list's lock (atomic replace, fsynced); returns how many
    were new."""
    items = list(dict.fromkeys(items))
    if not items:
        return 0
    seals.check_key(root)
    with _locked(root, LOCK_FILE, fcntl.LOCK_EX):
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
        pq.write_table(table, tmp, compression="zstd")
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


# -- extraction: what "a record of a suppressed person" is, per backed-up entity ---------------
# (SQL over a partition's rows: each a list of (kind, expression yielding a VARCHAR or a list of
#  VARCHAR)); `email` expressions are raw addresses, normalized before hashing
PERSON_KEYS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("greenhouse", "candidates"): [("greenhouse_candidate", "id"), ("email", "emails")],
    ("greenhouse", "applications"): [("greenhouse_candidate", "candidate_id"),
                                     ("greenhouse_application", "id")],
    ("greenhouse", "offers"): [("greenhouse_candidate", "candidate_id"),
                               ("greenhouse_application", "application_id")],
    ("greenhouse", "application_stages"): [("greenhouse_application", "application_id")],
    ("greenhouse", "interviews"): [("greenhouse_application", "application_id")],
    ("greenhouse", "rejection_details"): [("greenhouse_application", "application_id")],
    ("keap", "contacts"): [("keap_contact", "id"), ("email", "emails")],
    ("highlevel", "contacts"): [("highlevel_contact", "id"), ("email", "[email]")],
    ("highlevel", "opportunities"): [("highlevel_contact", '"contactId"')],
}


def extraction_filter(root: Path, source: str, entity: str):
    """For the partition writer: a function (con, rows) -> SQL predicate keeping the rows that
    are NOT about a suppressed person (None: keep all), where `rows` names the relation of the
    partition's incoming rows; returns None itself for entities without people. The list is read
    when the function is called, i.e. at the partition's finalize, not when the run started."""
    keys = PERSON_KEYS.get((source, entity))
    if not keys:
        return None

    def predicate(con: duckdb.DuckDBPyConnection, rows: str) -> str | None:
        if not list_path(root).exists() or register(con, root) == 0:
            return None
        parts = []
        for kind, expr in keys:
            if kind == "email":
                _suppressed_raw_emails(con, f"SELECT unnest({expr}) AS raw FROM {rows}")
                parts.append(f"list_has_any(coalesce({expr}, []), "
                             f"(SELECT coalesce(list(raw), []) FROM _suppressed_raw_emails))")
            else:
                parts.append(f"({expr} IS NOT NULL AND tv_identity_hash('{kind}', {expr}) IN "
                             f"(SELECT hash FROM suppressed_hashes))")
        where = " OR ".join(parts)
        if (source, entity) == ("greenhouse", "applications"):
            # a new application of a suppressed candidate: suppress its id too, so its stages,
            # interviews and rejection details (which carry only the application id) are
            # dropped as well (applications are backed up before them in a run)
            new = con.execute(f"""
                SELECT DISTINCT tv_identity_hash('greenhouse_application', id) FROM {rows}
                WHERE coalesce({where}, FALSE)
                  AND tv_identity_hash('greenhouse_application', id) NOT IN
                      (SELECT hash FROM suppressed_hashes)""").fetchall()
            add_hashes(root, [(h, "greenhouse_application") for (h,) in new])
        return "NOT coalesce(" + where + ", FALSE)"

    return predicate


def _suppressed_raw_emails(con: duckdb.DuckDBPyConnection, values_sql: str) -> None:
    """TEMP TABLE `_suppressed_raw_emails(raw)`: the raw addresses among `values_sql` (a query
    with a column `raw`) whose normalized form is suppressed. Normalization is the identity
    assets' own (set-based, on distinct values, default rules)."""
    from assets.identity import emails
    from assets.identity.config import NormalizationConfig

    with contextlib.suppress(duckdb.Error):
        emails.register(con)
    emails.normalize_emails(con, values_sql, "_suppression_norm", NormalizationConfig())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _suppressed_raw_emails AS
        SELECT raw FROM _suppression_norm
        WHERE email IS NOT NULL AND tv_identity_hash('email', email) IN
              (SELECT hash FROM suppressed_hashes)
        UNION
        -- an address the validator rejects is matched by its folded form (as `normalize`)
        SELECT raw FROM _suppression_norm
        WHERE email IS NULL AND tv_identity_hash('email', tv_fold(raw)) IN
              (SELECT hash FROM suppressed_hashes)
    """)
    con.execute("DROP TABLE _suppression_norm")


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
