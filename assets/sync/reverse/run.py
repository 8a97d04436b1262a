"""One reverse run for day D: the plan built in DuckDB and landed (sync/reverse_changes D), then
one Greenhouse call per planned write (the only Python loop), each outcome a fsynced line of the
reverse ledger before the next write. A run killed at any point and run again compacts the killed
run's log first and plans again: what it wrote is laid over the backup from the ledger and is not
written twice; a write that reached Greenhouse but not the ledger is resent, which is safe (every
write answers the same end state when repeated)."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.sync.changeset.base import connect
from assets.sync.ledger import LedgerWriter, PushLock, compact_abandoned
from assets.sync.mapping.reverse import ReverseField
from assets.sync.push.errors import AUTH_STATUS, classify, describe_error
from assets.sync.reverse.base import BOOK, PLAN, SOURCE
from assets.sync.reverse.plan import plan
from orchestration.storage import suppression
from orchestration.storage.derived import partition_glob, write_partition
from orchestration.storage.parquet import duck_path

if TYPE_CHECKING:
    from orchestration.resources.greenhouse import GreenhouseClient

YES = ("true", "yes", "y", "1")


@dataclass
class ReverseResult:
    day: str
    run_id: str
    dry_run: bool
    fields: int = 0
    planned: int = 0
    succeeded: int = 0
    failed_retryable: int = 0
    failed_permanent: int = 0
    skipped_dead_letter: int = 0
    api_calls: int = 0
    write_calls: int = 0
    created_tags: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)     # "field/outcome" -> count
    by_action: Counter = field(default_factory=Counter)
    aborted: str | None = None
    duration_seconds: float = 0.0
    compacted_runs: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {"fields": self.fields, "planned": self.planned, "succeeded": self.succeeded,
                "failed_retryable": self.failed_retryable,
                "failed_permanent": self.failed_permanent,
                "skipped_dead_letter": self.skipped_dead_letter, "api_calls": self.api_calls,
                "write_calls": self.write_calls,
                "duration_seconds": round(self.duration_seconds, 3),
                **{f"outcome/{k}": v for k, v in sorted(self.outcomes.items())},
                **{f"action/{k}": v for k, v in sorted(self.by_action.items())}}


def run_reverse(client: GreenhouseClient | None, root: Path, day: str, run_id: str,
                fields: list[ReverseField], *, dry_run: bool = False,
                logger: logging.Logger | Any = None) -> ReverseResult:
    """Plan day `day` and (unless `dry_run`) write it to Greenhouse. `fields` empty: nothing is
    read and nothing is written."""
    log = logger or logging.getLogger(__name__)
    root = Path(root)
    r = ReverseResult(day, run_id, dry_run, fields=len(fields))
    if not fields:
        return r
    started = time.monotonic()
    # as the push: a `forget` waits for a running reverse sync and it for a running erasure
    with PushLock(root, BOOK), suppression.writing(root):
        if not dry_run:
            r.compacted_runs = compact_abandoned(root, BOOK)
        spill = root / SOURCE / f".spill-reverse-{uuid.uuid4().hex[:8]}"
        con = connect(spill)
        try:
            desired = duck_path(partition_glob(root, "keap_desired", day, SOURCE))
            counts = plan(con, root, day, fields, desired)
            r.planned, r.skipped_dead_letter = counts["writes"], counts["skipped_dead_letter"]
            r.outcomes = {f"{f}/{o}": n for f, o, n in con.execute(
                "SELECT * FROM outcomes").fetchall()}
            if not dry_run:
                write_partition(con, root, PLAN, day, "SELECT * FROM plan",
                                "candidate_id, field, change_id", run_id=run_id, source=SOURCE,
                                extra={"counts": counts, "outcomes": r.outcomes})
            cur = con.execute("SELECT * FROM plan ORDER BY candidate_id, field, change_id")
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, t, strict=True)) for t in cur.fetchall()]
            attempts = dict(con.execute("SELECT change_id, max(attempt) FROM rev_ledger "
                                        "GROUP BY ALL").fetchall())
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
        if dry_run or not rows:
            r.duration_seconds = time.monotonic() - started
            return r
        calls_before = client.calls
        writer = LedgerWriter(root, run_id, BOOK)
        try:
            _Writes(client, writer, r, attempts, day, log).all(rows)
        finally:
            writer.compact()
            r.api_calls = client.calls - calls_before
            r.duration_seconds = time.monotonic() - started
    return r


class _Writes:
    def __init__(self, client: GreenhouseClient, writer: LedgerWriter, result: ReverseResult,
                 attempts: dict[str, int], day: str, log: Any):
        self.client, self.writer, self.r, self.attempts = client, writer, result, attempts
        self.day, self.log = day, log
        self.tag_ids: dict[str, int] = {}

    def all(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if self.r.aborted:
                return
            try:
                status, gh_time, note = self.one(row)
            except Exception as e:  # noqa: BLE001 - every failure is a ledger row, never lost
                http, reason = describe_error(e)
                if http in AUTH_STATUS:
                    self.r.aborted = (f"Greenhouse refused our credentials (HTTP {http}); check "
                                      "GREENHOUSE_CLIENT_ID, GREENHOUSE_CLIENT_SECRET and "
                                      "GREENHOUSE_USER_ID. The rest is retried next run.")
                self.record(row, classify(e), http_status=http, error=reason)
                continue
            self.record(row, status, gh_updated_at=gh_time, error=note)

    def one(self, row: dict[str, Any]) -> tuple[str, str | None, str | None]:
        """Make one write; (status, Greenhouse's update time from the reply, note)."""
        cid, action = int(row["candidate_id"]), row["action"]
        if action == "custom_set":
            if row["value_type"] is None:
                return ("failed_permanent", None, f"Greenhouse has no candidate custom field "
                        f"{row['target']!r}: create it (`mapping check` lists the keys)")
            item: dict[str, Any] = {"name_key": row["target"]}
            if row["value"] is None:
                item["delete_value"] = True
            else:
                item["value"] = _typed(row["value"], row["value_type"])
            self.wrote()
            out = self.client.update_candidate(cid, {"custom_fields": [item]})
            return "succeeded", out.get("updated_at"), None
        tag_id = row["tag_id"] or self.tag_ids.get(row["target"].lower())
        if action == "tag_add":
            if tag_id is None:
                self.wrote()
                tag_id = int(self.client.create_candidate_tag(row["target"])["id"])
                self.tag_ids[row["target"].lower()] = tag_id
                self.r.created_tags.append(row["target"])
            self.wrote()
            out = self.client.apply_candidate_tag(cid, int(tag_id))
            return "succeeded", out.get("updated_at"), None
        if tag_id is None:
            return "succeeded", None, "tag not in Greenhouse: nothing to remove"
        for applied in self.client.applied_tags(cid, int(tag_id)):
            self.wrote()
            self.client.remove_applied_tag(int(applied["id"]))
        return "succeeded", None, None

    def wrote(self) -> None:
        self.r.write_calls += 1

    def record(self, row: dict[str, Any], status: str, *, http_status: int | None = None,
               error: str | None = None, gh_updated_at: str | None = None) -> None:
        self.writer.append(
            change_id=row["change_id"], changes_date=self.day, field=row["field"],
            profile_id=row["profile_id"], contact_id=row["contact_id"],
            candidate_id=row["candidate_id"], action=row["action"], target=row["target"],
            value_sha256=row["value_sha256"], status=status, http_status=http_status,
            error=error, attempt=int(self.attempts.get(row["change_id"]) or 0) + 1,
            gh_updated_at=gh_updated_at)
        setattr(self.r, status, getattr(self.r, status) + 1)
        self.r.by_action[f"{row['action']}/{status}"] += 1
        if status != "succeeded":
            self.log.warning("reverse sync: %s of change %s (candidate %s) %s: %s",
                             row["action"], row["change_id"], row["candidate_id"], status, error)


def _typed(value: str, value_type: str) -> Any:
    """A planned value (text) as the JSON the candidate custom field's type takes."""
    if value_type == "yes_no":
        return value.strip().lower() in YES
    if value_type in ("number", "currency"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value
