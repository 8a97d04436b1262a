"""The incremental changeset equals the full rebuild (assets/sync/changeset/incremental.py):
over simulated days of recruiting life with real pushes in between, people editing Keap
(an address moved to another contact, a contact deleted, a duplicate made, a field changed) and
same-day re-runs after a push, every day's incremental build writes the same changeset rows,
rejects and counts as a full build over a copy of the same data root."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assets.identity.build import build_identity
from assets.identity.config import IdentityConfig
from assets.sync.changeset import build_changeset
from assets.sync.changeset.incremental import MODE_VAR
from assets.sync.desired import write_desired
from assets.sync.mapping import load_mapping
from assets.sync.push import run_push
from tests.e2e.conftest import SYNC_SPECS, World, served_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    with served_world(tmp_path_factory.mktemp("inc"), candidates=160, seed=23) as w:
        yield w


def content(root: Path, day: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("keap_changeset", "keap_rejects", "keap_changeset_profiles"):
        folder = root / "sync" / name / f"snapshot_date={day}"
        rel = duckdb.sql(f"SELECT * FROM read_parquet('{folder}/*.parquet')")
        out[name] = sorted(map(repr, rel.fetchall()))
    return out


def build(root: Path, day: str, run: str, mp: pytest.MonkeyPatch, mode: str) -> dict[str, Any]:
    mp.setenv(MODE_VAR, mode)
    b = build_changeset(root, day, run)
    try:
        return {"counts": b.manifest["counts"], "build": b.manifest["build"],
                "dirty": b.counts.get("profiles_dirty")}
    finally:
        b.close()


def check_equal(w: World, day: str, run: str, tmp: Path, mp: pytest.MonkeyPatch) -> dict:
    """Full on a copy of the root first (the original keeps its base), then incremental."""
    copy = tmp / f"full-{run}"
    shutil.copytree(w.root, copy)
    full = build(copy, day, f"full-{run}", mp, "full")
    inc = build(w.root, day, f"inc-{run}", mp, "auto")
    assert content(w.root, day) == content(copy, day), (run, inc["build"])
    assert inc["counts"] == full["counts"], run
    return inc


def keap_edits(w: World) -> None:
    """What people do in Keap between two runs."""
    client = w.clients()["keap"]
    try:
        contacts = [c for page in client.contact_pages() for c in page]
        with_email = [c for c in contacts if c.get("email_addresses")]
        a, b, c, d = with_email[3], with_email[8], with_email[15], with_email[21]
        # an address moved to another contact (a contact now holds someone else's email)
        client.update_contact(b["id"], {"email_addresses": [
            {"email": a["email_addresses"][0]["email"], "field": "EMAIL1"}]})
        client.delete_contact(c["id"])                       # a contact deleted
        client.create_contact({"given_name": "Dup", "email_addresses": [   # a duplicate made
            {"email": d["email_addresses"][0]["email"], "field": "EMAIL1"}]})
        client.update_contact(with_email[30]["id"], {"job_title": "Edited in Keap"})
    finally:
        client.close()


def test_incremental_equals_full_every_day(world: World, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    dirty_days, prev = [], ""
    for n in range(5):
        while w.day().isoformat() == prev:    # a day of life (the sandbox skips weekends)
            w.tick(1)
        if n == 2:
            keap_edits(w)
        day = prev = w.day().isoformat()
        w.backup(date.fromisoformat(day), SYNC_SPECS, run_id=f"backup-{n}")
        build_identity(w.root, day, IdentityConfig(), f"identity-{n}").close()
        write_desired(w.root, day, load_mapping(), f"desired-{n}")
        inc = check_equal(w, day, f"{n}", tmp_path, monkeypatch)
        if n == 1:   # the first push created Keap's custom fields: their ids are new
            assert inc["build"] == "Keap's custom fields changed"
        if n >= 2:
            assert inc["build"].startswith("incremental on"), inc["build"]
            dirty_days.append(inc["dirty"])
        client = w.clients()["keap"]
        try:
            run_push(client, w.root, day, f"push-{n}")
        finally:
            client.close()
        # the same day again right after the push: the ledger's writes are the change
        again = check_equal(w, day, f"{n}b", tmp_path, monkeypatch)
        assert again["build"] == f"incremental on {day}"
    total = duckdb.sql(f"SELECT count(*) FROM read_parquet('{w.root}/sync/keap_desired/"
                       f"snapshot_date={prev}/*.parquet')").fetchall()[0][0]
    assert all(0 < d <= total for d in dirty_days) and min(dirty_days) < total, (
        dirty_days, total)


def test_a_bad_mode_is_one_clear_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_VAR, "sometimes")
    with pytest.raises(ValueError, match="TALENTVAULT_CHANGESET='sometimes'"):
        build_changeset(world.root, world.day().isoformat(), "bad")


def test_after_an_erasure_the_next_build_is_full_and_the_person_is_gone(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`forget` rewrites the partitions a base read (the desired state, the changeset): the next
    build cannot trust its base and builds in full, equal to the full build, without them."""
    from assets.recovery.erasure import forget

    w = world
    day = w.day().isoformat()
    folder = w.root / "sync" / "keap_desired" / f"snapshot_date={day}"
    profile_id, email = duckdb.sql(f"SELECT profile_id, email FROM read_parquet("
                                   f"'{folder}/*.parquet') ORDER BY profile_id LIMIT 1"
                                   ).fetchall()[0]
    forget(w.root, email=email)
    again = check_equal(w, day, "forget", tmp_path, monkeypatch)
    assert not again["build"].startswith("incremental"), again["build"]
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{w.root}/sync/keap_changeset/"
                      f"snapshot_date={day}/*.parquet') WHERE profile_id = {profile_id} "
                      f"OR match_email = '{email}'").fetchall()[0][0]
    assert rows == 0
    # and the build after it is incremental again
    assert check_equal(w, day, "forget-2", tmp_path, monkeypatch)["build"] == \
        f"incremental on {day}"
