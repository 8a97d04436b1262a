"""Crash safety of the reverse sync (Keap -> Greenhouse): a run in a child process is SIGKILLed
among its Greenhouse writes, then run again: every opted-out person's candidate carries the tag
once, every planned change is in the ledger once as succeeded, and the killed run's write-ahead
log is compacted by the next run."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import duckdb

from assets.sync.ledger import parquet_path, read_wal, run_wals, wal_dir
from assets.sync.mapping import DEFAULT_PATH, load_mapping
from assets.sync.reverse import run_reverse
from assets.sync.reverse.base import BOOK
from tests.e2e.conftest import served_world
from tests.e2e.sync_push_support import kill_at_wal_lines
from tests.e2e.test_sync_reverse import candidate, forward, next_day, people

REVERSE = """
reverse:
  fields:
    opted_out:
      from: email_opt_out
      to: "tag:Email Opt-Out"
      conflict: keap_wins
"""
# Greenhouse paced at 5 calls a second: the kill lands among the writes, not after them
SCRIPT = """
import sys
from pathlib import Path
from assets.sync.mapping import load_mapping
from assets.sync.reverse import run_reverse
from orchestration.resources import GreenhouseResource

root, day, mapping = sys.argv[1:4]
gh = GreenhouseResource(requests_per_window=5, window_seconds=1.0).open()
run_reverse(gh, Path(root), day, "crash", load_mapping(mapping).reverse)
print("finished")
"""


def reverse_until_killed(root: Path, day: str, mapping: Path, kill_after_lines: int) -> int:
    wal = wal_dir(root, BOOK) / "crash.jsonl"
    kill_at_wal_lines([sys.executable, "-c", SCRIPT, str(root), day, str(mapping)], wal,
                      kill_after_lines, "reverse sync")
    assert not parquet_path(root, "crash", BOOK).exists()
    return len(read_wal(wal, BOOK))


def test_sigkill_among_the_greenhouse_writes_then_rerun(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(Path(DEFAULT_PATH).read_text() + REVERSE)
    with served_world(tmp_path, candidates=30, seed=5) as w:
        d1 = w.day().isoformat()
        forward(w, d1, mapping, "1")
        who = people(w, d1)
        assert len(who) >= 8
        for _, contact_id, _ in who:      # everyone the push updated unsubscribes in Keap
            w.admin("POST", f"/keap/contacts/{contact_id}/email_status",
                    json={"status": "LIST_UNSUBSCRIBE"})
        d2 = next_day(w)
        forward(w, d2, mapping, "2")

        killed = reverse_until_killed(w.root, d2, mapping, kill_after_lines=3)
        assert 3 <= killed < len(who)
        gh = w.clients()["greenhouse"]
        try:
            final = run_reverse(gh, w.root, d2, "final", load_mapping(mapping).reverse)
            assert final.compacted_runs == ["crash"]
            assert final.failed_permanent == final.failed_retryable == 0, final.counts()
            # what the killed run recorded is not planned again
            assert killed + final.planned == len(who)
            for _, _, cid in who:
                tags = candidate(gh, cid)["tags"]
                assert tags.count("Email Opt-Out") == 1, cid
            # the tag on each candidate once (a write resent after the kill made no second)
            opt_out = next(t["id"] for t in gh.http.request("GET", "/v3/candidate_tags").json()
                           if t["name"] == "Email Opt-Out")
            applied = Counter(a["candidate_id"] for a in gh.http.request(
                "GET", "/v3/applied_candidate_tags").json() if a["candidate_tag_id"] == opt_out)
            assert {c: applied[c] for _, _, c in who} == {c: 1 for _, _, c in who}
        finally:
            gh.close()
        ledger = duckdb.sql(f"""SELECT change_id, run_id, status FROM read_parquet(
            '{w.root}/sync/reverse_ledger/*/*.parquet')""").fetchall()
        succeeded = Counter(c for c, _, s in ledger if s == "succeeded")
        assert len(succeeded) == len(who) and set(succeeded.values()) == {1}
        assert Counter(r for _, r, _ in ledger) == {"crash": killed, "final": final.planned}
        assert run_wals(w.root, BOOK) == []
        # and a re-run has nothing left to do
        gh = w.clients()["greenhouse"]
        try:
            again = run_reverse(gh, w.root, d2, "again", load_mapping(mapping).reverse)
        finally:
            gh.close()
        assert (again.planned, again.write_calls) == (0, 0)

