"""The incremental identity build equals the full build over simulated days of recruiting life
(assets/identity/incremental.py): the sandbox's daily life (new candidates and applications,
edits, Greenhouse merges, deletions, Keap edits and deletions) backed up through its real HTTP
APIs, then every day's identity built incrementally on the data root and in full on a copy,
with the same profiles, quarantine and Keap contacts; after an erasure the next build is full."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assets.identity.build import build_identity
from assets.identity.config import IdentityConfig
from assets.identity.incremental import MODE_VAR, OUTPUT_NAMES
from tests.e2e.conftest import ALL_SPECS, World, served_world

SPECS = [s for s in ALL_SPECS if s.key.to_user_string() in (
    "greenhouse/candidates", "greenhouse/applications", "keap/contacts")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    with served_world(tmp_path_factory.mktemp("idinc"), candidates=200, seed=31) as w:
        yield w


def content(root: Path, day: str) -> dict[str, list[str]]:
    return {name: sorted(map(repr, duckdb.sql(
        f"SELECT * FROM read_parquet('{root}/identity/{name}/snapshot_date={day}/*.parquet')"
    ).fetchall())) for name in OUTPUT_NAMES}


def check_equal(w: World, day: str, tag: str, tmp: Path, mp: pytest.MonkeyPatch) -> dict:
    """Full on a copy of the root first (the original keeps its base), then incremental."""
    copy = tmp / f"full-{tag}"
    shutil.copytree(w.root, copy)
    mp.setenv(MODE_VAR, "full")
    build_identity(copy, day, IdentityConfig(), f"full-{tag}").close()
    mp.setenv(MODE_VAR, "auto")
    b = build_identity(w.root, day, IdentityConfig(), f"inc-{tag}")
    b.close()
    assert content(w.root, day) == content(copy, day), (tag, b.counts["build"])
    shutil.rmtree(copy)
    return b.counts


def test_incremental_equals_full_every_day(world: World, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    w, prev, regions = world, "", []
    for n in range(5):
        while w.day().isoformat() == prev:    # a day of life (the sandbox skips weekends)
            w.tick(1)
        day = prev = w.day().isoformat()
        w.backup(date.fromisoformat(day), SPECS, run_id=f"backup-{n}")
        counts = check_equal(w, day, str(n), tmp_path, monkeypatch)
        if n == 0:
            assert counts["build"] == "full: no earlier identity build"
            continue
        assert counts["build"].startswith("incremental on"), counts["build"]
        regions.append((counts["changed_candidates"], counts["region_candidates"],
                        counts["candidates"]))
    # every day changed something, and recomputed less than everyone (changed records count
    # the deleted ones, the region only those still there)
    assert all(changed > 0 and 0 < region < total for changed, region, total in regions), \
        regions
    # what the sandbox's life did shows in the profiles: merged-away ids and deletions
    merged = duckdb.sql(f"SELECT count(*) FROM read_parquet('{w.root}/identity/"
                        f"candidate_profiles/snapshot_date={prev}/*.parquet') "
                        "WHERE len(merged_candidate_ids) > 0").fetchall()[0][0]
    assert merged > 0


def test_after_an_erasure_the_next_build_is_full_and_the_person_is_gone(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`forget` rewrites the backup partitions the base read: the next build cannot trust its
    base and builds in full, equal to the full build, without the person."""
    from assets.recovery.erasure import forget

    w = world
    day = w.day().isoformat()
    if not (w.root / "identity" / "candidate_profiles" / f"snapshot_date={day}").exists():
        w.backup(date.fromisoformat(day), SPECS, run_id="backup-erasure")
        build_identity(w.root, day, IdentityConfig(), "before-erasure").close()
    glob = f"{w.root}/identity/candidate_profiles/snapshot_date={day}/*.parquet"
    profile_id, email = duckdb.sql(f"SELECT profile_id, email FROM read_parquet('{glob}') "
                                   "ORDER BY profile_id LIMIT 1").fetchall()[0]
    forget(w.root, email=email)
    counts: dict[str, Any] = check_equal(w, day, "forget", tmp_path, monkeypatch)
    assert counts["build"].startswith("full: a backup partition"), counts["build"]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}') WHERE profile_id = "
                      f"{profile_id} OR list_contains(emails, '{email}')").fetchall()[0][0] == 0
    # and the build after it is incremental again, on the day itself
    assert check_equal(w, day, "forget-2", tmp_path, monkeypatch)["build"] == \
        f"incremental on {day}"
