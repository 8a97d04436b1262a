"""The sync ledger: an append-only record of every write attempt made to Keap.

One row per attempt outcome: which change (change_id, from the changeset partition
`changeset_date`), which contact, which action, the names of the fields written (never their
values), the tag, the outcome (`succeeded`, `failed_retryable`, `failed_permanent`), the HTTP
status and error (no personal values), the attempt number across runs, the run and the time.

Files (under the data root):

    sync/ledger/_wal/<run_id>.jsonl                 write-ahead log of a run in progress:
                                                    one line per outcome, flushed and fsynced
    sync/ledger/run_id=<run_id>/part-00000.parquet  the run's lines, compacted at its end

A run killed mid-way leaves its WAL; the next push compacts it first. Compaction is crash-safe:
the Parquet is written under a temporary name, fsynced and renamed into place, and only then is
the WAL removed; a WAL whose Parquet already exists is a leftover of a compaction that crashed
between the two steps and is simply removed. Readers (`ledger_relation`) see Parquet ∪ the WALs
that have no Parquet yet, so nothing is counted twice and nothing recorded is ever missing.

A running push holds an exclusive lock on its WAL (and on `sync/ledger/.push.lock`), so a WAL is
compacted by another process only once its writer is gone; a second push refuses to start while
one is running (besides Dagster's `keap_push` pool, for pushes started outside Dagster).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from orchestration.storage import parquet, primary
from orchestration.storage.fsync import fsync as _fsync
from orchestration.storage.parquet import duck_path

STATUSES = ("succeeded", "failed_retryable", "failed_permanent")
SCHEMA = pa.schema([
    ("change_id", pa.string()), ("changeset_date", pa.date32()), ("profile_id", pa.int64()),
    ("contact_id", pa.string()), ("action", pa.string()), ("fields", pa.list_(pa.string())),
    ("tag", pa.string()), ("tag_id", pa.string()), ("status", pa.string()),
    ("http_status", pa.int32()), ("error", pa.string()), ("attempt", pa.int32()),
    ("run_id", pa.string()), ("at", pa.timestamp("us", tz="UTC")),
    ("keap_update_time", pa.timestamp("us", tz="UTC")),
])
COLUMNS = tuple(SCHEMA.names)


@dataclass(frozen=True)
class Book:
    """One ledger: its folder under `sync/` and its row schema. The push's is `FORWARD`; the
    reverse sync (Keap -> Greenhouse) keeps its own (assets/sync/reverse/ledger.py) with the
    same files, write-ahead log, compaction and locking."""

    folder: str
    schema: pa.Schema

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)


FORWARD = Book("ledger", SCHEMA)


class PushAlreadyRunning(RuntimeError):
    """Another push holds the ledger lock."""


def ledger_dir(root: Path, book: Book = FORWARD) -> Path:
    return Path(root) / "sync" / book.folder


def wal_dir(root: Path, book: Book = FORWARD) -> Path:
    return ledger_dir(root, book) / "_wal"


def parquet_path(root: Path, run_id: str, book: Book = FORWARD) -> Path:
    return ledger_dir(root, book) / f"run_id={run_id}" / "part-00000.parquet"


def parquet_glob(root: Path, book: Book = FORWARD) -> str:
    return str(ledger_dir(root, book) / "run_id=*" / "*.parquet")


# An empty file kept in the WAL folder so that the SQL catalog's `sync.ledger` view can read
# `_wal/*.jsonl` with a glob that always matches something (DuckDB refuses a glob matching no
# file, and WALs come and go). It is not a run's WAL: skipped by compaction and by readers.
WAL_PLACEHOLDER = ".empty.jsonl"


def wal_placeholder(root: Path, book: Book = FORWARD) -> Path:
    return wal_dir(root, book) / WAL_PLACEHOLDER


def ensure_wal_dir(root: Path, book: Book = FORWARD) -> Path:
    """The WAL folder, with its placeholder (see `WAL_PLACEHOLDER`)."""
    folder = wal_dir(root, book)
    folder.mkdir(parents=True, exist_ok=True)
    placeholder = folder / WAL_PLACEHOLDER
    if not placeholder.exists():
        placeholder.touch()
    return folder


def run_wals(root: Path, book: Book = FORWARD) -> list[Path]:
    """The write-ahead logs of runs (not the placeholder), sorted by name."""
    folder = wal_dir(root, book)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.jsonl") if not p.name.startswith("."))


def _safe_run_id(run_id: str) -> str:
    if not run_id or any(c in run_id for c in "/\\\0") or run_id.startswith("."):
        raise ValueError(f"run id {run_id!r} cannot name a ledger file: use letters, digits, -")
    return run_id


def _ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _row(raw: dict[str, Any], book: Book = FORWARD) -> dict[str, Any]:
    """A WAL line as a typed ledger row (dates and times parsed by the book's schema)."""
    row = {k: raw.get(k) for k in book.columns}
    for f in book.schema:
        value = row[f.name]
        if pa.types.is_date(f.type) and isinstance(value, str):
            row[f.name] = date.fromisoformat(value)
        elif pa.types.is_timestamp(f.type):
            row[f.name] = _ts(value)
    return row


def read_wal(path: Path, book: Book = FORWARD) -> list[dict[str, Any]]:
    """The complete lines of a WAL (a line cut short by a kill is not an outcome: dropped)."""
    return [row for chunk in iter_wal(path, book=book) for row in chunk]


def iter_wal(path: Path, chunk: int = 10_000, book: Book = FORWARD
             ) -> Iterator[list[dict[str, Any]]]:
    """The complete lines of a WAL, `chunk` rows at a time (compaction of a big run never holds
    the whole run in Python)."""
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # torn last line of a killed writer
            try:
                rows.append(_row(json.loads(line), book))
            except (json.JSONDecodeError, ValueError):
                continue
            if len(rows) >= chunk:
                yield rows
                rows = []
    if rows:
        yield rows


def _table(rows: Iterable[dict[str, Any]], book: Book = FORWARD) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=book.schema)


# -- writing ---------------------------------------------------------------------------------------
class LedgerWriter:
    """The WAL of one push run. `append()` is thread-safe; each line is on disk (fsynced) when it
    returns, so a SIGKILL loses at most the outcome being written."""

    def __init__(self, root: Path, run_id: str, book: Book = FORWARD):
        self.root = Path(root)
        self.book = book
        self.run_id = _safe_run_id(run_id)
        self.path = wal_dir(self.root, book) / f"{self.run_id}.jsonl"
        self._lock = threading.Lock()
        self._file: Any = None
        self.lines = 0

    def _open(self) -> None:
        if parquet_path(self.root, self.run_id, self.book).exists():
            raise ValueError(f"run {self.run_id} already has a compacted ledger; a push run id "
                             "is used once")
        ensure_wal_dir(self.root, self.book)
        self._file = open(self.path, "ab")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync(self.path.parent)

    def append(self, **values: Any) -> dict[str, Any]:
        row = {k: values.get(k) for k in self.book.columns}
        if row["status"] not in STATUSES:
            raise ValueError(f"ledger status must be one of {STATUSES}, got {row['status']!r}")
        row["run_id"] = self.run_id
        row["at"] = row["at"] or datetime.now(UTC)
        line = (json.dumps(row, default=_json_default, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._file is None:
                self._open()
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.lines += 1
        return row

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()  # releases the lock
                self._file = None

    def compact(self) -> Path | None:
        """Close the WAL and turn it into the run's Parquet file (None when nothing was written)."""
        self.close()
        if not self.path.exists():
            return None
        return compact_wal(self.root, self.path, self.book)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the ledger")


def compact_wal(root: Path, wal: Path, book: Book = FORWARD) -> Path | None:
    """Write a WAL's rows as `run_id=<run>/part-00000.parquet` (atomically), then remove it."""
    run_id = wal.stem
    final = parquet_path(root, run_id, book)
    if final.exists():  # a compaction that crashed after the rename: the Parquet is complete
        wal.unlink(missing_ok=True)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".part-00000.{uuid.uuid4().hex[:8]}.tmp"
    written = 0
    with parquet.writer(tmp, book.schema) as out:
        for rows in iter_wal(wal, book=book):
            out.write_table(_table(rows, book))
            written += len(rows)
    if not written:  # nothing complete in it: no Parquet file, no empty run folder
        tmp.unlink(missing_ok=True)
        if not any(final.parent.iterdir()):
            final.parent.rmdir()
        wal.unlink(missing_ok=True)
        return None
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o444)
    os.replace(tmp, final)
    _fsync(final.parent)
    wal.unlink()
    _fsync(wal.parent)
    primary.sync_up(root)   # a bucket primary: the run's ledger goes up at once
    return final


def compact_abandoned(root: Path, book: Book = FORWARD) -> list[str]:
    """Compact the WALs of runs that are no longer running (killed or crashed); returns their
    run ids. A WAL still locked by its writer is left alone."""
    done: list[str] = []
    for wal in run_wals(root, book):
        try:
            f = open(wal, "rb")
        except FileNotFoundError:
            continue
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its run is alive
            compact_wal(root, wal, book)
            done.append(wal.stem)
    for tmp in ledger_dir(root, book).glob("run_id=*/.part-*.tmp"):
        tmp.unlink(missing_ok=True)  # a compaction killed before its rename
    return done


class PushLock:
    """One push at a time per data root (a file lock the OS drops when the process dies)."""

    def __init__(self, root: Path, book: Book = FORWARD):
        self.path = ledger_dir(root, book) / ".push.lock"
        self._file: Any = None

    def __enter__(self) -> PushLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise PushAlreadyRunning(
                f"another Keap push is running on {self.path.parent} (it holds {self.path.name});"
                " wait for it to finish") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


# -- reading ---------------------------------------------------------------------------------------
def ledger_relation(con: duckdb.DuckDBPyConnection, root: Path, name: str = "ledger",
                    book: Book = FORWARD) -> duckdb.DuckDBPyRelation:
    """Register a view `name` (default `ledger`) in `con`: every compacted run plus the WALs not
    compacted yet (a run in progress, or one that was killed). Returns the relation."""
    root = Path(root)
    compacted = {p.parent.name.split("=", 1)[1]
                 for p in ledger_dir(root, book).glob("run_id=*/part-00000.parquet")}
    wal_rows: list[dict[str, Any]] = []
    for wal in run_wals(root, book):
        if wal.stem not in compacted:
            try:
                wal_rows += read_wal(wal, book)
            except FileNotFoundError:  # compacted meanwhile: its Parquet is picked up below
                compacted.add(wal.stem)
    wal_table = _table(wal_rows, book)
    table_name = f"_{name}_wal"
    con.register(table_name, wal_table)
    files = sorted(str(p) for p in ledger_dir(root, book).glob("run_id=*/part-00000.parquet"))
    cols = ", ".join(f'"{c}"' for c in book.columns)
    if files:
        listed = ", ".join(f"'{duck_path(f)}'" for f in files)
        sql = (f"SELECT {cols} FROM read_parquet([{listed}], hive_partitioning = false) "
               f"UNION ALL SELECT {cols} FROM {table_name}")
    else:
        sql = f"SELECT {cols} FROM {table_name}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
    return con.sql(f"SELECT * FROM {name}")


def latest_status_sql(source: str = "ledger") -> str:
    """Each change's latest attempt (highest attempt number, then latest time)."""
    return (f"SELECT * FROM {source} QUALIFY row_number() OVER "
            "(PARTITION BY change_id ORDER BY attempt DESC, \"at\" DESC) = 1")


def succeeded_change_ids(con: duckdb.DuckDBPyConnection, root: Path) -> set[str]:
    """Change ids written successfully by any run."""
    ledger_relation(con, root)
    return {r[0] for r in con.execute(
        "SELECT DISTINCT change_id FROM ledger WHERE status = 'succeeded'").fetchall()}


def dead_letter(con: duckdb.DuckDBPyConnection, root: Path) -> duckdb.DuckDBPyRelation:
    """Changes whose latest attempt failed permanently (not retried until their input changes),
    with the reason."""
    ledger_relation(con, root)
    return con.sql(f"SELECT * FROM ({latest_status_sql()}) WHERE status = 'failed_permanent' "
                   "AND change_id NOT IN (SELECT change_id FROM ledger WHERE status = "
                   "'succeeded')")


def attempts_so_far(con: duckdb.DuckDBPyConnection, root: Path) -> dict[str, int]:
    """Highest attempt number recorded per change id (for numbering the next attempt)."""
    ledger_relation(con, root)
    return dict(con.execute(
        "SELECT change_id, max(attempt) FROM ledger GROUP BY change_id").fetchall())
