"""The push streams its changeset: Python never holds more than `batch_rows` changes at once.

A unit test of `run_push` alone: real Parquet changeset, real DuckDB, real ledger files; only the
Keap client (the resource) is replaced by an in-memory fake that records every call, so a few
thousand changes run in seconds. The memory test measures the Python heap (tracemalloc) while
pushing a changeset whose bodies alone weigh several times the allowed peak, so a push that
loads the whole changeset as Python rows fails it.
"""

from __future__ import annotations

import itertools
import threading
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assets.sync.ledger import LedgerWriter
from assets.sync.push import run_push
from tests.e2e.sync_push_support import (
    DAY,
    check_each_once,
    create,
    ledger_rows,
    tag,
    update,
    write_changeset,
)

PAD = "x" * 4000  # a fat field value: 4 KB of body per contact write


class FakeKeap:
    """Stands in for `KeapClient` (same method names and return shapes); remembers the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.log: list[tuple[str, str, int]] = []   # (kind, tag id or contact id, ids in call)
        self.created: dict[str, str] = {}            # email -> contact id
        self.tags: dict[str, set[str]] = {}          # tag id -> contact ids holding it
        self._ids = itertools.count(100_000)
        self._lock = threading.Lock()

    def _call(self, kind: str, key: str, n: int = 1) -> None:
        with self._lock:
            self.calls += 1
            self.log.append((kind, key, n))

    def upsert_contact(self, body: dict[str, Any], duplicate_option: str = "Email"
                       ) -> tuple[dict[str, Any], bool]:
        email = body["email_addresses"][0]["email"]
        with self._lock:
            cid = self.created.setdefault(email, str(next(self._ids)))
        self._call("create", cid)
        return {"id": cid, "update_time": "2026-01-15T10:00:00.000Z"}, True

    def update_contact(self, contact_id: str, body: dict[str, Any], update_mask: list[str]
                       ) -> dict[str, Any]:
        self._call("update", contact_id)
        return {"id": contact_id, "update_time": "2026-01-15T10:00:00.000Z"}

    def apply_tags(self, tag_id: str, contact_ids: list[str], batch: int = 1000
                   ) -> dict[str, str]:
        self._call("tag_add", tag_id, len(contact_ids))
        with self._lock:
            self.tags.setdefault(tag_id, set()).update(contact_ids)
        return {cid: "SUCCESS" for cid in contact_ids}

    def remove_tags(self, tag_id: str, contact_ids: list[str], batch: int = 1000) -> None:
        self._call("tag_remove", tag_id, len(contact_ids))
        with self._lock:
            self.tags.setdefault(tag_id, set()).difference_update(contact_ids)

    def tag_pages(self):  # every tag row below carries its tag id: never listed
        raise AssertionError("tags were listed although every tag row has an id")


def changeset(root: Path, n_new: int, n_existing: int) -> list[dict[str, Any]]:
    """`n_new` creates, each tagged 'New' (tag 10, waiting on its create), and `n_existing`
    updates of contacts 1.., each losing tag 20 and gaining tag 30."""
    rows: list[dict[str, Any]] = []
    for i in range(n_new):
        email = f"new{i}@example.com"
        c = create(10_000 + i, email, given_name=f"N{i}", job_title=PAD)
        rows += [c, tag("tag_add", 10_000 + i, email, "New", tag_id="10",
                        depends_on=c["change_id"])]
    for i in range(1, n_existing + 1):
        email = f"old{i}@example.com"
        rows += [update(i, str(i), email, {"job_title": PAD + str(i)}),
                 tag("tag_remove", i, email, "Gone", contact_id=str(i), tag_id="20"),
                 tag("tag_add", i, email, "Kept", contact_id=str(i), tag_id="30")]
    write_changeset(root, rows)
    return rows


def test_pages_are_honoured_and_the_order_of_work_is_kept(tmp_path: Path) -> None:
    rows = changeset(tmp_path, n_new=230, n_existing=170)
    keap = FakeKeap()
    result = run_push(keap, tmp_path, DAY, "paged", concurrency=4, tag_batch=40,
                      batch_rows=50, record_audit=False)
    assert (result.sent, result.succeeded, result.failed) == (len(rows), len(rows), 0)
    check_each_once(tmp_path, rows)
    # never more than one page of changes in Python, and pages were really used
    assert 0 < result.max_rows_in_python <= 50

    kinds = [k for k, _, _ in keap.log]
    assert Counter(kinds) == {"create": 230, "update": 170,
                              "tag_remove": 5,            # 170 contacts / 40 a call
                              "tag_add": 6 + 5}           # tag 10: 230 / 40, tag 30: 170 / 40
    # every contact write before any tag call; every removal before any addition
    first_tag = kinds.index("tag_remove")
    assert set(kinds[:first_tag]) == {"create", "update"}
    assert set(kinds[first_tag:first_tag + 5]) == {"tag_remove"}
    assert set(kinds[first_tag + 5:]) == {"tag_add"}
    assert all(n <= 40 for k, _, n in keap.log if k.startswith("tag"))
    # the tag rows of created contacts got the ids their creates returned in this run
    assert keap.tags["10"] == set(keap.created.values()) and len(keap.created) == 230
    assert keap.tags["30"] == {str(i) for i in range(1, 171)}
    assert keap.tags["20"] == set()
    by_change = {r["change_id"]: r for r in ledger_rows(tmp_path)}
    created = {r["change_id"]: r["contact_id"] for r in rows if r["action"] == "create"}
    for r in rows:
        if r.get("depends_on"):
            assert by_change[r["change_id"]]["contact_id"] == by_change[r["depends_on"]][
                "contact_id"]
    assert all(by_change[c]["contact_id"] for c in created)

    # a re-run sends nothing, whatever the page size
    again = FakeKeap()
    rerun = run_push(again, tmp_path, DAY, "paged-2", batch_rows=7, record_audit=False)
    assert again.log == [] and rerun.skipped_succeeded == len(rows)


def test_a_killed_runs_creates_reach_their_tag_rows_through_the_ledger(tmp_path: Path) -> None:
    """Creates recorded by an earlier run of the day (in the ledger, not in this run's memory)
    still give their contact ids to the tag rows waiting on them."""
    changeset(tmp_path, n_new=30, n_existing=0)
    first = FakeKeap()
    first.apply_tags = None  # type: ignore[assignment]  # the first run dies at its tag calls
    res = run_push(first, tmp_path, DAY, "first", tag_batch=7, batch_rows=8,
                   record_audit=False)
    assert res.by_action["create"]["succeeded"] == 30 and res.failed_retryable == 30
    second = FakeKeap()
    res2 = run_push(second, tmp_path, DAY, "second", tag_batch=7, batch_rows=8,
                    record_audit=False)
    assert [k for k, _, _ in second.log] == ["tag_add"] * 5
    assert res2.succeeded == 30 and second.tags["10"] == set(first.created.values())


def test_python_heap_stays_bounded_by_the_page_not_the_changeset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak Python heap of the push up to the end of its writes (the moment the ledger's WAL is
    compacted: that compaction is the ledger module's and is measured apart, see
    docs/sync.md). Loading the changeset as Python rows peaks at ~15 MB here; streaming ~1.5."""
    rows = changeset(tmp_path, n_new=1500, n_existing=500)
    body_bytes = sum(len(r.get("body") or "") for r in rows)
    del rows
    peaks: list[int] = []
    compact = LedgerWriter.compact

    def measured_compact(self: LedgerWriter) -> Path | None:
        peaks.append(tracemalloc.get_traced_memory()[1])
        return compact(self)

    monkeypatch.setattr(LedgerWriter, "compact", measured_compact)
    keap = FakeKeap()
    tracemalloc.start()
    try:
        result = run_push(keap, tmp_path, DAY, "heap", concurrency=4, tag_batch=100,
                          batch_rows=100, record_audit=False)
    finally:
        tracemalloc.stop()
    assert len(peaks) == 1
    peak = peaks[0]
    assert result.succeeded == 1500 * 2 + 500 * 3 and result.failed == 0
    limit = 3 * 1024 * 1024
    # the bodies alone (before any dict overhead) are several times the allowed peak
    assert body_bytes > 2.5 * limit
    assert peak < limit, f"Python heap peaked at {peak / 2**20:.1f} MB for {result.sent} changes"


def test_a_change_listed_twice_is_written_once(tmp_path: Path) -> None:
    c = create(1, "twice@example.com", given_name="Twice")
    t = tag("tag_add", 1, "twice@example.com", "New", tag_id="10", depends_on=c["change_id"])
    write_changeset(tmp_path, [c, t, c, t])
    keap = FakeKeap()
    result = run_push(keap, tmp_path, DAY, "dup", batch_rows=1, record_audit=False)
    assert (result.changes, result.sent, result.not_attempted) == (4, 2, 0)
    assert [k for k, _, _ in keap.log] == ["create", "tag_add"]
    assert result.max_rows_in_python == 1
