"""Today is a partition: a backup of the open day stops at the vendor's now, and the next day's
incremental starts where that backup ended if the nightly run never completed the day."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import duckdb

from assets.catalog.views import open_catalog
from orchestration.definitions import defs
from orchestration.partitions import daily_snapshots
from orchestration.resources import build_resources
from orchestration.resources.keap import KeapResource
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import iso, parse_ts
from tests.e2e.conftest import served_world

CONTACTS = dg.AssetKey(["keap", "contacts"])


def _backup(day: str) -> dict:
    contacts = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition)
                    and CONTACTS in a.keys)
    result = dg.materialize([contacts], partition_key=day, resources=build_resources(),
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return SnapshotStorage().manifest("keap", "contacts", day)


def _new_contact(n: int) -> str:
    keap = KeapResource().open()
    try:
        return str(keap.create_contact({"given_name": f"Open{n}", "email_addresses": [
            {"email": f"open.day.{n}@example.com", "field": "EMAIL1"}]})["id"])
    finally:
        keap.close()


def _ids(day: str) -> set[str]:
    part = SnapshotStorage().partition_dir("keap", "contacts", day)
    return {str(r[0]) for r in duckdb.sql(
        f"SELECT id FROM read_parquet('{part}/*.parquet') WHERE _op = 'upsert'").fetchall()}


def test_open_day_backup_stops_at_now_and_the_next_day_starts_there(tmp_path):
    with served_world(tmp_path, candidates=40, seed=5) as w:
        base_day = w.day()
        _backup(base_day.isoformat())
        open_day = (base_day + timedelta(days=1)).isoformat()
        assert daily_snapshots.has_partition_key(open_day)

        w.admin("POST", "/clock", json={"advance_seconds": 12 * 3600})  # noon of the open day
        noon = w.store.now()
        a = _new_contact(1)
        m = _backup(open_day)
        ended = parse_ts(m["window"]["updated_to"])
        assert noon <= ended < noon + timedelta(minutes=1)  # the vendor's now, not midnight
        assert a in _ids(open_day)

        w.admin("POST", "/clock", json={"advance_seconds": 6 * 3600})
        b = _new_contact(2)                                 # after the open-day backup
        # the nightly run of the open day never happens; the next morning's backup:
        w.admin("POST", "/clock", json={"advance_seconds": 12 * 3600})
        c = _new_contact(3)
        next_day = (base_day + timedelta(days=2)).isoformat()
        m = _backup(next_day)
        assert m["mode"] == "incremental"
        assert parse_ts(m["window"]["updated_from"]) == ended  # where the open-day backup ended
        assert {b, c} <= _ids(next_day)                     # nothing falls between partitions

        con = open_catalog(w.root)
        live = {str(d["id"]) for d in w.store.iter_docs("keap", "contacts")}
        state = {str(r[0]) for r in con.execute(
            "SELECT id FROM keap.contacts_as_of(?)", [iso(w.store.now())]).fetchall()}
        assert state == live
