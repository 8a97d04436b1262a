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
"""

import json
import logging
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.backups import audit
from assets.identity.storage import partition_dir, read_manifest
from assets.sync.ledger import (
    LedgerWriter,
    PushLock,
    attempts_so_far,
    compact_abandoned,
    latest_status_sql,
    ledger_relation,
    parquet_path,
)
from orchestration.http import ApiError, MalformedResponseError
from orchestration.partitions import daily_snapshots

log = logging.getLogger("talentvault.sync.push")

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

    @property
    def failed(self) -> int:
        return self.failed_retryable + self.failed_permanent

    @property
    def skipped(self) -> int:
        return self.skipped_succeeded + self.skipped_dead_letter + self.not_attempted

    def counts(self) -> dict[str, int | float]:
        return {"changes": self.changes, "sent": self.sent, "succeeded": self.succeeded,
                "failed": self.failed, "failed_retryable": self.failed_retryable,
                "failed_permanent": self.failed_permanent, "skipped": self.skipped,
                "skipped_already_succeeded": self.skipped_succeeded,
                "skipped_dead_letter": self.skipped_dead_letter,
                "not_attempted": self.not_attempted, "api_calls": self.api_calls,
                "write_calls": self.write_calls,
                "duration_seconds": round(self.duration_seconds, 3)}

    def markdown(self) -> str:
        mode = " (dry run: nothing written)" if self.dry_run else ""
        lines = [f"**Keap push for {self.day}**{mode}: {self.sent} sent, {self.succeeded} "
                 f"succeeded, {self.failed_retryable} to retry next run, {self.failed_permanent} "
                 f"dead-lettered, {self.skipped} skipped; {self.api_calls} API calls "
                 f"({self.write_calls} writes) in {self.duration_seconds:.1f}s.", "",
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
def load_changes(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> list[dict[str, Any]]:
    folder = partition_dir(root, CHANGESET, day, SOURCE)
    if not (folder / "_manifest.json").exists():
        raise FileNotFoundError(
            f"no Keap changeset for {day} at {folder}: materialize sync/keap_changeset for that "
            "day first")
    rows = con.sql(f"""
        SELECT * FROM read_parquet('{folder}/*.parquet', hive_partitioning = false)
        ORDER BY CASE action WHEN 'create' THEN 0 WHEN 'update' THEN 1
                             WHEN 'tag_remove' THEN 2 ELSE 3 END, change_id""").to_arrow_table()
    return rows.to_pylist()


def _group(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), max(1, size)):
        yield items[i:i + size]


# -- the push ------------------------------------------------------------------------------------
class _Push:
    def __init__(self, client: Any, root: Path, day: str, run_id: str, *, dry_run: bool,
                 concurrency: int, tag_batch: int, logger: logging.Logger | Any):
        self.client, self.root, self.day, self.run_id = client, Path(root), day, run_id
        self.dry_run, self.concurrency = dry_run, max(1, concurrency)
        self.tag_batch = max(1, min(1000, tag_batch))
        self.log = logger
        self.result = PushResult(day=day, run_id=run_id, dry_run=dry_run)
        self.writer = LedgerWriter(self.root, run_id)
        self.attempts: dict[str, int] = {}
        self.contact_of_create: dict[str, str] = {}  # create change_id -> Keap contact id
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
            error=error, attempt=self.attempts.get(cid, 0) + 1, run_id=self.run_id,
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
            if status != "succeeded":
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

    # -- main --------------------------------------------------------------------------------
    def run(self) -> PushResult:
        started = time.monotonic()
        calls_before = self.client.calls if self.client is not None else 0
        r = self.result
        con = duckdb.connect(config={"threads": 2})
        try:
            if not self.dry_run:
                r.compacted_runs = compact_abandoned(self.root)
            changes = load_changes(con, self.root, self.day)
            r.changes = len(changes)
            pending = self._pending(con, changes)
        finally:
            con.close()
        for row in pending:
            r.by_action[row["action"]]["pending"] += 1
        if self.dry_run:
            r.not_attempted = len(pending)
            r.duration_seconds = time.monotonic() - started
            return r
        try:
            contacts = [c for c in pending if c["action"] in CONTACT_ACTIONS]
            tags = [c for c in pending if c["action"] in TAG_ACTIONS]
            fields_by_label = self._ensure_custom_fields(contacts)
            tag_ids = self._ensure_tags(tags)
            self._contacts(contacts, fields_by_label)
            self._tags(tags, tag_ids)
        finally:
            path = self.writer.compact()
            r.ledger_file = str(path) if path else None
            r.api_calls = (self.client.calls - calls_before)
            r.duration_seconds = time.monotonic() - started
        r.not_attempted = len(pending) - r.sent
        return r

    def _pending(self, con: duckdb.DuckDBPyConnection,
                 changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Changes not yet written; loads attempt numbers and the ids of contacts created by
        earlier runs (for tag rows waiting on a create)."""
        r = self.result
        ledger_relation(con, self.root)
        latest = dict(con.execute(
            f"SELECT change_id, status FROM ({latest_status_sql()})").fetchall())
        # "Already written" means written for this day's changeset (a re-run, or the rest of a
        # killed run). A change id is a hash of what to do, so the same id can come back on a
        # later day (a tag removed on day 1, put back by a human, to be removed again on day 9):
        # that is a new write, not a duplicate.
        succeeded = {c for (c,) in con.execute(
            "SELECT DISTINCT change_id FROM ledger WHERE status = 'succeeded' "
            "AND changeset_date = CAST(? AS DATE)", [self.day]).fetchall()}
        self.attempts = attempts_so_far(con, self.root)
        self.contact_of_create = dict(con.execute(
            "SELECT change_id, any_value(contact_id) FROM ledger WHERE action = 'create' "
            "AND status = 'succeeded' AND contact_id IS NOT NULL "
            "AND changeset_date = CAST(? AS DATE) GROUP BY change_id", [self.day]).fetchall())
        seen: set[str] = set()
        pending = []
        for row in changes:
            cid = row["change_id"]
            if cid in seen:
                continue  # one change id is one write, however often it is listed
            seen.add(cid)
            if cid in succeeded:
                r.skipped_succeeded += 1
            elif latest.get(cid) == "failed_permanent":
                r.skipped_dead_letter += 1
            else:
                pending.append(row)
        return pending

    # -- step 2: tags, categories, custom fields ---------------------------------------------
    def _ensure_tags(self, rows: list[dict[str, Any]]) -> dict[str, str | None]:
        """Tag name (lower case) -> Keap tag id, for tag rows without a known id. Tags to add are
        created when missing (in their category); a tag to remove that Keap lacks maps to None.
        Rows whose tag cannot be made are recorded as failed here."""
        names = {r["tag"] for r in rows if not r.get("tag_id") and r.get("tag")}
        if not names:
            return {}
        adds = {r["tag"] for r in rows if r["action"] == "tag_add" and not r.get("tag_id")}
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
                for row in rows:
                    if row.get("tag") == name and not row.get("tag_id"):
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

    def _ensure_custom_fields(self, rows: list[dict[str, Any]]) -> dict[str, str | None]:
        """Custom field label (lower case) -> Keap id, for body items that name a field by label
        (`{"label": ..., "content": ...}` without an id). Missing fields are created when the
        mapping says `on_missing: create`, else reported (and left out of the write)."""
        labels: set[str] = set()
        for row in rows:
            for item in _custom_items(row):
                if not item.get("id") and item.get("label"):
                    labels.add(str(item["label"]))
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
    def _contacts(self, rows: list[dict[str, Any]], fields_by_label: dict[str, str | None]
                  ) -> None:
        if not rows:
            return
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="keap-push") as pool:
            list(pool.map(lambda row: self._contact(row, fields_by_label), rows))

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
                self.contact_of_create[row["change_id"]] = contact_id
        self.record(row, "succeeded", contact_id=contact_id, error=note,
                    keap_update_time=contact.get("update_time"))

    # -- step 4: tags ------------------------------------------------------------------------
    def _tags(self, rows: list[dict[str, Any]], tag_ids: dict[str, str | None]) -> None:
        if not rows or self.abort.is_set():
            return
        recorded = self._recorded_ids()
        jobs: list[tuple[str, str, list[tuple[dict[str, Any], str]]]] = []
        for action in TAG_ACTIONS:
            by_tag: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
            for row in rows:
                if row["action"] != action or row["change_id"] in recorded:
                    continue
                tag_id = row.get("tag_id") or tag_ids.get(str(row.get("tag") or "").lower())
                if not tag_id:
                    if action == "tag_remove":  # Keap has no such tag: no contact carries it
                        self.record(row, "succeeded", error="tag not in Keap: nothing to remove")
                    else:
                        self.record(row, "failed_permanent", error="tag has no id and no name")
                    continue
                contact_id = row.get("contact_id") or self.contact_of_create.get(
                    row.get("depends_on") or "")
                if not contact_id:
                    self.record(row, "failed_retryable",
                                error="depends on failed create" if row.get("depends_on")
                                else "no contact id (changeset defect)")
                    continue
                by_tag[str(tag_id)].append((row, str(contact_id)))
            for tag_id, items in sorted(by_tag.items()):
                jobs += [(action, tag_id, chunk) for chunk in _group(items, self.tag_batch)]
        # removals first, so an exclusive group never shows two of its tags at once; the calls
        # of one phase run in parallel under the pacer
        for action in TAG_ACTIONS:
            phase = [j for j in jobs if j[0] == action]
            if not phase or self.abort.is_set():
                continue
            with ThreadPoolExecutor(max_workers=self.concurrency,
                                    thread_name_prefix="keap-tags") as pool:
                list(pool.map(lambda j: self._tag_call(*j), phase))

    def _recorded_ids(self) -> set[str]:
        """Change ids given a ledger line in this run already (e.g. a tag whose creation
        failed)."""
        return {f["change_id"] for f in self.result.failures}

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
             logger: logging.Logger | Any = None, record_audit: bool = True) -> PushResult:
    """Apply changeset partition `day` to Keap (see the module docstring). Holds the push lock
    for its whole duration; records an audit event `sync_push`."""
    root = Path(root)
    day = day.isoformat() if isinstance(day, date) else str(day)
    lg = logger or log
    with PushLock(root):
        push = _Push(client, root, day, run_id, dry_run=dry_run, concurrency=concurrency,
                     tag_batch=tag_batch, logger=lg)
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

