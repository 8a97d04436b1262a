"""The restore ledger: one row per write a restore attempted, with its outcome.

    <root>/restore/ledger/_wal/<run_id>.jsonl                  written while applying: one line
                                                               per outcome, flushed and fsynced
    <root>/restore/ledger/run_id=<run_id>/part-00000.parquet   the same rows, compacted at the
                                                               end of the run (and, for a run
                                                               that was killed, by the next one)

Each write gets a `started` row before it is sent and an outcome row after. A run killed in
between leaves the `started` row only: the next run then treats the write as possibly done
(a create is looked up before it is sent again; the record's new update time is not taken for
someone else's edit; a write whose effect the fresh diff shows is recorded as succeeded,
"confirmed").

It makes `apply` resumable (a re-run of a plan skips what succeeded) and it is where recreated
records' new ids live: a record recreated from the backup gets a new id from the vendor, and
the `restore_idmap` view (backup id -> live id, latest restore wins, chains followed) lets the
next preview match the backup record to its new live twin instead of recreating it again.
Rows hold ids, field names and statuses only, never values.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from orchestration.storage import parquet, primary
from orchestration.storage.parquet import duck_path

LEDGER_DIR = ("restore", "ledger")
COLUMNS = {
    "write_id": "VARCHAR", "plan_id": "VARCHAR", "source": "VARCHAR", "entity": "VARCHAR",
    "action": "VARCHAR", "backup_id": "VARCHAR", "live_id": "VARCHAR", "tag": "VARCHAR",
    "fields": "VARCHAR[]", "status": "VARCHAR", "http_status": "INTEGER", "error": "VARCHAR",
    "attempt": "INTEGER", "run_id": "VARCHAR", "at": "TIMESTAMPTZ",
}
SUCCEEDED, RETRYABLE, PERMANENT = "succeeded", "failed_retryable", "failed_permanent"
# written (and fsynced) before a write is sent: a run killed between the vendor's answer and the
# outcome row leaves only this row, which tells the next run that the write may have happened
STARTED = "started"


def ledger_dir(root: Path) -> Path:
    return Path(root).joinpath(*LEDGER_DIR)


def _wal_dir(root: Path) -> Path:
    return ledger_dir(root) / "_wal"


def _columns_sql() -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"


def _select_list() -> str:
    return ", ".join(f'CAST("{k}" AS {v}) AS "{k}"' for k, v in COLUMNS.items())


def ledger_relation(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Views `restore_ledger` (every row, Parquet and write-ahead logs) and `restore_idmap`
    (source, entity, backup_id, live_id) in `con`."""
    parts = []
    base = ledger_dir(root)
    if any(base.glob("run_id=*/*.parquet")):
        parts.append(f"SELECT {_select_list()} FROM read_parquet("
                     f"'{duck_path(base)}/run_id=*/*.parquet', hive_partitioning = false)")
    if any(p.stat().st_size for p in _wal_dir(root).glob("*.jsonl")):
        parts.append(f"SELECT {_select_list()} FROM read_json('{_wal_dir(root)}/*.jsonl', "
                     f"format = 'newline_delimited', columns = {_columns_sql()})")
    if not parts:
        empty = ", ".join(f'CAST(NULL AS {v}) AS "{k}"' for k, v in COLUMNS.items())
        parts.append(f"SELECT {empty} WHERE false")
    # a compacted run and its not-yet-deleted WAL can both hold a row: keep one
    con.execute(f"""CREATE OR REPLACE TEMP VIEW restore_ledger AS
                    SELECT DISTINCT * FROM ({' UNION ALL '.join(parts)})""")
    con.execute("""
        CREATE OR REPLACE TEMP VIEW restore_idmap AS
        WITH RECURSIVE direct AS (
            SELECT source, entity, backup_id, live_id FROM (
                SELECT *, row_number() OVER (PARTITION BY source, entity, backup_id
                                             ORDER BY "at" DESC) AS rn
                FROM restore_ledger
                WHERE status = 'succeeded' AND action = 'create' AND live_id IS NOT NULL
                  AND backup_id IS NOT NULL AND live_id <> backup_id)
            WHERE rn = 1),
        chain(source, entity, backup_id, live_id, depth) AS (
            SELECT source, entity, backup_id, live_id, 0 FROM direct
            UNION ALL
            SELECT c.source, c.entity, c.backup_id, d.live_id, c.depth + 1
            FROM chain c JOIN direct d
              ON d.source = c.source AND d.entity = c.entity AND d.backup_id = c.live_id
            WHERE c.depth < 20)
        SELECT source, entity, backup_id, arg_max(live_id, depth) AS live_id
        FROM chain GROUP BY ALL
    """)


def succeeded_write_ids(con: duckdb.DuckDBPyConnection, plan_id: str) -> dict[str, str | None]:
    """write_id -> live id of every write of the plan that succeeded (in any run)."""
    rows = con.execute("SELECT write_id, any_value(live_id) FROM restore_ledger "
                       "WHERE plan_id = ? AND status = 'succeeded' GROUP BY write_id",
                       [plan_id]).fetchall()
    return dict(rows)


class Ledger:
    """The write-ahead log of one apply run (thread-safe: writes run in a small pool)."""

    def __init__(self, root: Path, plan_id: str, run_id: str, source: str):
        self.root, self.plan_id, self.run_id, self.source = Path(root), plan_id, run_id, source
        self.path = _wal_dir(root) / f"{run_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.counts: dict[str, int] = {SUCCEEDED: 0, RETRYABLE: 0, PERMANENT: 0}

    def record(self, *, write_id: str, entity: str, action: str, status: str,
               backup_id: str | None = None, live_id: str | None = None,
               tag: str | None = None, fields: list[str] | None = None,
               http_status: int | None = None, error: str | None = None,
               attempt: int = 1) -> None:
        row: dict[str, Any] = {
            "write_id": write_id, "plan_id": self.plan_id, "source": self.source,
            "entity": entity, "action": action, "backup_id": backup_id, "live_id": live_id,
            "tag": tag, "fields": fields, "status": status, "http_status": http_status,
            "error": (error or "")[:500] or None, "attempt": attempt, "run_id": self.run_id,
            "at": datetime.now(UTC).isoformat()}
        self._write([row])

    def record_started(self, writes: list[dict[str, Any]]) -> None:
        """`started` rows for writes about to be sent (one fsync for a batch)."""
        now = datetime.now(UTC).isoformat()
        self._write([{"write_id": w["write_id"], "plan_id": self.plan_id, "source": self.source,
                      "entity": w["entity"], "action": w["action"],
                      "backup_id": w.get("backup_id"), "live_id": w.get("live_id"),
                      "tag": w.get("tag"), "fields": w.get("fields") or None,
                      "status": STARTED, "http_status": None, "error": None,
                      "attempt": w.get("attempt", 1), "run_id": self.run_id, "at": now}
                     for w in writes])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        with self._lock:
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())
            for r in rows:
                if r["status"] != STARTED:
                    self.counts[r["status"]] = self.counts.get(r["status"], 0) + 1

    def close(self) -> None:
        with self._lock:
            self._file.close()
        compact(self.root, self.run_id)


def unresolved_started(con: duckdb.DuckDBPyConnection, plan_id: str) -> list[tuple]:
    """Writes of the plan that were started and never got an outcome in that run, and never
    succeeded since: (write_id, entity, action, backup_id, live_id, tag, fields, attempt)."""
    return con.execute("""
        SELECT s.write_id, any_value(s.entity), any_value(s.action), any_value(s.backup_id),
               any_value(s.live_id), any_value(s.tag), any_value(s.fields), max(s.attempt)
        FROM restore_ledger s
        WHERE s.plan_id = ? AND s.status = 'started'
          AND NOT EXISTS (SELECT 1 FROM restore_ledger o WHERE o.plan_id = s.plan_id
                          AND o.write_id = s.write_id AND o.status <> 'started'
                          AND (o.run_id = s.run_id OR o.status = 'succeeded'))
        GROUP BY s.write_id ORDER BY 1""", [plan_id]).fetchall()


def compact(root: Path, run_id: str) -> Path | None:
    """The run's WAL as Parquet (atomic), then the WAL removed. Safe to repeat."""
    wal = _wal_dir(root) / f"{run_id}.jsonl"
    if not wal.exists():
        return None
    target_dir = ledger_dir(root) / f"run_id={run_id}"
    target = target_dir / "part-00000.parquet"
    if wal.stat().st_size:
        target_dir.mkdir(parents=True, exist_ok=True)
        tmp = target_dir / ".part-00000.parquet.tmp"
        con = parquet.connect()
        try:
            parquet.write_query(con, f"""SELECT {_select_list()} FROM read_json('{wal}',
                                format = 'newline_delimited', columns = {_columns_sql()})""", tmp)
        finally:
            con.close()
        if target.exists():  # a partial earlier compaction: keep both sets of rows
            old = parquet.connect()
            try:
                merged = target_dir / ".merged.parquet.tmp"
                parquet.write_query(old, f"SELECT DISTINCT * FROM read_parquet("
                                    f"['{duck_path(target)}', '{duck_path(tmp)}'])", merged)
            finally:
                old.close()
            os.replace(merged, tmp)
        os.replace(tmp, target)
    wal.unlink()
    primary.sync_up(root)   # a bucket primary: the run's ledger goes up at once
    return target


def compact_orphans(root: Path, current_run: str | None = None) -> int:
    """Compact WALs left by killed runs (never the current one's)."""
    n = 0
    for wal in sorted(_wal_dir(root).glob("*.jsonl")):
        if wal.stem != current_run:
            compact(root, wal.stem)
            n += 1
    return n
