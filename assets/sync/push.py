"""Applying the day's Keap changeset: the `sync/keap_push` asset.

Order of work for changeset partition D:
  1. skip changes already written for this day's changeset (`succeeded` in the ledger) and
     dead letters (`failed_permanent` whose input has not changed: same change_id);
  2. make sure the tags (and their categories) and the custom fields the changes use exist in
     Keap, by name (created when missing; custom fields per the mapping's `on_missing`);
  3. creates (upsert with duplicate_option=Email, safe to resend) and updates (PATCH with an
     update_mask) with a bounded thread pool under the client's one pacer;
  4. tag removals and additions, one call per tag and ≤ `tag_batch` contacts, for contacts
     created in step 3 too (their new ids come from this run or from the ledger).
Every outcome is one fsynced ledger line before the next is reported (assets/sync/ledger.py), so
a push killed at any point and run again sends only what is left.

The changeset stays in DuckDB (skips, tag grouping and the ids of contacts created are joins);
Python holds one page of `batch_rows` changes at a time, so memory does not grow with the day.
"""

import json
import logging
import re
import shutil
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa

from assets.sync.ledger import (
    LedgerWriter,
    PushLock,
    compact_abandoned,
    latest_status_sql,
    ledger_relation,
    parquet_path,
)
from orchestration import pools
from orchestration.automation import SYNC_CHAIN
from orchestration.http import ApiError, MalformedResponseError
from orchestration.instance import release_abandoned_runs
from orchestration.partitions import daily_snapshots
from orchestration.storage import audit, suppression
from orchestration.storage.derived import partition_dir, read_manifest

log = logging.getLogger("talentvault.sync.push")
# a push waiting for its `keap_push` slot frees it from a killed push run, gives up after a
# bounded time naming the run that holds it, and hears SIGTERM (also when run without the code
# location, e.g. `dg.materialize([keap_push])`)
pools.install()

SOURCE = "sync"
CHANGESET = "keap_changeset"
DESIRED = "keap_desired"
PUSH_KEY = dg.AssetKey(["sync", "keap_push"])
CHANGESET_KEY = dg.AssetKey(["sync", "keap_changeset"])
CONTACT_ACTIONS = ("create", "update")
TAG_ACTIONS = ("tag_remove", "tag_add")
AUTH_STATUS = frozenset({401, 403})
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


class KeapPushConfig(dg.Config):
    """How the push runs."""

    dry_run: bool = False      # read and plan everything, write nothing (no Keap call, no ledger)
    concurrency: int = 4       # parallel contact writes (all under one rate-limit pacer)
    tag_batch: int = 1000      # contacts per applyTags/removeTags call (Keap's maximum: 1000)


@dataclass
class PushResult:
    day: str
    run_id: str
    dry_run: bool
    changes: int = 0
    sent: int = 0
    succeeded: int = 0
    failed_retryable: int = 0
    failed_permanent: int = 0
    skipped_succeeded: int = 0
    skipped_dead_letter: int = 0
    skipped_suppressed: int = 0  # about a person erased since the changeset was built
    not_attempted: int = 0
    api_calls: int = 0
    write_calls: int = 0
    duration_seconds: float = 0.0
    created_tags: list[str] = field(default_factory=list)
    created_categories: list[str] = field(default_factory=list)
    created_custom_fields: list[str] = field(default_factory=list)
    missing_custom_fields: list[str] = field(default_factory=list)
    compacted_runs: list[str] = field(default_factory=list)
    by_action: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[dict[str, Any]] = field(default_factory=list)
    ledger_file: str | None = None
    aborted: str | None = None
    max_rows_in_python: int = 0  # largest page of changes held as Python objects at once

    @property
    def failed(self) -> int:
        return self.failed_retryable + self.failed_permanent

    @property
    def skipped(self) -> int:
        return (self.skipped_succeeded + self.skipped_dead_letter + self.skipped_suppressed
                + self.not_attempted)

    def counts(self) -> dict[str, int | float]:
        return {"changes": self.changes, "sent": self.sent, "succeeded": self.succeeded,
                "failed": self.failed, "failed_retryable": self.failed_retryable,
                "failed_permanent": self.failed_permanent, "skipped": self.skipped,
                "skipped_already_succeeded": self.skipped_succeeded,
                "skipped_dead_letter": self.skipped_dead_letter,
                "skipped_suppressed": self.skipped_suppressed,
                "not_attempted": self.not_attempted, "api_calls": self.api_calls,
                "write_calls": self.write_calls,
                "duration_seconds": round(self.duration_seconds, 3)}

    def markdown(self) -> str:
        mode = " (dry run: nothing written)" if self.dry_run else ""
        lines = [f"**Keap push for {self.day}**{mode}: {self.sent} sent, {self.succeeded} "
                 f"succeeded, {self.failed_retryable} to retry next run, {self.failed_permanent} "
                 f"dead-lettered, {self.skipped} skipped; {self.api_calls} API calls "
                 f"({self.write_calls} writes) in {self.duration_seconds:.1f}s.", "",
                 *([f"{self.skipped_suppressed} change(s) left out: about a person erased "
                    "(`talentvault forget`) after the changeset was built.", ""]
                   if self.skipped_suppressed else []),
                 "| action | pending | succeeded | retry next run | dead letter |",
                 "|---|---|---|---|---|"]
        for action in (*CONTACT_ACTIONS, *TAG_ACTIONS):
            c = self.by_action.get(action, Counter())
            if any(c.values()):
                lines.append(f"| {action} | {c['pending']} | {c['succeeded']} | "
                             f"{c['failed_retryable']} | {c['failed_permanent']} |")
        for label, items in (("Tags created", self.created_tags),
                             ("Tag categories created", self.created_categories),
                             ("Custom fields created", self.created_custom_fields),
                             ("Custom fields missing in Keap (not set)",
                              self.missing_custom_fields)):
            if items:
                lines += ["", f"{label}: " + ", ".join(sorted(items))]
        if self.failures:
            lines += ["", "Failures (first 10):", "",
                      "| change id | action | contact id | status | error |",
                      "|---|---|---|---|---|"]
            for f in self.failures[:10]:
                lines.append(f"| {f['change_id']} | {f['action']} | {f['contact_id'] or '-'} | "
                             f"{f['status']} | {(f['error'] or '').replace('|', '/')} |")
        if self.aborted:
            lines += ["", f"Stopped early: {self.aborted}"]
        return "\n".join(lines)


# -- errors: classified, and told without personal values ----------------------------------------
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_EMAIL = re.compile(r"\S+@\S+")
_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def scrub(text: str) -> str:
    """An error message without the values it quotes (emails, phones, names)."""
    return _NUMBER.sub("<number>", _EMAIL.sub("<email>", _QUOTED.sub("<value>", text)))[:300]


def describe_error(e: BaseException) -> tuple[int | None, str]:
    """(HTTP status, readable reason naming the field) for a failed write."""
    if not isinstance(e, ApiError):
        return None, f"{type(e).__name__}: {scrub(str(e))}"
    if e.status is None or e.status in (408, 425, 429) or e.status >= 500:
        # transport problems and outages: the client's own message (paths and attempt counts)
        return e.status, scrub(str(e).split(": ", 1)[-1])
    reason = f"HTTP {e.status}"
    try:
        body = json.loads(e.body or "")
    except (json.JSONDecodeError, TypeError):
        body = None
    if isinstance(body, dict):
        resources = [d.get("resource") for d in body.get("details") or []
                     if isinstance(d, dict) and d.get("resource")]
        if resources:
            reason += f" on {', '.join(str(r) for r in resources)}"
        if body.get("message"):
            reason += f": {scrub(str(body['message']))}"
    if isinstance(e, MalformedResponseError):
        reason += ": unreadable reply"
    return e.status, reason


def classify(e: BaseException) -> str:
    """`failed_retryable` (rate limit, outage, timeout, lost reply, auth) or `failed_permanent`
    (Keap refused the data: 400, 404, 422 ...)."""
    if not isinstance(e, ApiError):
        return "failed_retryable"
    status = e.status
    if (status is None or status >= 500 or status in RETRYABLE_4XX or status in AUTH_STATUS
            or isinstance(e, MalformedResponseError)):
        return "failed_retryable"
    return "failed_permanent"


# -- reading the changeset -----------------------------------------------------------------------
# The changeset stays in DuckDB (spilling to the data root); Python holds at most `batch_rows`
# changes at a time (one page of contact writes, or of tag rows), so a first sync of 10^6 changes
# costs a few MB of Python objects, not gigabytes.
BATCH_ROWS = 5000          # changes fetched into Python at once
FAILURE_SAMPLES = 100      # failures kept for the summary (every failure is in the ledger)
MEMORY_LIMIT = "1GB"       # DuckDB's share; the rest spills to <root>/sync/.spill-push-*
CHANGE_COLUMNS = {"change_id": "VARCHAR", "action": "VARCHAR", "profile_id": "BIGINT",
                  "contact_id": "VARCHAR", "match_email": "VARCHAR", "fields": "VARCHAR[]",
                  "body": "VARCHAR",
                  "update_mask": "VARCHAR[]", "tag": "VARCHAR", "tag_id": "VARCHAR",
                  "depends_on": "VARCHAR"}
ACTION_RANK = ("CASE action WHEN 'create' THEN 0 WHEN 'update' THEN 1 "
               "WHEN 'tag_remove' THEN 2 ELSE 3 END")


def changeset_glob(root: Path, day: str) -> str:
    """The Parquet files of changeset partition `day` (a clear error when it was never built)."""
    folder = partition_dir(root, CHANGESET, day, SOURCE)
    if not (folder / "_manifest.json").exists():
        raise FileNotFoundError(
            f"no Keap changeset for {day} at {folder}: materialize sync/keap_changeset for that "
            "day first")
    return f"{folder}/*.parquet"


def stage_changes(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> dict[str, int]:
    """Stage changeset partition `day` in `con` (set-based, nothing in Python):

    - table `pending`: the changes still to write, one row per change id, `ord` = order of work
      (creates, updates, tag removals, tag additions; then change id), `prior_attempts` = the
      highest attempt number the ledger holds for it;
    - table `created`: create change id -> Keap contact id, from earlier runs of this day's
      changeset (the push adds this run's creates).

    Skipped: changes already `succeeded` for this day's changeset (a re-run, or the rest of a
    killed run) and dead letters (latest attempt `failed_permanent`). A change id is a hash of
    what to do, so the same id can come back on a later day (a tag removed on day 1, put back by
    a human, to be removed again on day 9): that is a new write, not a duplicate.
    Then changes about a person on the suppression list are dropped (`drop_suppressed`).
    Returns the counts `changes`, `skipped_succeeded`, `skipped_dead_letter`,
    `skipped_suppressed`, `pending`."""
    files = changeset_glob(root, day)
    source = f"read_parquet('{files}', hive_partitioning = false)"
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    cols = ", ".join(f'CAST({"p." + c if c in present else "NULL"} AS {t}) AS {c}'
                     for c, t in CHANGE_COLUMNS.items())
    ledger_relation(con, root)
    # the order of work, the skip rules and the attempt numbers on narrow rows (change id,
    # action, position in its file); the wide columns (bodies) are read once, for pending rows
    con.execute(f"""
        CREATE OR REPLACE TABLE staged AS
        WITH raw AS (SELECT CAST(change_id AS VARCHAR) AS change_id, filename AS _file,
                            file_row_number AS _row, {ACTION_RANK} AS _rank
                     FROM read_parquet('{files}', hive_partitioning = false, filename = true,
                                       file_row_number = true)),
        numbered AS (SELECT *, row_number() OVER (ORDER BY _rank, change_id) AS ord FROM raw),
        dist AS (SELECT * FROM numbered
                 QUALIFY row_number() OVER (PARTITION BY change_id ORDER BY ord) = 1),
        done AS (SELECT DISTINCT change_id FROM ledger
                 WHERE status = 'succeeded' AND changeset_date = CAST($day AS DATE)),
        latest AS (SELECT change_id, status FROM ({latest_status_sql()})),
        prior AS (SELECT change_id, max(attempt) AS attempts FROM ledger GROUP BY change_id)
        SELECT d._file, d._row, d.ord,
               CASE WHEN done.change_id IS NOT NULL THEN 'succeeded'
                    WHEN latest.status = 'failed_permanent' THEN 'dead_letter' END AS skip,
               coalesce(prior.attempts, 0) AS prior_attempts
        FROM dist d
        LEFT JOIN done ON done.change_id = d.change_id
        LEFT JOIN latest ON latest.change_id = d.change_id
        LEFT JOIN prior ON prior.change_id = d.change_id""", {"day": day})
    counts = dict(con.execute(
        "SELECT coalesce(skip, 'pending'), count(*) FROM staged GROUP BY 1").fetchall())
    con.execute(f"""
        CREATE OR REPLACE TABLE pending AS
        SELECT {cols}, s.ord, s.prior_attempts
        FROM read_parquet('{files}', hive_partitioning = false, filename = true,
                          file_row_number = true) p
        JOIN staged s ON s._file = p.filename AND s._row = p.file_row_number
        WHERE s.skip IS NULL""")
    con.execute("DROP TABLE staged")
    counts["skipped_suppressed"] = drop_suppressed(con, root, day)
    counts["pending"] = counts.get("pending", 0) - counts["skipped_suppressed"]
    con.execute("""
        CREATE OR REPLACE TABLE created AS
        SELECT change_id, any_value(contact_id) AS contact_id, 0 AS seq FROM ledger
        WHERE action = 'create' AND status = 'succeeded' AND contact_id IS NOT NULL
          AND changeset_date = CAST(? AS DATE) GROUP BY change_id""", [day])
    return {"changes": int(con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]),
            "skipped_succeeded": int(counts.get("succeeded", 0)),
            "skipped_dead_letter": int(counts.get("dead_letter", 0)),
            "skipped_suppressed": int(counts["skipped_suppressed"]),
            "pending": int(counts.get("pending", 0))}


def drop_suppressed(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> int:
    """Remove from `pending` every change about a person on the suppression list (erased with
    `talentvault forget` after the changeset was built): its match email, its Keap contact id,
    or any email / Greenhouse candidate id of its profile (sync/keap_desired and
    identity/candidate_profiles of `day`, when present). Nothing is sent and nothing is written
    to the ledger for them (it would name the person again); returns how many were dropped."""
    if not suppression.list_path(root).exists() or suppression.register(con, root) == 0:
        return 0
    hit = "IN (SELECT hash FROM suppressed_hashes)"
    people = []
    desired = partition_dir(root, DESIRED, day, SOURCE)
    if any(desired.glob("*.parquet")):
        src = f"read_parquet('{desired}/*.parquet')"
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        every = "list_prepend(email, coalesce(emails, []))" if "emails" in cols else "[email]"
        people.append(f"""
            SELECT DISTINCT profile_id FROM (SELECT profile_id, unnest({every}) AS e FROM {src})
            WHERE e IS NOT NULL AND tv_identity_hash('email', e) {hit}""")
    profiles = partition_dir(root, "candidate_profiles", day)
    if any(profiles.glob("*.parquet")):
        people.append(f"""
            SELECT DISTINCT profile_id FROM (
                SELECT profile_id, unnest(list_concat(
                    coalesce(candidate_ids, []), coalesce(merged_candidate_ids, []))) AS c
                FROM read_parquet('{profiles}/*.parquet', union_by_name = true))
            WHERE c IS NOT NULL AND tv_identity_hash('greenhouse_candidate', c) {hit}""")
    by_profile = (f"OR profile_id IN ({' UNION '.join(people)})" if people else "")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE suppressed_changes AS
        SELECT change_id FROM pending
        WHERE (match_email IS NOT NULL AND tv_identity_hash('email', match_email) {hit})
           OR (coalesce(contact_id, '') <> ''
               AND tv_identity_hash('keap_contact', contact_id) {hit})
           {by_profile}""")
    # rows of a suppressed person's create that depend on it go with it
    con.execute("""
        INSERT INTO suppressed_changes SELECT change_id FROM pending
        WHERE depends_on IN (SELECT change_id FROM suppressed_changes)
          AND change_id NOT IN (SELECT change_id FROM suppressed_changes)""")
    n = con.execute("SELECT count(*) FROM pending WHERE change_id IN "
                    "(SELECT change_id FROM suppressed_changes)").fetchone()[0]
    if n:
        con.execute("DELETE FROM pending WHERE change_id IN "
                    "(SELECT change_id FROM suppressed_changes)")
    return int(n)


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# -- the push ------------------------------------------------------------------------------------
class _Push:
    def __init__(self, client: Any, root: Path, day: str, run_id: str, *, dry_run: bool,
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
            page = _dicts(self.con.execute(
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
        self.con = duckdb.connect(config={"threads": 2, "memory_limit": MEMORY_LIMIT,
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

    # -- step 2: tags, categories, custom fields ---------------------------------------------
    def _ensure_tags(self) -> dict[str, str | None]:
        """Tag name (lower case) -> Keap tag id, for tag rows without a known id. Tags to add are
        created when missing (in their category); a tag to remove that Keap lacks maps to None.
        Rows whose tag cannot be made are recorded as failed here."""
        wanted = self.con.execute(f"""
            SELECT tag, bool_or(action = 'tag_add') FROM pending
            WHERE action IN {TAG_ACTIONS} AND coalesce(tag_id, '') = '' AND coalesce(tag, '') <> ''
            GROUP BY tag""").fetchall()
        names = {name for name, _ in wanted}
        if not names:
            return {}
        adds = {name for name, add in wanted if add}
        existing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in self.client.tag_pages():
            for tag in page:
                existing[str(tag.get("name", "")).strip().lower()].append(tag)
        categories: dict[str, str] | None = None
        out: dict[str, str | None] = {}
        for name in sorted(names):
            key = name.strip().lower()
            category_name = self.tag_categories.get(name)
            try:
                found = existing.get(key) or []
                if found:
                    out[key] = str(self._pick_tag(found, category_name, categories)["id"])
                    continue
                if name not in adds:
                    out[key] = None
                    continue
                category_id = None
                if category_name:
                    if categories is None:
                        categories = {str(c.get("name", "")).strip().lower(): str(c["id"])
                                      for page in self.client.tag_category_pages()
                                      for c in page}
                    category_id = categories.get(category_name.strip().lower())
                    if category_id is None:
                        self.wrote()
                        category_id = str(self.client.create_tag_category(category_name)["id"])
                        categories[category_name.strip().lower()] = category_id
                        self.result.created_categories.append(category_name)
                self.wrote()
                tag = self.client.create_tag(name, category_id)
                out[key] = str(tag["id"])
                self.result.created_tags.append(name)
            except ApiError as e:
                self.failed_tag_names.add(name)
                for page in self._pages("pending", f"action IN {TAG_ACTIONS} AND tag = ? "
                                        "AND coalesce(tag_id, '') = ''", [name]):
                    for row in page:
                        self.record_error(row, e)
        return out

    @staticmethod
    def _pick_tag(found: list[dict[str, Any]], category_name: str | None,
                  categories: dict[str, str] | None) -> dict[str, Any]:
        """Of several tags with one name, the one in the mapping's category when it can be told
        (else the oldest): a human's same-named tag is reused rather than duplicated."""
        found = sorted(found, key=lambda t: int(str(t["id"])) if str(t["id"]).isdigit() else 0)
        if category_name and categories:
            want = categories.get(category_name.strip().lower())
            for tag in found:
                if want and str((tag.get("category") or {}).get("id")) == want:
                    return tag
        return found[0]

    def _custom_labels(self) -> set[str]:
        """Labels of custom-field body items without an id, over every pending contact write
        (found in SQL; only the distinct (label, id) pairs come to Python)."""
        pairs = self.con.execute(f"""
            SELECT DISTINCT CAST(json_array(item -> 'label', item -> 'id') AS VARCHAR) FROM (
                SELECT unnest(CASE WHEN json_valid(body) THEN
                    CASE WHEN json_type(body) = 'OBJECT'
                              AND json_type(body, '$.custom_fields') = 'ARRAY'
                         THEN json_extract(body, '$.custom_fields[*]') END END) AS item
                FROM pending WHERE action IN {CONTACT_ACTIONS} AND coalesce(body, '') <> '')
            WHERE json_type(item) = 'OBJECT'""").fetchall()
        labels: set[str] = set()
        for (pair,) in pairs:
            label, fid = json.loads(pair)
            if not fid and label:
                labels.add(str(label))
        return labels

    def _ensure_custom_fields(self) -> dict[str, str | None]:
        """Custom field label (lower case) -> Keap id, for body items that name a field by label
        (`{"label": ..., "content": ...}` without an id). Missing fields are created when the
        mapping says `on_missing: create`, else reported (and left out of the write)."""
        labels = self._custom_labels()
        if not labels:
            return {}
        model = self.client.contact_model().get("custom_fields") or []
        known = {str(f.get("label", "")).strip().lower(): str(f["id"]) for f in model}
        out: dict[str, str | None] = {}
        for label in sorted(labels):
            key = label.strip().lower()
            if key in known:
                out[key] = known[key]
                continue
            rule = self.custom_field_rules.get(label) or {}
            if rule.get("on_missing", "report") != "create":
                out[key] = None
                self.result.missing_custom_fields.append(label)
                continue
            try:
                self.wrote()
                made = self.client.create_custom_field(label, rule.get("field_type") or "TEXT")
                out[key] = str(made["id"])
                self.result.created_custom_fields.append(label)
            except ApiError as e:
                self.log.warning("keap push: could not create custom field %s: %s", label,
                                 describe_error(e)[1])
                out[key] = None
                self.result.missing_custom_fields.append(label)
        return out

    # -- step 3: contacts --------------------------------------------------------------------
    def _contacts(self, fields_by_label: dict[str, str | None]) -> None:
        """Creates and updates, a page at a time through the bounded pool; the contact ids of
        each page's creates go to the `created` table before the next page is fetched."""
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="keap-push") as pool:
            for page in self._pages("pending", f"action IN {CONTACT_ACTIONS}"):
                if self.abort.is_set():
                    return
                list(pool.map(lambda row: self._contact(row, fields_by_label), page))
                self._save_created()

    def _save_created(self) -> None:
        with self._lock:
            done, self.created_now = self.created_now, []
        if not done:
            return
        table = pa.table({"change_id": [c for c, _ in done], "contact_id": [k for _, k in done]})
        self.con.register("_created_page", table)
        try:
            self.con.execute("INSERT INTO created SELECT change_id, contact_id, 1 "
                             "FROM _created_page")
        finally:
            self.con.unregister("_created_page")

    def _contact(self, row: dict[str, Any], fields_by_label: dict[str, str | None]) -> None:
        if self.abort.is_set():
            return
        body, mask, note = _prepared(row, fields_by_label)
        try:
            if row["action"] == "create":
                self.wrote()
                contact, _ = self.client.upsert_contact(body, duplicate_option="Email")
            else:
                if not row.get("contact_id"):
                    self.record(row, "failed_permanent",
                                error="update without a contact id (changeset defect)")
                    return
                if not mask:  # everything it would set was left out (missing custom fields)
                    self.record(row, "succeeded", error=note)
                    return
                self.wrote()
                contact = self.client.update_contact(row["contact_id"], body, mask)
        except Exception as e:  # noqa: BLE001 - every failure is a ledger row, never lost
            self.record_error(row, e)
            return
        contact_id = str(contact.get("id")) if contact.get("id") is not None else None
        if row["action"] == "create" and contact_id:
            with self._lock:
                self.created_now.append((row["change_id"], contact_id))
        self.record(row, "succeeded", contact_id=contact_id, error=note,
                    keap_update_time=contact.get("update_time"))

    # -- step 4: tags ------------------------------------------------------------------------
    def _resolve_tags(self, tag_ids: dict[str, str | None]) -> None:
        """Table `tag_rows`: the pending tag rows (but those whose tag could not be made, already
        recorded) with the tag id and contact id to use, resolved in SQL: the row's own ids, else
        the tag by name and the contact made by the create the row depends on (this run's reply
        or an earlier run's ledger row). `chunk` numbers the calls: per action and tag,
        `tag_batch` rows a call, in order of work."""
        names = [t for (t,) in self.con.execute(
            f"SELECT DISTINCT tag FROM pending WHERE action IN {TAG_ACTIONS} "
            "AND coalesce(tag_id, '') = ''").fetchall()]
        self.con.register("_tag_map", pa.table({
            "tag": pa.array(names, pa.string()),
            "resolved": pa.array([tag_ids.get(str(t or "").lower()) for t in names],
                                 pa.string()),
            "failed": pa.array([t in self.failed_tag_names for t in names], pa.bool_())}))
        try:
            self.con.execute(f"""
                CREATE OR REPLACE TABLE tag_rows AS
                WITH made AS (SELECT change_id, arg_max(contact_id, seq) AS contact_id
                              FROM created GROUP BY change_id),
                resolved AS (
                    SELECT p.*,
                           CASE WHEN coalesce(p.tag_id, '') <> '' THEN p.tag_id
                                ELSE m.resolved END AS use_tag_id,
                           CASE WHEN coalesce(p.contact_id, '') <> '' THEN p.contact_id
                                ELSE made.contact_id END AS use_contact_id
                    FROM pending p
                    LEFT JOIN _tag_map m ON coalesce(p.tag_id, '') = ''
                         AND m.tag IS NOT DISTINCT FROM p.tag
                    LEFT JOIN made ON made.change_id = p.depends_on
                    WHERE p.action IN {TAG_ACTIONS} AND NOT coalesce(m.failed, false))
                SELECT *, CASE WHEN use_tag_id IS NULL OR use_contact_id IS NULL THEN NULL
                          ELSE (row_number() OVER (
                                    PARTITION BY action, use_tag_id,
                                                 use_tag_id IS NULL OR use_contact_id IS NULL
                                    ORDER BY ord) - 1) // {self.tag_batch} END AS chunk
                FROM resolved ORDER BY ord""")
        finally:
            self.con.unregister("_tag_map")
        # one call = (action, tag, chunk), numbered per action in order of tag id then chunk
        self.con.execute("""
            CREATE OR REPLACE TABLE tag_work AS
            SELECT *, dense_rank() OVER (PARTITION BY action ORDER BY use_tag_id, chunk)
                      AS call
            FROM tag_rows WHERE chunk IS NOT NULL ORDER BY action, call, ord""")

    def _tags(self, tag_ids: dict[str, str | None]) -> None:
        if self.abort.is_set() or not self.con.execute(
                f"SELECT count(*) FROM pending WHERE action IN {TAG_ACTIONS}").fetchone()[0]:
            return
        self._resolve_tags(tag_ids)
        # rows no call can carry: recorded first (as a whole, before any tag call)
        for action in TAG_ACTIONS:
            for page in self._pages("tag_rows", "action = ? AND chunk IS NULL", [action]):
                for row in page:
                    if not row["use_tag_id"]:
                        if action == "tag_remove":  # Keap has no such tag: no contact has it
                            self.record(row, "succeeded",
                                        error="tag not in Keap: nothing to remove")
                        else:
                            self.record(row, "failed_permanent",
                                        error="tag has no id and no name")
                    else:
                        self.record(row, "failed_retryable",
                                    error="depends on failed create" if row.get("depends_on")
                                    else "no contact id (changeset defect)")
        # removals first, so an exclusive group never shows two of its tags at once; the calls
        # of one phase run in parallel under the pacer, a page of calls at a time
        calls_per_page = max(1, self.batch_rows // self.tag_batch)
        for action in TAG_ACTIONS:
            if self.abort.is_set():
                continue
            with ThreadPoolExecutor(max_workers=self.concurrency,
                                    thread_name_prefix="keap-tags") as pool:
                last = 0
                while not self.abort.is_set():
                    page = _dicts(self.con.execute(
                        "SELECT * FROM tag_work WHERE action = ? AND call > ? AND call <= ? "
                        "ORDER BY call, ord", [action, last, last + calls_per_page]))
                    if not page:
                        break
                    self.max_rows_fetched = max(self.max_rows_fetched, len(page))
                    last += calls_per_page
                    jobs: dict[int, list[tuple[dict[str, Any], str]]] = defaultdict(list)
                    for row in page:
                        jobs[row["call"]].append((row, str(row["use_contact_id"])))
                    list(pool.map(partial(self._tag_job, action), jobs.values()))

    def _tag_job(self, action: str, items: list[tuple[dict[str, Any], str]]) -> None:
        self._tag_call(action, str(items[0][0]["use_tag_id"]), items)

    def _tag_call(self, action: str, tag_id: str,
                  items: list[tuple[dict[str, Any], str]]) -> None:
        if self.abort.is_set():
            return
        ids = list(dict.fromkeys(cid for _, cid in items))
        self.wrote()
        try:
            if action == "tag_add":
                results = self.client.apply_tags(tag_id, ids, batch=self.tag_batch)
            else:
                self.client.remove_tags(tag_id, ids, batch=self.tag_batch)
                results = {cid: "SUCCESS" for cid in ids}
        except Exception as e:  # noqa: BLE001
            for row, cid in items:
                self.record_error(row, e, contact_id=cid, tag_id=tag_id)
            return
        for row, cid in items:
            outcome = results.get(cid)
            if outcome in ("SUCCESS", "DUPLICATE"):
                self.record(row, "succeeded", contact_id=cid, tag_id=tag_id)
            elif outcome == "CONTACT_NOT_FOUND":
                self.record(row, "failed_permanent", contact_id=cid, tag_id=tag_id,
                            http_status=200, error="contact not found in Keap")
            else:
                self.record(row, "failed_retryable", contact_id=cid, tag_id=tag_id,
                            http_status=200, error=f"no result for the contact ({outcome})")


def _custom_items(row: dict[str, Any]) -> list[dict[str, Any]]:
    if not row.get("body"):
        return []
    try:
        items = json.loads(row["body"]).get("custom_fields") or []
    except (json.JSONDecodeError, AttributeError):
        return []
    return [i for i in items if isinstance(i, dict)]


def _prepared(row: dict[str, Any], fields_by_label: dict[str, str | None]
              ) -> tuple[dict[str, Any], list[str], str | None]:
    """The request body and update mask to send: custom fields named by label get their Keap id;
    those Keap lacks (and may not create) are left out. Returns (body, mask, note)."""
    body = json.loads(row["body"]) if row.get("body") else {}
    mask = list(row.get("update_mask") or body.keys())
    note = None
    items = body.get("custom_fields")
    if isinstance(items, list):
        kept, missing = [], []
        for item in items:
            if isinstance(item, dict) and not item.get("id") and item.get("label"):
                fid = fields_by_label.get(str(item["label"]).strip().lower())
                if fid is None:
                    missing.append(str(item["label"]))
                    continue
                item = {"id": fid, "content": item.get("content")}
            elif isinstance(item, dict) and item.get("id"):
                item = {"id": str(item["id"]), "content": item.get("content")}
            kept.append(item)
        if missing:
            note = "custom fields not in Keap, left out: " + ", ".join(sorted(missing))
        if kept:
            body["custom_fields"] = kept
        else:
            body.pop("custom_fields", None)
            mask = [m for m in mask if m != "custom_fields"]
    return body, mask, note


def run_push(client: Any, root: Path | str, day: str | date, run_id: str, *,
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
        push = _Push(client, root, day, run_id, dry_run=dry_run, concurrency=concurrency,
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

    con = duckdb.connect()
    try:
        dead_letter(con, root).create_view("dead")
        where = (f"WHERE changeset_date = DATE '{date.fromisoformat(day).isoformat()}'"
                 if day is not None else "")
        return int(con.execute(f"SELECT count(*) FROM dead {where}").fetchone()[0])
    finally:
        con.close()


# -- the Dagster asset ---------------------------------------------------------------------------
@dg.asset(
    key=PUSH_KEY,
    deps=[CHANGESET_KEY],
    partitions_def=daily_snapshots,
    automation_condition=SYNC_CHAIN,
    group_name="sync",
    kinds={"keap", "parquet"},
    required_resource_keys={"keap", "storage"},
    pool="keap_push",
    tags={"talentvault/stage": "sync"},
    check_specs=[dg.AssetCheckSpec(
        "no_dead_letters", asset=PUSH_KEY,
        description="No change of this day was refused by Keap for good. A failure lists "
                    "the change ids; `SELECT * FROM sync.dead_letter` shows the reasons.")],
)
def keap_push(context: dg.AssetExecutionContext,
              config: KeapPushConfig) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Sends the day's Keap changes (sync/keap_changeset) to Keap: new contacts, changed fields
    and tag changes, never a duplicate contact and never a value a person added in Keap. Every
    write is recorded in the sync ledger (`sync.ledger`); writes that failed for a passing reason
    (rate limit, outage) are retried on the next run, and records Keap refuses (e.g. an invalid
    email) go to the dead letter (`sync.dead_letter`) with the reason. With `dry_run` nothing is
    written. Only one push runs at a time."""
    # runs killed mid-way (a push among them) end here as failed, their pool slots freed; the
    # killed push's ledger is compacted by run_push
    released = release_abandoned_runs(context.instance, by=f"push run {context.run_id}")
    if released:
        context.log.info(f"ended {len(released)} run(s) whose process was gone: "
                         + ", ".join(released))
    root = context.resources.storage.path()
    client = context.resources.keap.open()
    try:
        result = run_push(client, root, context.partition_key, context.run_id,
                          dry_run=config.dry_run, concurrency=config.concurrency,
                          tag_batch=config.tag_batch, logger=context.log)
    finally:
        client.close()
    dead_today = dead_letter_count(root, context.partition_key)
    dead_total = dead_letter_count(root)
    yield dg.MaterializeResult(metadata={
        **{k: v for k, v in result.counts().items()},
        "dry_run": result.dry_run,
        "dead_letters_today": dead_today,
        "dead_letters_total": dead_total,
        "created_tags": dg.MetadataValue.json(sorted(result.created_tags)),
        "created_custom_fields": dg.MetadataValue.json(sorted(result.created_custom_fields)),
        "ledger_file": dg.MetadataValue.path(result.ledger_file or str(
            parquet_path(root, context.run_id))),
        "summary": dg.MetadataValue.md(result.markdown()),
    })
    yield dg.AssetCheckResult(
        check_name="no_dead_letters", passed=dead_today == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"dead_letters": dead_today, "dead_letters_total": dead_total})
    if result.aborted:
        raise dg.Failure(description=result.aborted, metadata=result.counts())
    if result.sent and not result.succeeded and result.failed_retryable:
        raise dg.Failure(
            description=f"Keap took none of the {result.sent} writes (all failed for a passing "
                        "reason); they are retried on the next run",
            metadata=result.counts())

