"""The webhook inbox: a durable, append-only log of ids (never personal values).

Layout under the data root:

    webhooks/inbox/date=YYYY-MM-DD/events.jsonl    the receiver's day(s) still open: one JSON
                                                   line per row, fsynced before the vendor gets
                                                   its 200
    webhooks/inbox/date=YYYY-MM-DD/events.parquet  closed days, compacted (deduped, by seq)
    webhooks/inbox.lock                            writers and the compactor take it (flock)

One JSONL file per UTC day (by receive time), not per process: the receiver is one process, and
the file lock keeps a second writer (or `webhooks compact`) safe anyway. A row is written with a
single `write` on an O_APPEND descriptor, so a reader sees whole lines; a line torn by a crash
was never acknowledged (the vendor retries it) and readers skip it.

`seq` (microseconds since the epoch, strictly increasing per writer) is the inbox position: the
sensor's cursor. Duplicates (a vendor resending an event, or anyone replaying a signed body) are
refused at write time for events seen in the last `dedup_days(source)` days (longer than any
vendor's retry window: Greenhouse ~15 h; for Greenhouse, whose event id is a digest of the signed
body, longer than the age the receiver accepts, so a replay is either a duplicate or stale), and
every reader dedups again by (source, event_id, object_type, object_id), so nothing is ever
counted twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from orchestration.storage.fsync import fsync as _fsync
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path, write_query
from orchestration.webhooks.events import SOURCES, Event

log = logging.getLogger("talentvault.webhooks")

DEDUP_DAYS = 3
# a Greenhouse body carrying times older than GREENHOUSE_DEDUP_DAYS - 1 days is refused as stale
# (app.py), so remembering its digest one day longer covers every replay that is not stale
GREENHOUSE_DEDUP_DAYS = 8
COLUMNS = {"seq": "BIGINT", "event_id": "VARCHAR", "source": "VARCHAR",
           "event_type": "VARCHAR", "object_type": "VARCHAR", "object_id": "VARCHAR",
           "op": "VARCHAR", "related_id": "VARCHAR", "vendor_timestamp": "TIMESTAMPTZ",
           "received_at": "TIMESTAMPTZ"}
ROW_KEY = "source, event_id, object_type, object_id"


def dedup_days(source: str) -> int:
    """How long an event id is refused again at write time."""
    return GREENHOUSE_DEDUP_DAYS if source == "greenhouse" else DEDUP_DAYS


def inbox_dir(root: Path) -> Path:
    return Path(root) / "webhooks" / "inbox"


def _day_dirs(root: Path, since: date | None = None) -> list[Path]:
    base = inbox_dir(root)
    if not base.is_dir():
        return []
    days = sorted(p for p in base.glob("date=*") if p.is_dir())
    if since is not None:
        days = [p for p in days if p.name.split("=", 1)[1] >= since.isoformat()]
    return days


def _q(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _qp(path: Path | str) -> str:
    """A Parquet file or glob as DuckDB names it (encrypted roots: `tvcrypt://`)."""
    return _q(duck_path(path))


def events_sql(root: Path, since: date | None = None) -> str | None:
    """A SELECT of every inbox row (received on `since` or later), deduped; None when the
    inbox is empty. Streams from the files (DuckDB)."""
    days = _day_dirs(root, since)
    return files_sql([d / "events.parquet" for d in days if (d / "events.parquet").exists()],
                     [d / "events.jsonl" for d in days if (d / "events.jsonl").exists()])


def files_sql(parquet: list[Path], jsonl: list[Path]) -> str | None:
    if not parquet and not jsonl:
        return None
    scans = [f"read_parquet([{', '.join(map(_qp, parquet))}])"] if parquet else []
    return _dedup(scans,
                  [f"[{', '.join(map(_q, jsonl))}]"] if jsonl else [])


def _dedup(parquet_sources: list[str], jsonl_sources: list[str]) -> str:
    cols = ", ".join(COLUMNS)
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    parts = [f"SELECT {cols} FROM {src}" for src in parquet_sources]
    parts += [f"SELECT {cols} FROM read_json({src}, format = 'newline_delimited', "
              f"columns = {spec}, ignore_errors = true)" for src in jsonl_sources]
    return (f"SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE seq IS NOT NULL QUALIFY "
            f"row_number() OVER (PARTITION BY {ROW_KEY} ORDER BY seq) = 1")


def events_glob_sql(root: Path) -> str | None:
    """The same rows over globs, for the saved catalog (days added later are picked up without
    a rebuild, as long as each kind of file matched something when it was built)."""
    base = inbox_dir(root)
    parquet = ([f"read_parquet({_qp(base / 'date=*' / 'events.parquet')})"]
               if any(base.glob("date=*/events.parquet")) else [])
    jsonl = ([_q(base / "date=*" / "events.jsonl")]
             if any(base.glob("date=*/events.jsonl")) else [])
    return _dedup(parquet, jsonl) if parquet or jsonl else None


def connect() -> duckdb.DuckDBPyConnection:
    con = connect_duckdb(config={"threads": 1})
    con.execute("SET TimeZone = 'UTC'")
    return con


@dataclass(frozen=True)
class Appended:
    stored_rows: int
    new_events: int
    duplicate_events: int


class Inbox:
    """The writer side (the receiver process)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = inbox_dir(self.root)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_path = self.dir.parent / "inbox.lock"
        self._last_seq = 0
        self._open_day: str | None = None
        self._seen: dict[tuple[str, str], str] = {}     # (source, event id) -> day received
        self._load_recent()

    def _load_recent(self) -> None:
        today = datetime.now(UTC).date()
        since = today - timedelta(days=max(DEDUP_DAYS, GREENHOUSE_DEDUP_DAYS))
        sql = events_sql(self.root, since)
        if sql is None:
            return
        cut = {s: (today - timedelta(days=dedup_days(s))).isoformat() for s in SOURCES}
        con = connect()
        try:
            top = con.execute(f"SELECT max(seq) FROM ({sql})").fetchone()[0]
            con.execute(f"SELECT source, event_id, max(CAST(received_at AS DATE))::VARCHAR "
                        f"FROM ({sql}) GROUP BY ALL")
            while batch := con.fetchmany(10_000):
                self._seen.update(((s, e), d) for s, e, d in batch if d >= cut.get(s, ""))
            self._last_seq = int(top or 0)
        finally:
            con.close()

    def seen(self, source: str, event_id: str) -> bool:
        return (source, event_id) in self._seen

    def append(self, events: Iterable[Event]) -> Appended:
        """Store the rows of events not seen before; returns what was stored. Durable when it
        returns (fsynced)."""
        events = list(events)
        with self._lock, open(self._lock_path, "a") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            fresh = [e for e in events if (e.source, e.event_id) not in self._seen]
            dup_ids = {(e.source, e.event_id) for e in events} - {
                (e.source, e.event_id) for e in fresh}
            if fresh:
                now = datetime.now(UTC)
                day = now.date().isoformat()
                lines = []
                for e in fresh:
                    self._last_seq = max(self._last_seq + 1, time.time_ns() // 1000)
                    lines.append(json.dumps({
                        "seq": self._last_seq, "event_id": e.event_id, "source": e.source,
                        "event_type": e.event_type, "object_type": e.object_type,
                        "object_id": e.object_id, "op": e.op, "related_id": e.related_id,
                        "vendor_timestamp": e.vendor_timestamp.isoformat()
                        if e.vendor_timestamp else None,
                        "received_at": now.isoformat()}, separators=(",", ":")))
                self._write(day, ("\n".join(lines) + "\n").encode())
                self._seen.update(((e.source, e.event_id), day) for e in fresh)
                if self._open_day != day:
                    if self._open_day is not None:
                        self._compact_closed(day)
                        self._forget_before(now.date())
                    self._open_day = day
            new_ids = {(e.source, e.event_id) for e in fresh}
            return Appended(len(fresh), len(new_ids), len(dup_ids))

    def _forget_before(self, today: date) -> None:
        """Drop ids older than their source's dedup window (no vendor resends that late;
        readers still dedup), so a long-running receiver's memory stays flat."""
        cut = {s: (today - timedelta(days=dedup_days(s))).isoformat() for s in SOURCES}
        self._seen = {k: d for k, d in self._seen.items() if d >= cut.get(k[0], "")}

    def _write(self, day: str, data: bytes) -> None:
        folder = self.dir / f"date={day}"
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync(self.dir)

    def compact(self) -> int:
        """Compact every closed day (before today, UTC) to Parquet; returns days compacted."""
        with self._lock, open(self._lock_path, "a") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            return self._compact_closed(datetime.now(UTC).date().isoformat())

    def _compact_closed(self, today: str) -> int:
        done = 0
        for folder in _day_dirs(self.root):
            if folder.name.split("=", 1)[1] >= today or not (folder / "events.jsonl").exists():
                continue
            compact_day(folder)
            done += 1
        return done


def compact_day(folder: Path) -> None:
    """JSONL (plus an earlier Parquet of the same day, if a late row came in) to one deduped
    Parquet, written to a temporary name and renamed; then the JSONL goes. A crash in between
    leaves both, which readers dedup and the next compaction merges."""
    jsonl, parquet = folder / "events.jsonl", folder / "events.parquet"
    sql = files_sql([parquet] if parquet.exists() else [], [jsonl])
    tmp = folder / ".events.parquet.tmp"
    con = connect()
    try:
        write_query(con, f"{sql} ORDER BY seq", tmp)
    finally:
        con.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, parquet)
    _fsync(folder)
    jsonl.unlink()
    log.info("webhook inbox: compacted %s", folder.name)


def inbox_summary(root: Path) -> dict:
    """Counts per source and event type, deletions, last received (for `webhooks
    status`)."""
    from orchestration.webhooks import hook_secrets

    sql = events_sql(root)
    out: dict = {"inbox": str(inbox_dir(root)),
                 "keap_verified_secrets": len(hook_secrets.known_secrets(root)), "sources": {}}
    if sql is None:
        return out
    con = connect()
    try:
        rows = con.execute(f"""
            SELECT source, event_type, count(DISTINCT event_id), count(*),
                   count(*) FILTER (op = 'delete'), max(received_at)
            FROM ({sql}) GROUP BY ALL ORDER BY source, event_type
        """).fetchall()
    finally:
        con.close()
    for source, event_type, events, n, deletes, last in rows:
        entry = out["sources"].setdefault(source, {"events": 0, "rows": 0, "deletes": 0,
                                                   "last_received": None, "by_type": {}})
        entry["events"] += events
        entry["rows"] += n
        entry["deletes"] += deletes
        entry["last_received"] = max(filter(None, [entry["last_received"], last.isoformat()]))
        entry["by_type"][event_type] = {"events": events, "rows": n, "deletes": deletes,
                                        "last_received": last.isoformat()}
    return out
