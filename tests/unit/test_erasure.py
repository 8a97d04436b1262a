"""Erasure pieces on tiny real files: whole-address matching, an interrupted swap, bad requests."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from assets.recovery import erasure
from assets.recovery.erasure.rewrite import fingerprint
from assets.recovery.erasure.rows import needle_pattern
from orchestration.storage.derived import write_partition


@pytest.mark.parametrize(("text", "hit"), [
    ("x a@b.co y", True), ('{"e":"a@b.co"}', True), ('"\\ta@b.co"', True),
    ('"\\u00a0a@b.co"', True), ("a@b.co.", True), ("xa@b.co", False), ("x.a@b.co", False),
    ("a@b.com", False), ("a@b.co.uk", False), ("a@b.co-op.org", False),
])
def test_whole_address_matching(text, hit):
    pattern = needle_pattern(["a@b.co"])
    assert bool(re.search(pattern, text)) is hit
    con = duckdb.connect()   # the same pattern in DuckDB's RE2
    assert con.execute("SELECT regexp_matches(?, ?)", [text, pattern]).fetchone()[0] is hit


def test_requests_are_checked(tmp_path):
    with pytest.raises(erasure.ErasureError, match="say whom to forget"):
        erasure.forget(tmp_path)
    with pytest.raises(erasure.ErasureError, match="unknown source 'ats'"):
        erasure.forget(tmp_path, source_ids={"ats": ["1"]})
    with pytest.raises(erasure.ErasureError, match="no @-sign"):
        erasure.forget(tmp_path, email="jane")


def _profiles(root, day="2026-01-01"):
    con = duckdb.connect()
    query = """SELECT * FROM (VALUES (1, 'a@b.co', [10]), (2, 'keep@b.co', [20]),
                                     (3, 'xa@b.co', [30])) t(profile_id, email, candidate_ids)"""
    return write_partition(con, root, "candidate_profiles", day, query, "profile_id",
                           run_id="r1")


def test_erases_derived_rows_by_address_and_recovers_an_interrupted_swap(tmp_path):
    _profiles(tmp_path)
    part = tmp_path / "identity" / "candidate_profiles" / "snapshot_date=2026-01-01"
    report = erasure.forget(tmp_path, email="A@B.co")
    assert report.rows_removed == 1 and report.files_rewritten == 1
    con = duckdb.connect()
    assert con.execute(f"SELECT list(profile_id ORDER BY profile_id) FROM "
                       f"read_parquet('{part}/*.parquet')").fetchone()[0] == [2, 3]
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["rows"] == 2 and manifest["erasures"][0]["rows_removed"] == 1
    assert manifest["content_fingerprint"] == fingerprint(
        con, sorted(part.glob("*.parquet")), backup=False)

    # a crash between the two renames of a swap: the finished staging folder is put in place
    staging = part.parent / f".erasing-{part.name}-0badc0de"
    part.rename(staging)
    again = erasure.forget(tmp_path, email="a@b.co")
    assert part.is_dir() and not staging.exists() and again.noop
    assert json.loads((part / "_manifest.json").read_text())["rows"] == 2


def test_dry_run_changes_nothing(tmp_path):
    _profiles(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    report = erasure.forget(tmp_path, email="a@b.co", apply=False)
    assert report.rows_removed == 1 and not report.applied and report.audit_event_id is None
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
             if p.name != "suppression.salt"}
    assert after == before
