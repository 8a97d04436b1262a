"""Snapshot partitions and the state-as-of SQL, on real Parquet files and real DuckDB."""

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from assets.catalog import read_only, views
from assets.keap.schemas import contacts
from orchestration.storage.seals import sha256_file
from orchestration.storage.snapshots import SnapshotStorage


def _contact(id_, name, ts, **extra):
    return {"id": id_, "given_name": name, "update_time": ts, **extra}


@pytest.fixture
def storage(tmp_path: Path) -> SnapshotStorage:
    return SnapshotStorage(root=str(tmp_path))


def _write(storage, day, docs, deletes=(), run="r1", mode="incremental"):
    w = storage.writer(contacts, day, mode=mode, run_id=run, window=(None, None))
    for page in docs:
        w.add(page)
    if deletes:
        w.add_deletes(deletes, datetime.fromisoformat(f"{day}T23:59:59.999+00:00"))
    return w.commit()


def test_partition_is_deduplicated_sorted_and_described_by_its_manifest(storage):
    pages = [[_contact("2", "B", "2026-01-05T10:00:00Z"), _contact("1", "A", "2026-01-05T09:00Z")],
             [_contact("2", "B", "2026-01-05T10:00:00Z")]]  # the same version on two pages
    m = _write(storage, "2026-01-05", pages, deletes=["9"], mode="full")
    assert (m["rows"], m["upserts"], m["deletes"], m["fetched"]) == (3, 2, 1, 3)
    part = storage.partition_dir("keap", "contacts", "2026-01-05")
    for f in m["files"]:
        assert sha256_file(part / f["file"]) == f["sha256"]
    ids = duckdb.sql(f"SELECT id FROM '{part}/*.parquet'").fetchall()
    assert [i[0] for i in ids] == ["1", "2", "9"]
    assert not list(part.parent.glob(".staging-*"))


def test_rerun_replaces_partition_with_identical_content(storage):
    pages = [[_contact("1", "A", "2026-01-05T09:00:00Z", tag_ids=["3"])]]
    m1 = _write(storage, "2026-01-05", pages, run="first")
    m2 = _write(storage, "2026-01-05", pages, run="second")
    assert m1["content_fingerprint"] == m2["content_fingerprint"]
    assert m1["run_id"] != m2["run_id"]
    assert len(list(storage.entity_dir("keap", "contacts").iterdir())) == 1


def test_failed_partition_leaves_nothing_behind(storage):
    w = storage.writer(contacts, "2026-01-05", mode="full", run_id="r", window=(None, None))
    w.add([_contact("1", "A", "2026-01-05T09:00:00Z")])
    w.abort()
    assert not any(storage.entity_dir("keap", "contacts").iterdir())


def test_state_as_of_follows_versions_and_deletes(storage, tmp_path):
    _write(storage, "2026-01-05", [[_contact("1", "A", "2026-01-05T09:00:00Z"),
                                    _contact("2", "B", "2026-01-05T10:00:00Z")]], mode="full")
    _write(storage, "2026-01-06", [[_contact("2", "B2", "2026-01-06T10:00:00Z")]],
           deletes=["1"])
    con = views.open_catalog(tmp_path)
    now = con.execute("SELECT id, given_name FROM keap.contacts ORDER BY id").fetchall()
    assert now == [("2", "B2")]
    then = con.execute("SELECT id, given_name FROM keap.contacts_as_of('2026-01-05T23:00:00Z') "
                       "ORDER BY id").fetchall()
    assert then == [("1", "A"), ("2", "B")]
    before = con.execute("SELECT count(*) FROM keap.contacts_as_of('2026-01-05T09:30:00Z')")
    assert before.fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM keap.contacts_history").fetchone()[0] == 4


@pytest.mark.parametrize("statement", [
    "COPY (SELECT 1) TO '/tmp/x.csv'", "CREATE TABLE t AS SELECT 1", "ATTACH 'x.db'",
    "SET threads = 1", "SELECT 1; DROP VIEW keap.contacts", "INSTALL httpfs",
    "INSERT INTO keap.contacts VALUES (1)",
])
def test_sql_entry_point_refuses_writes(storage, tmp_path, statement):
    _write(storage, "2026-01-05", [[_contact("1", "A", "2026-01-05T09:00:00Z")]], mode="full")
    con = views.open_catalog(tmp_path)
    with pytest.raises(read_only.ReadOnlyViolation, match="not allowed"):
        read_only.check_read_only(con, statement)


def test_catalog_file_opens_read_only_in_plain_duckdb(storage, tmp_path):
    _write(storage, "2026-01-05", [[_contact("1", "A", "2026-01-05T09:00:00Z")]], mode="full")
    path = views.write_catalog_file(tmp_path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM keap.contacts").fetchone()[0] == 1


def test_landing_syncs_files_and_folders_around_the_rename(storage, monkeypatch):
    """A power cut never leaves a manifest pointing at empty files: every part file and the
    manifest are fsynced, then their folder, before the rename; the parent after it."""
    import os

    events: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src, dst):
        events.append(("rename", f"{src} -> {dst}"))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    m = _write(storage, "2026-01-05", [[_contact("1", "A", "2026-01-05T09:00:00Z")]], mode="full")
    part = storage.partition_dir("keap", "contacts", "2026-01-05")
    swap = next(i for i, (kind, what) in enumerate(events)
                if kind == "rename" and what.endswith(f"-> {part}"))
    staging = Path(events[swap][1].split(" -> ")[0])
    before = {what for kind, what in events[:swap] if kind == "fsync"}
    after = {what for kind, what in events[swap:] if kind == "fsync"}
    for f in m["files"]:
        assert str(staging / f["file"]) in before
    assert {str(staging / "_manifest.json"), str(staging)} <= before
    assert str(part.parent) in after                        # the rename itself is durable
    assert str(storage.path() / "seals" / "ledger.jsonl") in after   # and its seal record
