"""The Keap push and erasure (`talentvault forget`) against the sandbox over real sockets: a push
holds the erasure lock (shared) for its run, so an erasure waits for a running push and a push
waits for a running erasure; and a push re-checks the suppression list, so a changeset built
before a person was erased sends nothing about them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb

from assets.identity import suppressed
from assets.recovery.erasure import forget
from assets.sync.ledger import wal_dir
from assets.sync.push import run_push
from orchestration.storage import suppression
from orchestration.storage.derived import partition_glob
from tests.conftest import Sandbox
from tests.e2e.sync_push_support import (
    DAY,
    client,
    ledger_rows,
    standard_changes,
    write_changeset,
    writes,
)

CATEGORIES = {"Active Applicant": "Pipeline", "Old Stage": None}
FIELDS = {"Current Stage": {"field_type": "TEXT", "on_missing": "create"}}


def changeset_emails(root: Path) -> set[str]:
    glob = partition_glob(root, "keap_changeset", DAY, "sync")
    con = duckdb.connect()
    try:
        return {r[0] for r in con.execute(
            f"SELECT match_email FROM read_parquet('{glob}')"
        ).fetchall()}
    finally:
        con.close()


def test_a_changeset_built_before_an_erasure_sends_nothing_about_the_person(
        sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.rate_limits(False)
    rows, _ = standard_changes(sandbox, n_new=4, n_existing=3)
    write_changeset(tmp_path, rows, tag_categories=CATEGORIES, custom_fields=FIELDS)
    # new1 (a create and its tag) and contact 2 (an update, a tag added, a tag removed) are on
    # the suppression list: what `forget` writes first, before it rewrites any file (a forget
    # stopped after that step leaves the changeset as it was)
    suppressed.add_many(tmp_path, [("email", "New1@Example.com"), ("keap_contact", "2")])
    # new2 is forgotten for real: the erasure also removes their rows from the changeset
    forget(tmp_path, email="new2@example.com")
    assert "new2@example.com" not in changeset_emails(tmp_path)

    with client(sandbox) as c:
        result = run_push(c, tmp_path, DAY, "after-forget", tag_batch=10)
    assert result.skipped_suppressed == 2 + 3
    assert result.failed == 0 and result.changes == len(rows) - 2
    assert result.sent == len(rows) - 2 - 5
    assert "about a person erased" in result.markdown()

    contacts = sandbox.records("keap", "contacts")
    emails = {e["email"].lower(): c for c in contacts for e in c.get("email_addresses") or []}
    assert "new1@example.com" not in emails and "new2@example.com" not in emails
    assert {"new0@example.com", "new3@example.com"} <= set(emails)
    two = next(c for c in contacts if c["id"] == "2")
    old_stage = next(t["id"] for t in sandbox.records("keap", "tags") if t["name"] == "Old Stage")
    assert "job_title" not in two or two["job_title"] is None  # its update was not sent
    assert [str(t) for t in two["tag_ids"]] == [str(old_stage)]  # nor its tag calls
    assert not [w for w in writes(sandbox) if w["path"].endswith("/contacts/2")]
    one = next(c for c in contacts if c["id"] == "1")
    assert one["job_title"] == "Engineer 1"  # everyone else was written
    # nothing about them in the ledger either
    led = ledger_rows(tmp_path)
    assert not [r for r in led if r["contact_id"] == "2" or r["profile_id"] in (1001, 1002)]


def test_an_erasure_waits_for_a_running_push_and_a_push_for_a_running_erasure(
        sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.rate_limits(False)
    rows, _ = standard_changes(sandbox, n_new=14, n_existing=4)
    write_changeset(tmp_path, rows, tag_categories=CATEGORIES, custom_fields=FIELDS)
    done: dict[str, float] = {}
    results = []

    def push(run_id: str) -> None:
        # ~5 calls a second: the push runs for several seconds
        with client(sandbox, windows=[(5, 1.0)]) as c:
            results.append(run_push(c, tmp_path, DAY, run_id, concurrency=2, tag_batch=50))
        done[run_id] = time.monotonic()

    t = threading.Thread(target=push, args=("slow",))
    t.start()
    deadline = time.monotonic() + 60
    while not (wal_dir(tmp_path) / "slow.jsonl").exists():  # the push is writing
        assert time.monotonic() < deadline and t.is_alive(), "the push never started writing"
        time.sleep(0.02)
    report = forget(tmp_path, email="new13@example.com")
    done["forget"] = time.monotonic()
    t.join(timeout=120)
    assert not t.is_alive()
    assert done["forget"] >= done["slow"], "the erasure ran while the push was writing"
    assert results[0].failed == 0 and results[0].succeeded == len(rows)
    assert report.rows_removed and "new13@example.com" not in changeset_emails(tmp_path)

    # the other way round: a push started during an erasure waits for it (no deadlock)
    sandbox.admin("DELETE", "/requests")
    with suppression.erasing(tmp_path):
        t = threading.Thread(target=push, args=("after",))
        t.start()
        time.sleep(1.0)
        assert t.is_alive() and sandbox.requests("keap") == []
        released = time.monotonic()
    t.join(timeout=60)
    assert not t.is_alive() and done["after"] >= released
    assert results[1].sent == 0 and results[1].skipped_succeeded == len(rows) - 2
