"""The sandbox world on disk: one SQLite file shared by every process.

Every vendor record is a row of `records`: the record's JSON in the vendor's own shape (`doc`) plus
a few columns the emulated APIs filter, sort and page on. SQLite (WAL mode) lets the server, the
`talentvault sandbox` commands and tests read and write the same world at once, keeps a
million-candidate world on disk instead of in Python objects, and survives restarts.

Deleted records leave `records` (so they vanish from the APIs, as on the real services) and are
kept in `tombstones`, which only the admin endpoints and tests read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.times import iso, parse_ts

__all__ = ["Store", "Row", "iso", "parse_ts", "DEFAULT_START", "DB_NAME"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    source     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    id         TEXT NOT NULL,
    seq        INTEGER NOT NULL,   -- numeric order key: the integer id where ids are numeric
    updated_at TEXT NOT NULL,      -- canonical ISO-8601 UTC with milliseconds, sorts as text
    email      TEXT,               -- lowercased, trimmed primary email (lookups), if any
    parent     TEXT,               -- owning record id (application -> candidate, ...), if any
    doc        TEXT NOT NULL,      -- the record as the vendor's API returns it (JSON)
    PRIMARY KEY (source, entity, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_seq ON records (source, entity, seq);
CREATE INDEX IF NOT EXISTS records_updated ON records (source, entity, updated_at, seq);
CREATE INDEX IF NOT EXISTS records_email ON records (source, entity, email);
-- children of a record in order (`parent = ? ORDER BY seq`): with (parent) alone SQLite walked
-- records_seq over the whole entity instead, a scan per stage move (sandbox tick)
DROP INDEX IF EXISTS records_parent;
CREATE INDEX IF NOT EXISTS records_parent_seq ON records (source, entity, parent, seq);
-- daily life picks records by status from a random seq on (`status = ? AND seq >= ?`): without
-- this, each pick decoded rows until enough matched (1.3 ms a pick on a 200k world)
CREATE INDEX IF NOT EXISTS records_status ON records (source, entity,
                                                      json_extract(doc, '$.status'), seq);

-- secondary lookup keys (every email of a contact, phones, names ...), kept by the vendor modules
CREATE TABLE IF NOT EXISTS lookup (
    source TEXT NOT NULL,
    entity TEXT NOT NULL,
    kind   TEXT NOT NULL,
    key    TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (source, entity, kind, key, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lookup_by_id ON lookup (source, entity, id);

CREATE TABLE IF NOT EXISTS tombstones (
    source      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    id          TEXT NOT NULL,
    deleted_at  TEXT NOT NULL,
    merged_into TEXT,
    doc         TEXT NOT NULL,
    PRIMARY KEY (source, entity, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tokens (
    token      TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    kind       TEXT NOT NULL,      -- access | refresh
    client     TEXT NOT NULL,
    expires_at REAL NOT NULL,      -- real (wall clock) epoch seconds: token lifetimes are real time
    revoked    INTEGER NOT NULL DEFAULT 0,
    extra      TEXT
) WITHOUT ROWID;
"""

DB_NAME = "world.db"
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    source: str
    entity: str
    id: str
    seq: int
    updated_at: str
    email: str | None
    parent: str | None
    doc: dict[str, Any]


def _row(r: sqlite3.Row | tuple) -> Row:
    return Row(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]))


_COLS = "source, entity, id, seq, updated_at, email, parent, doc"


def doc_text(doc: dict[str, Any]) -> str:
    """A doc as the world file keeps it: UTF-8 JSON; a doc holding a lone surrogate (a
    deliberately broken vendor record, which UTF-8 cannot store) with non-ASCII escaped."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:
        text = json.dumps(doc, separators=(",", ":"))
    return text


class Store:
    """A handle on the world file. One per thread: SQLite connections are not shared."""

    def __init__(self, path: Path | str, *, create: bool = True):
        self.path = Path(path)
        if self.path.is_dir() or self.path.suffix != ".db":
            self.path = self.path / DB_NAME
        if not create and not self.path.exists():
            raise FileNotFoundError(
                f"no sandbox world at {self.path}: run `talentvault sandbox init` first"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=60000")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    # -- transactions -----------------------------------------------------------------------
    def transaction(self) -> _Tx:
        """`with store.transaction():` groups writes; nested uses join the outer one."""
        return _Tx(self)

    # -- meta and the simulated clock -------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value if isinstance(value, str) else json.dumps(value)),
        )

    def now(self) -> datetime:
        """The simulated clock: the instant the sandbox world is at."""
        text = self.get_meta("clock")
        return parse_ts(text) if text else DEFAULT_START

    def set_now(self, ts: datetime) -> None:
        self.set_meta("clock", iso(ts))

    def stamp(self) -> datetime:
        """A fresh timestamp for a write made through an API: each write moves the clock 1 ms.

        Two writes never share an update time, so "latest version by update time" is exact.
        """
        with self.transaction():
            ts = self.now() + timedelta(milliseconds=1)
            self.set_now(ts)
        return ts

    def next_id(self, source: str, entity: str, start: int = 1) -> int:
        """Allocate the next integer id of an entity (persisted, so ids never repeat)."""
        key = f"next_id:{source}:{entity}"
        with self.transaction():
            current = int(self.get_meta(key, str(start)))
            self.set_meta(key, str(current + 1))
        return current

    def reserve_ids(self, source: str, entity: str, n: int, start: int = 1) -> int:
        """Allocate n consecutive ids; returns the first."""
        key = f"next_id:{source}:{entity}"
        with self.transaction():
            current = int(self.get_meta(key, str(start)))
            self.set_meta(key, str(current + n))
        return current

    # -- records ----------------------------------------------------------------------------
    def put(self, source: str, entity: str, id: str | int, doc: dict[str, Any], *,
            updated_at: str | datetime, seq: int | None = None, email: str | None = None,
            parent: str | int | None = None) -> None:
        """Insert or replace one record."""
        self.put_many([(source, entity, id, doc, updated_at, seq, email, parent)])

    def put_many(self, rows: Iterable[tuple]) -> int:
        """Insert or replace records given as (source, entity, id, doc, updated_at, seq, email,
        parent) tuples; doc may be a dict or already-serialized JSON text."""
        n = 0
        batch: list[tuple] = []
        with self.transaction():
            for source, entity, id_, doc, updated_at, seq, email, parent in rows:
                if isinstance(updated_at, datetime):
                    updated_at = iso(updated_at)
                if seq is None:
                    seq = int(id_) if str(id_).isdigit() else 0
                batch.append((
                    source, entity, str(id_), seq, updated_at,
                    email.strip().lower() if email else None,
                    None if parent is None else str(parent),
                    doc if isinstance(doc, str) else doc_text(doc),
                ))
                if len(batch) >= 5000:
                    n += self._flush(batch)
            n += self._flush(batch)
        return n

    def _flush(self, batch: list[tuple]) -> int:
        if batch:
            self.conn.executemany(f"INSERT OR REPLACE INTO records ({_COLS}) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
        n = len(batch)
        batch.clear()
        return n

    def get(self, source: str, entity: str, id: str | int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT doc FROM records WHERE source = ? AND entity = ? AND id = ?",
            (source, entity, str(id)),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def get_row(self, source: str, entity: str, id: str | int) -> Row | None:
        row = self.conn.execute(
            f"SELECT {_COLS} FROM records WHERE source = ? AND entity = ? AND id = ?",
            (source, entity, str(id)),
        ).fetchone()
        return _row(row) if row else None

    def exists(self, source: str, entity: str, id: str | int) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM records WHERE source = ? AND entity = ? AND id = ?",
            (source, entity, str(id)),
        ).fetchone() is not None

    def delete(self, source: str, entity: str, id: str | int, *, at: str | datetime,
               merged_into: str | int | None = None) -> bool:
        """Remove a record from the live world, keeping a tombstone. False if it did not exist."""
        if isinstance(at, datetime):
            at = iso(at)
        with self.transaction():
            row = self.conn.execute(
                "SELECT doc FROM records WHERE source = ? AND entity = ? AND id = ?",
                (source, entity, str(id)),
            ).fetchone()
            if row is None:
                return False
            self.conn.execute(
                "INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?, ?, ?, ?)",
                (source, entity, str(id), at,
                 None if merged_into is None else str(merged_into), row[0]),
            )
            self.conn.execute("DELETE FROM records WHERE source = ? AND entity = ? AND id = ?",
                              (source, entity, str(id)))
            self.conn.execute("DELETE FROM lookup WHERE source = ? AND entity = ? AND id = ?",
                              (source, entity, str(id)))
        return True

    def select(self, source: str, entity: str, where: str = "", params: Sequence[Any] = (),
               order: str = "seq, id", limit: int | None = None) -> list[Row]:
        """Rows of one entity with an optional SQL condition over the record columns
        (`seq`, `updated_at`, `email`, `parent`, `id`) or JSON paths of `doc`."""
        sql = f"SELECT {_COLS} FROM records WHERE source = ? AND entity = ?"
        if where:
            sql += f" AND ({where})"
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.conn.execute(sql, (source, entity, *params))]

    def iter_docs(self, source: str, entity: str, where: str = "",
                  params: Sequence[Any] = (), order: str = "seq, id",
                  batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Stream every matching doc without loading the entity into memory."""
        cur = self.conn.cursor()
        sql = "SELECT doc FROM records WHERE source = ? AND entity = ?"
        if where:
            sql += f" AND ({where})"
        cur.execute(sql + f" ORDER BY {order}", (source, entity, *params))
        while rows := cur.fetchmany(batch):
            for (doc,) in rows:
                yield json.loads(doc)

    def count(self, source: str, entity: str, where: str = "", params: Sequence[Any] = ()) -> int:
        sql = "SELECT count(*) FROM records WHERE source = ? AND entity = ?"
        if where:
            sql += f" AND ({where})"
        return self.conn.execute(sql, (source, entity, *params)).fetchone()[0]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for source, entity, n in self.conn.execute(
            "SELECT source, entity, count(*) FROM records GROUP BY source, entity ORDER BY 1, 2"
        ):
            out.setdefault(source, {})[entity] = n
        return out

    def tombstones(self, source: str, entity: str) -> list[dict[str, Any]]:
        return [
            {"id": r[0], "deleted_at": r[1], "merged_into": r[2]}
            for r in self.conn.execute(
                "SELECT id, deleted_at, merged_into FROM tombstones "
                "WHERE source = ? AND entity = ? ORDER BY deleted_at, id", (source, entity))
        ]

    # -- secondary keys ---------------------------------------------------------------------
    def set_keys(self, source: str, entity: str, id: str | int, kind: str,
                 keys: Iterable[str]) -> None:
        """Replace the lookup keys of one kind for a record (e.g. all its normalized emails)."""
        with self.transaction():
            self.conn.execute(
                "DELETE FROM lookup WHERE source = ? AND entity = ? AND id = ? AND kind = ?",
                (source, entity, str(id), kind))
            self.conn.executemany(
                "INSERT OR IGNORE INTO lookup VALUES (?, ?, ?, ?, ?)",
                [(source, entity, kind, k, str(id)) for k in set(keys) if k])

    def find_by_key(self, source: str, entity: str, kind: str, key: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM lookup WHERE source = ? AND entity = ? AND kind = ? AND key = ? "
            "ORDER BY id", (source, entity, kind, key))]

    # -- whole world ------------------------------------------------------------------------
    def wipe(self) -> None:
        """Empty the world: every table in the file (records, keys, tombstones, tokens, counters,
        and the tables other modules add, such as the webhook hooks and pending changes); keeps
        nothing. The store owns the file, so it needs no list of what others keep in it."""
        with self.transaction():
            # triggers first: with none left, the world's removal emits nothing
            for (name,) in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                self.conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
            for (table,) in self.conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'").fetchall():
                self.conn.execute(f'DELETE FROM "{table}"')


class _Tx:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> Store:
        s = self.store
        s._lock.acquire()
        if s._depth == 0:
            s.conn.execute("BEGIN IMMEDIATE")
        s._depth += 1
        return s

    def __exit__(self, exc_type, exc, tb) -> None:
        s = self.store
        s._depth -= 1
        try:
            if s._depth == 0:
                s.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            s._lock.release()
