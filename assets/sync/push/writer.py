"""One push run: the changes staged, the tags and custom fields made sure of, the contacts
written, then the tags; every outcome recorded in the ledger (contacts.py, tags.py hold the
steps)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from assets.sync.ledger import LedgerWriter, compact_abandoned
from assets.sync.push.contacts import Contacts
from assets.sync.push.errors import AUTH_STATUS, classify, describe_error
from assets.sync.push.result import DESIRED, SOURCE, PushResult
from assets.sync.push.staging import BATCH_ROWS, FAILURE_SAMPLES, MEMORY_LIMIT, dicts, stage_changes
from assets.sync.push.tags import Tags
from orchestration.storage.derived import read_manifest
from orchestration.storage.parquet import connect as connect_duckdb

if TYPE_CHECKING:
    from orchestration.resources.keap import KeapClient


class Push(Contacts, Tags):
    """The state of one push: the client, the DuckDB staging connection, the ledger writer, the
    result; recording every outcome. The steps are in Contacts and Tags."""

    def __init__(self, client: KeapClient, root: Path, day: str, run_id: str, *, dry_run: bool,
                 concurrency: int, tag_batch: int, logger: logging.Logger | Any,
                 batch_rows: int = BATCH_ROWS):
        self.client, self.root, self.day, self.run_id = client, Path(root), day, run_id
        self.dry_run, self.concurrency = dry_run, max(1, concurrency)
        self.tag_batch = max(1, min(1000, tag_batch))
        self.batch_rows = max(1, batch_rows)
        self.log = logger
        self.result = PushResult(day=day, run_id=run_id, dry_run=dry_run)
        self.writer = LedgerWriter(self.root, run_id)
        self.con: duckdb.DuckDBPyConnection | None = None
        self.created_now: list[tuple[str, str]] = []  # this page's creates (change id, contact)
        self.failed_tag_names: set[str] = set()       # tags that could not be made this run
        self.max_rows_fetched = 0                       # largest page held in Python
        self.abort = threading.Event()
        self._lock = threading.Lock()
        desired = read_manifest(self.root, DESIRED, day, SOURCE) or {}
        self.tag_categories: dict[str, str | None] = desired.get("tag_categories") or {}
        self.custom_field_rules: dict[str, dict[str, str]] = desired.get("custom_fields") or {}

    # -- recording ---------------------------------------------------------------------------
    def record(self, row: dict[str, Any], status: str, *, contact_id: str | None = None,
               http_status: int | None = None, error: str | None = None,
               keap_update_time: str | None = None, tag_id: str | None = None) -> None:
        cid = row["change_id"]
        self.writer.append(
            change_id=cid, changeset_date=self.day, profile_id=row.get("profile_id"),
            contact_id=contact_id or row.get("contact_id"), action=row["action"],
            fields=list(row.get("fields") or []), tag=row.get("tag"),
            tag_id=tag_id or row.get("tag_id"), status=status, http_status=http_status,
            error=error, attempt=int(row.get("prior_attempts") or 0) + 1, run_id=self.run_id,
            keap_update_time=keap_update_time)
        with self._lock:
            r = self.result
            r.sent += 1
            r.by_action[row["action"]][status] += 1
            if status == "succeeded":
                r.succeeded += 1
            elif status == "failed_retryable":
                r.failed_retryable += 1
            else:
                r.failed_permanent += 1
            if status != "succeeded" and len(r.failures) < FAILURE_SAMPLES:
                r.failures.append({"change_id": cid, "action": row["action"],
                                   "contact_id": contact_id or row.get("contact_id"),
                                   "status": status, "error": error})

    def wrote(self, n: int = 1) -> None:
        with self._lock:
            self.result.write_calls += n

    def record_error(self, row: dict[str, Any], e: BaseException, **kw: Any) -> None:
        status, reason = describe_error(e)
        if status in AUTH_STATUS and not self.abort.is_set():
            self.abort.set()
            self.result.aborted = (f"Keap refused our credentials (HTTP {status}); check "
                                   "KEAP_API_KEY or the OAuth settings. The rest is retried "
                                   "next run.")
        self.record(row, classify(e), http_status=status, error=reason, **kw)

    # -- paging ------------------------------------------------------------------------------
    def _pages(self, table: str, where: str, params: list[Any] | None = None
               ) -> Iterator[list[dict[str, Any]]]:
        """Rows of `table` matching `where`, in order of work, `batch_rows` at a time (keyset
        paging on `ord`: each page is one small indexed query, nothing else is held)."""
        last = 0
        while True:
            page = dicts(self.con.execute(
                f"SELECT * FROM {table} WHERE ({where}) AND ord > ? ORDER BY ord LIMIT ?",
                [*(params or []), last, self.batch_rows]))
            if not page:
                return
            self.max_rows_fetched = max(self.max_rows_fetched, len(page))
            yield page
            last = page[-1]["ord"]

    # -- main --------------------------------------------------------------------------------
    def run(self) -> PushResult:
        started = time.monotonic()
        calls_before = self.client.calls if self.client is not None else 0
        r = self.result
        spill = self.root / SOURCE / f".spill-push-{uuid.uuid4().hex[:8]}"
        self.con = connect_duckdb(config={"threads": 2, "memory_limit": MEMORY_LIMIT,
                                          "temp_directory": str(spill)})
        try:
            if not self.dry_run:
                r.compacted_runs = compact_abandoned(self.root)
            staged = stage_changes(self.con, self.root, self.day)
            r.changes = staged["changes"]
            r.skipped_succeeded = staged["skipped_succeeded"]
            r.skipped_dead_letter = staged["skipped_dead_letter"]
            r.skipped_suppressed = staged["skipped_suppressed"]
            pending = staged["pending"]
            for action, n in self.con.execute(
                    "SELECT action, count(*) FROM pending GROUP BY action").fetchall():
                r.by_action[action]["pending"] += n
            if self.dry_run:
                r.not_attempted = pending
                r.duration_seconds = time.monotonic() - started
                return r
            try:
                fields_by_label = self._ensure_custom_fields()
                tag_ids = self._ensure_tags()
                self._contacts(fields_by_label)
                self._tags(tag_ids)
            finally:
                path = self.writer.compact()
                r.ledger_file = str(path) if path else None
                r.api_calls = (self.client.calls - calls_before)
                r.duration_seconds = time.monotonic() - started
            r.not_attempted = pending - r.sent
            return r
        finally:
            r.max_rows_in_python = self.max_rows_fetched
            self.con.close()
            shutil.rmtree(spill, ignore_errors=True)
