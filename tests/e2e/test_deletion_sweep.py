"""How incrementals learn of deletions (assets/deletions.py), end to end over the sandbox: the
weekly sweep takes the webhook inbox's deletions on other days at the cost of the changed pages
only, and finds the deletions no webhook announced at the next sweep; daily (and `auto` on a
small entity) sweeps every day; a bad policy value is one clear error."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from assets import deletions
from assets.extract import run_extract
from orchestration.cli.webhooks import webhooks_app
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import iso
from orchestration.webhooks.events import Event
from orchestration.webhooks.inbox import Inbox
from tests.e2e.conftest import ALL_SPECS, World, backed_up_docs, served_world
from tests.e2e.test_webhooks_e2e import receiver

CANDIDATES = next(s for s in ALL_SPECS if s.key.to_user_string() == "greenhouse/candidates")
PAGE = 10


@pytest.fixture
def world(tmp_path: Path):
    with served_world(tmp_path, candidates=60, seed=3) as w:
        yield w


def backup(w: World, day) -> dict:
    client = w.clients(greenhouse={"page_size": PAGE})["greenhouse"]
    try:
        return run_extract(CANDIDATES, client, SnapshotStorage(root=str(w.root)), day, "t")
    finally:
        client.close()


def next_day(w: World) -> None:
    """Move the sandbox's clock one day on, with no other change (life would delete too)."""
    w.store.set_now(w.store.now() + timedelta(days=1))


def delete(w: World, candidate_id: int, *, announce: bool) -> None:
    at = w.store.now() - timedelta(hours=3)
    assert w.store.delete("greenhouse", "candidates", candidate_id, at=at)
    if announce:   # the vendor's delete_candidate webhook, as the receiver stores it
        Inbox(w.root).append([Event(f"gh-{candidate_id}", "greenhouse", "delete_candidate",
                                    "candidate", str(candidate_id), "delete", None, at)])


def alive_in_backup(w: World, day) -> set[int]:
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT id FROM read_parquet('{w.root}/greenhouse/candidates/*/*.parquet',
                                    hive_partitioning = true)
        WHERE snapshot_date <= '{day}'
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY _source_updated_at DESC,
                                   _op DESC) = 1 AND _op = 'upsert'""").fetchall()
    return {r[0] for r in rows}


def test_weekly_sweep_takes_webhook_deletions_daily_and_the_rest_at_the_sweep(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deletions.POLICY_VAR, "weekly")
    w = world
    first = w.day()
    full = backup(w, first)
    ids = sorted(int(i) for i in w.sandbox_docs("greenhouse", "candidates"))
    assert full["deletions"] == {"policy": "full", "swept": True, "live_ids": len(ids)}
    pages_of_everything = -(-len(ids) // PAGE)

    next_day(w)
    announced, silent = ids[0], ids[1]
    delete(w, announced, announce=True)
    delete(w, silent, announce=False)
    day = w.day()
    m = backup(w, day)
    assert m["mode"] == "incremental"
    assert m["deletions"]["swept"] is False and m["deletions"]["from_webhooks"] == 1
    assert m["deletions"]["next_sweep"] == (first + timedelta(days=7)).isoformat()
    assert m["deletes"] == 1
    # the day's cost is its changed pages (none changed: one empty page) and the token
    assert m["api_calls"] <= 2 < pages_of_everything
    alive = alive_in_backup(w, day)
    assert announced not in alive and silent in alive   # the silent one: seen at the sweep

    for _ in range(5):                  # days 3..7: no sweep, nothing new
        next_day(w)
        m = backup(w, w.day())
        assert m["deletions"]["swept"] is False and m["deletes"] == 0
    next_day(w)                         # day 8: a week after the full, the sweep runs
    m = backup(w, w.day())
    assert m["deletions"]["swept"] is True and m["deletions"]["from_sweep"] == 1
    assert m["deletions"]["live_ids"] == len(ids) - 2
    assert m["deletes"] == 1 and m["api_calls"] >= pages_of_everything
    assert alive_in_backup(w, w.day()) == set(ids) - {announced, silent}
    next_day(w)                         # the day after: the week starts again
    assert backup(w, w.day())["deletions"]["swept"] is False


def test_daily_and_auto_sweep_every_day_on_a_small_entity(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    backup(w, w.day())
    ids = sorted(int(i) for i in w.sandbox_docs("greenhouse", "candidates"))
    for policy in ("daily", "auto"):
        monkeypatch.setenv(deletions.POLICY_VAR, policy)
        next_day(w)
        gone = ids.pop()
        delete(w, gone, announce=False)
        m = backup(w, w.day())
        assert m["deletions"]["swept"] is True and m["deletes"] == 1, policy
        assert m["deletions"]["policy"] == "daily"
        assert gone not in alive_in_backup(w, w.day())
    assert "at most 20,000" in m["deletions"]["reason"]
    # past the threshold, auto goes weekly (the last sweep listed len(ids) ids)
    monkeypatch.setattr(deletions, "AUTO_DAILY_MAX_IDS", len(ids) - 1)
    next_day(w)
    m = backup(w, w.day())
    assert m["deletions"]["policy"] == "weekly" and m["deletions"]["swept"] is False


def test_a_bad_policy_is_one_clear_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    backup(world, world.day())
    next_day(world)
    monkeypatch.setenv(deletions.POLICY_VAR, "hourly")
    with pytest.raises(deletions.PolicyError, match="TALENTVAULT_DELETION_SWEEP='hourly'.*"
                       "auto, daily or weekly"):
        backup(world, world.day())


def test_with_the_vendors_webhooks_a_weekly_incremental_misses_no_deletion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox delivers its real webhooks to the receiver: three days of life later, the
    incrementals (no sweep) hold every deletion the sandbox made, the candidates' and their
    applications' (Greenhouse) and the contacts' (Keap), and the backed-up state is the
    sandbox's."""
    monkeypatch.setenv("GREENHOUSE_WEBHOOK_SECRET", "deletions-secret")
    for name in ("GREENHOUSE_BASE_URL", "KEAP_BASE_URL", "HIGHLEVEL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    specs = [s for s in ALL_SPECS if s.key.to_user_string() in
             ("greenhouse/candidates", "greenhouse/applications", "keap/contacts")]
    with served_world(tmp_path, candidates=120, seed=9) as w, receiver(w.root) as url:
        for source in ("greenhouse", "keap"):
            result = CliRunner().invoke(webhooks_app, ["register", "--source", source,
                                                       "--url", f"{url}/webhooks/{source}"])
            assert result.exit_code == 0, result.output
        w.backup(w.day(), specs)
        monkeypatch.setenv(deletions.POLICY_VAR, "weekly")
        start = w.store.now()
        deleted: dict[str, int] = {}
        for _ in range(3):
            w.admin("POST", "/tick", json={"days": 1})
            w.admin("POST", "/webhooks/flush", json={"timeout": 30})
            for key, m in w.backup(w.day(), specs).items():
                assert m["deletions"]["swept"] is False, key
                deleted[key] = deleted.get(key, 0) + m["deletes"]
        for spec in specs:
            source, entity = spec.schema.source, spec.schema.entity
            tombstones = [t for t in w.store.tombstones(source, entity)
                          if datetime.fromisoformat(t["deleted_at"].replace("Z", "+00:00"))
                          >= start]
            assert deleted[spec.key.to_user_string()] == len(tombstones), spec.key
            end = iso(w.store.now() - timedelta(milliseconds=1))
            assert set(backed_up_docs(w.root, source, entity, end)) == set(
                w.sandbox_docs(source, entity)), spec.key
        assert deleted["greenhouse/candidates"] > 0 and deleted["keap/contacts"] > 0
