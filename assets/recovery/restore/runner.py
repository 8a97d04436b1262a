"""The write machinery of a restore apply, shared by the Keap and HighLevel writers: a `Write`
(one call and what it touches), the `Runner` that runs a phase of writes in a small pool (skipping
what succeeded before, recording a `started` row before each call and its outcome after), and
the backup values a write sends (`values`, `clean`). Outcomes go to the ledger
(assets/recovery/restore/ledger.py); what is written and in which order is keap.py and
highlevel.py; apply.py decides whether to write at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb

from assets.recovery.restore.ledger import PERMANENT, RETRYABLE, SUCCEEDED, Ledger
from orchestration.http import ApiError


@dataclass
class Write:
    write_id: str
    entity: str
    action: str
    backup_id: str | None
    live_id: str | None
    fields: list[str]
    run: Callable[[], Any]    # performs the call; returns the live id (or (live id, remark))
    tag: str | None = None



def values(con: duckdb.DuckDBPyConnection, rel: str, ids: list[str], fields: tuple
           ) -> dict[str, dict[str, Any]]:
    """Backup values (canonical, parsed) of some records: id -> {field: value}."""
    if not ids:
        return {}
    cols = ", ".join(f'CAST({f.sql} AS VARCHAR) AS "{f.name}"' for f in fields)
    rows = con.execute(f"SELECT id, {cols} FROM {rel} WHERE id IN (SELECT unnest(?))",
                       [ids]).fetchall()
    names = [f.name for f in fields]
    return {r[0]: {n: clean(json.loads(v)) for n, v in zip(names, r[1:], strict=True)
                   if v is not None} for r in rows}


def clean(value: Any) -> Any:
    """Drop null members of objects (the canonical form keeps every key of its shape)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value



class Runner:
    """Runs writes in a small pool, skipping what succeeded before, recording every outcome."""

    def __init__(self, ledger: Ledger, done: dict[str, str | None], attempts: dict[str, int],
                 concurrency: int):
        self.ledger, self.done, self.attempts = ledger, done, attempts
        self.concurrency = max(1, concurrency)
        self.skipped = 0

    def tried_before(self, write_id: str) -> bool:
        return self.attempts.get(write_id, 0) > 0

    def run(self, writes: list[Write]) -> dict[str, str | None]:
        """Run the writes (a phase); returns write_id -> live id for the ones that succeeded
        now or before."""
        results: dict[str, str | None] = {}
        todo = []
        for w in writes:
            if w.write_id in self.done:
                results[w.write_id] = self.done[w.write_id] or w.live_id
                self.skipped += 1
            else:
                todo.append(w)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for w, live_id in zip(todo, pool.map(self._one, todo), strict=True):
                if live_id is not False:
                    results[w.write_id] = live_id
        return results

    def start(self, writes: list[Write]) -> None:
        """`started` rows, before the calls are sent (see the module docstring, 4.)."""
        self.ledger.record_started([
            {"write_id": w.write_id, "entity": w.entity, "action": w.action,
             "backup_id": w.backup_id, "live_id": w.live_id, "tag": w.tag, "fields": w.fields,
             "attempt": self.attempts.get(w.write_id, 0) + 1} for w in writes])

    def _one(self, w: Write) -> str | None | bool:
        attempt = self.attempts.get(w.write_id, 0) + 1
        common = {"write_id": w.write_id, "entity": w.entity, "action": w.action,
                  "backup_id": w.backup_id, "tag": w.tag, "fields": w.fields or None,
                  "attempt": attempt}
        self.start([w])
        try:
            live_id = w.run()
        except ApiError as e:
            status = RETRYABLE if e.retryable else PERMANENT
            self.ledger.record(**common, live_id=w.live_id, status=status,
                               http_status=e.status, error=_error_text(e))
            return False
        except (KeyError, ValueError, TypeError) as e:
            self.ledger.record(**common, live_id=w.live_id, status=PERMANENT,
                               error=f"{type(e).__name__}: {e}")
            return False
        note = None
        if isinstance(live_id, tuple):   # succeeded with a remark (e.g. a field left out)
            live_id, note = live_id
        self.ledger.record(**common, live_id=live_id or w.live_id, status=SUCCEEDED, error=note)
        return live_id or w.live_id

    def record_outcome(self, w: Write, status: str, error: str | None = None,
                       http_status: int | None = None, live_id: str | None = None) -> None:
        """For batched calls (tags): one ledger row per record of the batch."""
        self.ledger.record(write_id=w.write_id, entity=w.entity, action=w.action,
                           backup_id=w.backup_id, live_id=live_id or w.live_id, tag=w.tag,
                           fields=w.fields or None, status=status, error=error,
                           http_status=http_status,
                           attempt=self.attempts.get(w.write_id, 0) + 1)


def _error_text(e: ApiError) -> str:
    """Status, call and the names of the fields the vendor objected to: the vendor's message
    itself can quote the values sent, so it is not kept."""
    path = e.url.split("?", 1)[0]
    names: list[str] = []
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        body = json.loads(e.body or "")
        names += [str(d.get("resource")) for d in body.get("details") or [] if d.get("resource")]
        meta = body.get("meta") or {}
        if meta.get("matchingField"):
            names.append(f"duplicate {meta['matchingField']} of contact {meta.get('contactId')}")
    where = f" ({', '.join(names)})" if names else ""
    return f"HTTP {e.status} {e.method} {path}{where}" if e.status else f"{e.method} {path}: " \
        f"no reply after {e.attempts} attempts"


def per_record(rows: list[tuple], backup_at: int) -> dict[tuple[str, str], list[tuple]]:
    """Field-update rows grouped per (backup id, live id) (at `backup_at`, `backup_at + 1` of
    each row): one write per record, its id derived from the change ids of its fields."""
    grouped: dict[tuple[str, str], list[tuple]] = {}
    for r in rows:
        grouped.setdefault((r[backup_at], r[backup_at + 1]), []).append(r)
    return grouped


def cell(text: str | None) -> str:
    """A name as a cell of the preview's and configuration.md's markdown (one line, <= 80)."""
    return (text or "").replace("|", "\\|").replace("\n", " ")[:80]


def write_id(*parts: str | None) -> str:
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:32]


