"""The rest of the Greenhouse candidate record backed up (issue 17) over the sandbox's API:
scorecards, notes, attachments and applied tags incrementally over three days, their reference
data daily in full; the SQL door's as-of and current views equal the sandbox's truth each day;
attachment files behind TALENTVAULT_GREENHOUSE_ATTACHMENT_FILES, a failed download recorded
while the rest of the partition lands; `forget` leaves no byte of a person quoted in a note."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from assets.extract import materialization_metadata
from assets.greenhouse import attachment_files
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import iso
from sandbox.world.ats_history import file_bytes
from tests.e2e.conftest import ALL_SPECS, World, backed_up_docs, served_world, strip

INCREMENTAL = ("scorecards", "notes", "attachments", "applied_candidate_tags")
REFERENCE = ("candidate_tags", "custom_fields", "close_reasons", "job_posts")
SPECS = [s for s in ALL_SPECS if s.resource == "greenhouse"
         and s.schema.entity in INCREMENTAL + REFERENCE]
ATTACHMENTS = [s for s in SPECS if s.schema.entity == "attachments"]


def end_of_day(w: World) -> str:
    return iso(w.store.now() - timedelta(milliseconds=1))


def truth(w: World, entity: str) -> dict[str, dict]:
    return strip("greenhouse", entity, w.sandbox_docs("greenhouse", entity))


def backed_up(w: World, entity: str, as_of: str) -> dict[str, dict]:
    return strip("greenhouse", entity, backed_up_docs(w.root, "greenhouse", entity, as_of))


def test_three_days_incremental_and_the_views_equal_the_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(attachment_files.SETTING, raising=False)
    with served_world(tmp_path, candidates=120, seed=9) as w:
        first = w.backup(w.day(), SPECS)
        assert all(m["mode"] == "full" for m in first.values())
        days = [(end_of_day(w), {e: truth(w, e) for e in INCREMENTAL + REFERENCE})]
        changed = {"scorecards": 0, "notes": 0}
        for _ in range(2):
            w.tick(1)
            day = w.backup(w.day(), SPECS)
            for entity in INCREMENTAL:
                assert day[f"greenhouse/{entity}"]["mode"] == "incremental", entity
            for entity in REFERENCE:
                assert day[f"greenhouse/{entity}"]["mode"] == "full", entity
            # the day's changes, not the whole account
            for entity in changed:
                m = day[f"greenhouse/{entity}"]
                assert m["upserts"] < len(days[0][1][entity]) / 4, (entity, m["upserts"])
                changed[entity] += m["upserts"]
            days.append((end_of_day(w), {e: truth(w, e) for e in INCREMENTAL + REFERENCE}))
        assert all(changed.values()), changed
        for as_of, expected in days:
            for entity, docs in expected.items():
                assert docs, entity
                assert backed_up(w, entity, as_of) == docs, (entity, as_of)
        assert "attachment_files" not in day["greenhouse/attachments"]   # the setting is off
        # the SQL door names them like every backup: current, history, as of
        query = ("SELECT (SELECT count(*) FROM greenhouse.notes), "
                 "(SELECT count(*) FROM greenhouse.scorecards_history), "
                 f"(SELECT count(*) FROM greenhouse.notes_as_of('{days[0][0]}'))")
        out = subprocess.run([sys.executable, "-m", "orchestration.cli", "sql", query,
                              "--format", "csv"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "TALENTVAULT_DATA_DIR": str(w.root)})
        assert out.returncode == 0, out.stderr
        notes, history, notes_then = map(int, out.stdout.splitlines()[1].split(","))
        assert (notes, notes_then) == (len(days[-1][1]["notes"]), len(days[0][1]["notes"]))
        assert history >= len(days[-1][1]["scorecards"])


def test_attachment_files_land_with_one_failed_download_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: one attachment's file is gone from the vendor's storage (404 NoSuchKey). The
    partition lands with every attachment record and every other file; the manifest and the
    materialization name the one that failed and why."""
    monkeypatch.setenv(attachment_files.SETTING, "1")
    with served_world(tmp_path, candidates=40, seed=4) as w:
        docs = w.sandbox_docs("greenhouse", "attachments")
        lost = sorted(docs, key=int)[len(docs) // 2]
        w.admin("PUT", "/files/greenhouse/lost", json={"ids": [int(lost)]})
        m = w.backup(w.day(), ATTACHMENTS)["greenhouse/attachments"]
        files = m["attachment_files"]
        assert m["upserts"] == len(docs)
        assert (files["downloaded"], files["failed"]) == (len(docs) - 1, 1)
        assert files["failed_sample"] == [{"id": int(lost), "reason": "HTTP 404 NoSuchKey"}]
        expected = {int(i): hashlib.sha256(file_bytes(d)).hexdigest()
                    for i, d in docs.items() if i != lost}
        assert {f["id"]: f["sha256"] for f in m["attachment_file_list"]} == expected
        assert files["bytes"] == sum(f["bytes"] for f in m["attachment_file_list"])
        part = w.root / "greenhouse" / "attachments" / f"snapshot_date={w.day()}"
        rows = duckdb.connect().execute(
            f"SELECT id, file_sha256, file_bytes, sha256(file_content) "
            f"FROM read_parquet('{part}/*.parquet')").fetchall()
        assert len(rows) == len(docs)
        for id_, sha, size, content_sha in rows:
            if id_ == int(lost):
                assert (sha, size, content_sha) == (None, None, None)
            else:
                assert sha == content_sha == expected[id_] and size > 0
        storage = SnapshotStorage(root=str(w.root))
        shown = materialization_metadata(ATTACHMENTS[0], storage, m)["attachment_files"].data
        assert shown["failed_sample"][0]["id"] == int(lost) and "attachment_file_list" not in shown
        # the same day again: the same partition
        again = w.backup(w.day(), ATTACHMENTS)["greenhouse/attachments"]
        assert again["content_fingerprint"] == m["content_fingerprint"]
        monkeypatch.setenv(attachment_files.SETTING, "maybe")
        with pytest.raises(attachment_files.SettingError, match="set it to 1"):
            w.backup(w.day(), ATTACHMENTS)


def test_forget_reaches_greenhouse_notes_that_quote_the_person(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assets.recovery.erasure import forget

    monkeypatch.setenv(attachment_files.SETTING, "1")
    with served_world(tmp_path, candidates=80, seed=8) as w:
        gh = [s for s in ALL_SPECS if s.resource == "greenhouse"]
        w.backup(w.day(), gh)
        notes = w.sandbox_docs("greenhouse", "notes").values()
        cands = w.sandbox_docs("greenhouse", "candidates")
        email = next(e["value"] for n in notes for e in cands[str(n["candidate_id"])][
            "email_addresses"] if e["value"] in (n["body"] or ""))
        forget(w.root, email=email)
        files = [p for p in w.root.rglob("*") if p.is_file()]
        assert files and not any(email.encode() in p.read_bytes() for p in files)
        con = duckdb.connect()
        for folder in sorted((w.root / "greenhouse").iterdir()):
            rows = con.execute(
                f"SELECT count(*) FROM read_parquet('{folder}/*/*.parquet') t "
                "WHERE contains(lower(CAST(to_json(t) AS VARCHAR)), ?)",
                [email.lower()]).fetchone()[0]
            assert rows == 0, folder.name
