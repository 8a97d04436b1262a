"""Real Dagster runs of the backup assets against the sandbox: in-process and through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import dagster as dg
import duckdb

from orchestration.definitions import defs
from tests.e2e.conftest import CORE, World


def _materialization(instance: dg.DagsterInstance, key: str) -> dg.AssetMaterialization:
    event = instance.get_latest_materialization_event(dg.AssetKey(key.split("/")))
    assert event is not None and event.asset_materialization is not None, key
    return event.asset_materialization


def test_materialize_every_backup_asset_then_an_incremental_day(sandbox_world: World):
    w = sandbox_world
    instance = dg.DagsterInstance.ephemeral()
    # the backups only: the day's Keap sync would write to Keap after its backup
    assets = [a for a in defs.assets
              if {g for g in a.group_names_by_key.values()} & {"greenhouse", "keap",
                                                                 "highlevel", "backups"}]
    day = w.day().isoformat()
    result = dg.materialize(assets, partition_key=day, resources=w.resources(),
                            instance=instance)
    assert result.success
    contacts = _materialization(instance, "keap/contacts")
    md = {k: v.value for k, v in contacts.metadata.items()}
    live = w.store.count("keap", "contacts")
    assert md["dagster/row_count"] == md["upserts"] == live
    assert md["mode"] == "full" and md["api_calls"] >= 1
    assert "| id | op |" in md["preview"]
    assert "@" not in md["preview"]  # ids and times only, no personal data
    catalog = w.root / "catalog.duckdb"
    con = duckdb.connect(str(catalog), read_only=True)
    assert con.execute("SELECT count(*) FROM keap.contacts").fetchone()[0] == live

    w.tick(1)
    next_day = (w.store.now() - timedelta(milliseconds=1)).date().isoformat()
    # the incremental day of the core backups (every asset's incrementals: test_backups)
    core = [a for a in assets if next(iter(a.keys)).path[0] not in CORE
            or next(iter(a.keys)).path[-1] in CORE[next(iter(a.keys)).path[0]]]
    result = dg.materialize(core, partition_key=next_day, resources=w.resources(),
                            instance=instance)
    assert result.success
    md = {k: v.value for k, v in _materialization(instance, "keap/contacts").metadata.items()}
    assert md["mode"] == "incremental"
    assert 0 < md["dagster/row_count"] < live


def test_dagster_cli_materializes_a_partition(sandbox_world: World, tmp_path):
    day = sandbox_world.day().isoformat()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m",
         "orchestration.definitions", "--select", "keap/tags", "--partition", day],
        env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    part = sandbox_world.root / "keap" / "tags" / f"snapshot_date={day}"
    assert (part / "_manifest.json").exists()
