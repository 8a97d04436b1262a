"""`run_push`: one push of changeset partition `day` under the push lock and the erasure lock,
with its audit event; and the dead-letter count the asset reports."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.sync.ledger import PushLock
from assets.sync.push.result import PushResult
from assets.sync.push.staging import BATCH_ROWS
from assets.sync.push.writer import Push
from orchestration.storage import audit, suppression
from orchestration.storage.parquet import connect as connect_duckdb

if TYPE_CHECKING:
    from orchestration.resources.keap import KeapClient

log = logging.getLogger("talentvault.sync.push")


def run_push(client: KeapClient | None, root: Path | str, day: str | date, run_id: str, *,
             dry_run: bool = False, concurrency: int = 4, tag_batch: int = 1000,
             logger: logging.Logger | Any = None, record_audit: bool = True,
             batch_rows: int = BATCH_ROWS) -> PushResult:
    """Apply changeset partition `day` to Keap (see the module docstring). Holds the push lock
    and then the erasure lock (shared: `suppression.writing`) for its whole duration, so a
    `talentvault forget` waits for a running push and a push waits for a running erasure (which
    never takes the push lock: no deadlock); records an audit event `sync_push`."""
    root = Path(root)
    day = day.isoformat() if isinstance(day, date) else str(day)
    lg = logger or log
    with PushLock(root), suppression.writing(root):
        push = Push(client, root, day, run_id, dry_run=dry_run, concurrency=concurrency,
                     tag_batch=tag_batch, logger=lg, batch_rows=batch_rows)
        try:
            result = push.run()
        except BaseException as e:
            if record_audit and not dry_run:
                audit.record(root, "sync_push", target="sync/keap_push", status="failed",
                             run_id=run_id, counts=push.result.counts(),
                             details={"changeset_date": day, "error": type(e).__name__})
            raise
    status = ("dry_run" if dry_run else "failed" if result.aborted
              else "partial" if result.failed else "succeeded")
    if record_audit:
        audit.record(root, "sync_push", target="sync/keap_push", status=status, run_id=run_id,
                     counts=result.counts(),
                     details={"changeset_date": day, "dry_run": dry_run,
                              "ledger_file": result.ledger_file,
                              "compacted_runs": result.compacted_runs,
                              "created_tags": len(result.created_tags),
                              "created_custom_fields": len(result.created_custom_fields)})
    lg.info("keap push %s: %d changes, %d sent, %d succeeded, %d retry next run, %d dead letter, "
            "%d skipped, %d API calls, %.1fs", day, result.changes, result.sent,
            result.succeeded, result.failed_retryable, result.failed_permanent, result.skipped,
            result.api_calls, result.duration_seconds)
    return result


def dead_letter_count(root: Path, day: str | None = None) -> int:
    """Changes in the dead letter (of changeset `day` when given)."""
    from assets.sync.ledger import dead_letter

    con = connect_duckdb()
    try:
        dead_letter(con, root).create_view("dead")
        where = (f"WHERE changeset_date = DATE '{date.fromisoformat(day).isoformat()}'"
                 if day is not None else "")
        return int(con.execute(f"SELECT count(*) FROM dead {where}").fetchone()[0])
    finally:
        con.close()
