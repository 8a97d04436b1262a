"""Backups end to end: the sandbox over a real socket -> Parquet snapshots -> DuckDB views."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from assets.extract import run_extract
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import iso
from tests.e2e.conftest import ALL_SPECS, World, backed_up_docs, strip


def assert_views_equal_sandbox(w: World, as_of: str) -> None:
    for spec in ALL_SPECS:
        source, entity = spec.schema.source, spec.schema.entity
        expected = strip(source, entity, w.sandbox_docs(source, entity))
        actual = strip(source, entity, backed_up_docs(w.root, source, entity, as_of))
        missing, extra = expected.keys() - actual.keys(), actual.keys() - expected.keys()
        assert not missing and not extra, (
            f"{source}/{entity} as of {as_of}: missing ids {sorted(missing)[:5]}, "
            f"unexpected ids {sorted(extra)[:5]}")
        wrong = [i for i in expected if expected[i] != actual[i]]
        assert not wrong, (f"{source}/{entity} as of {as_of}: {len(wrong)} records differ, "
                           f"e.g. id {wrong[0]}")


def test_point_in_time_views_match_the_sandbox_every_day(sandbox_world: World):
    """Two simulated days of creates, updates, merges, deletions and human CRM edits, every
    entity of the three vendors (41: the whole candidate record): after each day's backup,
    `_as_of(end of day)` equals the sandbox's own state, field by field."""
    w = sandbox_world
    ends = {}
    first = w.day()
    manifests = w.backup(first, ALL_SPECS)
    assert all(m["mode"] == "full" for m in manifests.values())
    for _ in range(2):
        w.tick(1)
        day = w.day()
        manifests = w.backup(day, ALL_SPECS)
        assert manifests["keap/contacts"]["mode"] == "incremental"
        end = iso(w.store.now() - timedelta(milliseconds=1))
        assert_views_equal_sandbox(w, end)
        ends[day] = end
    # history holds deletions and merges as delete rows
    con = duckdb.connect()
    deletes = con.execute(
        f"SELECT count(*) FROM read_parquet('{w.root}/greenhouse/candidates/*/*.parquet') "
        "WHERE _op = 'delete'").fetchone()[0]
    tombstones = len(w.store.tombstones("greenhouse", "candidates"))
    assert deletes == tombstones > 0


def test_rerunning_a_partition_changes_nothing(sandbox_world: World):
    w = sandbox_world
    day = w.day()
    before = w.backup(day, run_id="again-1")
    after = w.backup(day, run_id="again-2")
    for key, m in before.items():
        assert after[key]["content_fingerprint"] == m["content_fingerprint"], key
        assert (after[key]["upserts"], after[key]["deletes"]) == (m["upserts"], m["deletes"])


def test_rerunning_an_old_partition_keeps_what_it_captured(sandbox_world: World):
    w = sandbox_world
    old_day = w.day() - timedelta(days=2)
    storage = SnapshotStorage(root=str(w.root))
    fingerprints = {s.key.to_user_string(): storage.manifest(s.schema.source, s.schema.entity,
                                                             old_day)["content_fingerprint"]
                    for s in ALL_SPECS}
    rerun = w.backup(old_day, run_id="backfill")
    for key, m in rerun.items():
        assert m["content_fingerprint"] == fingerprints[key], key


@pytest.mark.parametrize("entity", ["keap/contacts", "greenhouse/candidates"])
def test_api_calls_are_near_the_pagination_minimum(sandbox_world: World, entity):
    """A full snapshot pages the entity once: calls within 10% of ceil(records / page size)
    (plus the auth and model calls a client needs)."""
    w = sandbox_world
    spec = next(s for s in ALL_SPECS if s.key.to_user_string() == entity)
    n = len(w.sandbox_docs(spec.schema.source, spec.schema.entity))
    page = {"keap/contacts": 10, "greenhouse/candidates": 10}[entity]
    kw = {"keap": {"page_size": page}, "greenhouse": {"page_size": page}}
    clients = w.clients(**kw)
    storage = SnapshotStorage(root=str(w.root / "calls"))
    m = run_extract(spec, clients[spec.resource], storage, w.day(), "calls")
    overhead = 1  # Greenhouse's token, Keap's contact model
    minimum = -(-n // page) + overhead
    assert m["upserts"] == n
    assert minimum <= m["api_calls"] <= minimum * 1.1


def test_parallel_id_range_slices_capture_the_same_contacts(sandbox_world: World, tmp_path):
    """Keap contacts listed as 3 concurrent id-range slices: the same snapshot as one listing."""
    w = sandbox_world
    spec = next(s for s in ALL_SPECS if s.key.to_user_string() == "keap/contacts")
    one = w.backup(w.day(), specs=[spec], root=tmp_path / "one", keap={"page_size": 7})
    three = w.backup(w.day(), specs=[spec], root=tmp_path / "three",
                     keap={"page_size": 7, "concurrency": 3})
    assert three["keap/contacts"]["upserts"] == one["keap/contacts"]["upserts"] > 0
    assert three["keap/contacts"]["content_fingerprint"] == one["keap/contacts"][
        "content_fingerprint"]
