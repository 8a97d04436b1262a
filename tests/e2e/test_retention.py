"""Retention on real backups of the sandbox: six days with a full in the middle; pruning the
incrementals before that full (keeping the first full as the month's) removes exactly those
partitions, keeps every chain whole, and changes neither the current state nor the state as of
any kept instant, although records were deleted in the pruned days."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from assets.catalog.views import open_catalog, write_catalog_file
from assets.extract import run_extract
from assets.recovery.retention import Policy, prune, retention
from assets.recovery.verify import verify
from orchestration.cli import app
from orchestration.storage.derived import write_partition
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.state_sql import history_sql, state_sql
from orchestration.times import iso
from tests.e2e.conftest import ALL_SPECS, World

# incremental and always-full entities of each source (all of them would only be slower)
SPECS = [s for s in ALL_SPECS if s.key.to_user_string() in {
    "greenhouse/candidates", "greenhouse/applications", "greenhouse/jobs", "keap/contacts",
    "keap/tags", "highlevel/contacts", "highlevel/opportunities"}]
VIEWS = [f"{s.schema.source}.{s.schema.entity}" for s in SPECS]


def backup(w: World, day: date, mode: str) -> None:
    clients = w.clients()
    storage = SnapshotStorage(root=str(w.root))
    try:
        for spec in SPECS:
            run_extract(spec, clients[spec.resource], storage, day, f"retention-{day}", mode)
    finally:
        for c in clients.values():
            c.close()


def instant(day: date, hours: float = 0, end: bool = False) -> str:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if end:
        return iso(start + timedelta(days=1) - timedelta(milliseconds=1))
    return iso(start + timedelta(hours=hours))


def states(root: Path, times: list[str]) -> dict[tuple[str, str], list[tuple]]:
    """Every entity's current state and state as of each time: (id, version time, raw digest)."""
    con = open_catalog(root)
    out = {}
    for view in VIEWS:
        cols = "id, _source_updated_at, md5(_raw)"
        out[(view, "now")] = con.execute(f"SELECT {cols} FROM {view} ORDER BY ALL").fetchall()
        for t in times:
            out[(view, t)] = con.execute(
                f"SELECT {cols} FROM {view}_as_of(?) ORDER BY ALL", [t]).fetchall()
    con.close()
    return out


@dataclass
class Scenario:
    root: Path
    days: list[date]
    times: list[str]
    before: dict[tuple[str, str], list[tuple]]
    deleted_in_pruned: dict[str, set[Any]]
    dry_run: dg.MaterializeResult | Any = None
    applied: dict[str, Any] = field(default_factory=dict)
    catalog_mtime: float = 0.0
    dry_run_dirs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def scenario(sandbox_world: World) -> Scenario:
    w = sandbox_world
    days = [w.day()]
    backup(w, days[0], "auto")                     # d0: the first snapshot, full
    for i in range(1, 6):
        w.tick(1)
        days.append(w.day())
        backup(w, days[i], "full" if i == 3 else "auto")   # d3: a full in the middle
    con = duckdb.connect()
    for d in days:   # a derived output, one partition a day
        write_partition(con, w.root, "retention_probe", d.isoformat(), f"SELECT {d.day} AS n",
                        "n", run_id="probe", source="sync")
    con.close()
    d0, d3, d4, d5 = days[0], days[3], days[4], days[5]
    times = [instant(d0, end=True), instant(d3, end=True)]
    times += [instant(d, h) for d in (d4, d5) for h in (0, 6, 12, 18)]
    times += [instant(d, end=True) for d in (d4, d5)]
    # records alive in d0 and deleted in d1 or d2 (the days retention will prune)
    deleted: dict[str, set[Any]] = {}
    q = duckdb.connect()
    for spec in SPECS:
        folder = w.root / spec.schema.source / spec.schema.entity
        pruned = [str(folder / f"snapshot_date={d}" / "*.parquet") for d in days[1:3]]
        rows = q.execute(f"""
            SELECT id FROM read_parquet({pruned}) WHERE _op = 'delete'
            INTERSECT SELECT id FROM read_parquet('{folder}/snapshot_date={d0}/*.parquet')
            WHERE _op = 'upsert'""").fetchall()
        deleted[f"{spec.schema.source}.{spec.schema.entity}"] = {r[0] for r in rows}
    q.close()
    write_catalog_file(w.root)
    s = Scenario(w.root, days, times, states(w.root, times), deleted)
    s.catalog_mtime = (w.root / "catalog.duckdb").stat().st_mtime
    # a dry run through Dagster, then the real prune through the CLI
    s.dry_run = dg.materialize(
        [retention], instance=dg.DagsterInstance.ephemeral(),
        resources={"storage": SnapshotStorage(root=str(w.root))},
        run_config={"ops": {"backups__retention": {"config": {
            "today": d5.isoformat(), "days": 1, "derived_days": 1}}}})
    s.dry_run_dirs = sorted(p.name for p in (w.root / "keap" / "contacts").iterdir())
    out = CliRunner().invoke(app, ["retention", "--apply", "--days", "1", "--derived-days", "1",
                                   "--today", d5.isoformat(), "--json",
                                   "--data-dir", str(w.root)])
    assert out.exit_code == 0, out.output
    s.applied = json.loads(out.output)
    return s


def test_dry_run_reports_and_changes_nothing(scenario: Scenario):
    s = scenario
    assert s.dry_run.success
    md = {k: v.value for k, v in s.dry_run.asset_materializations_for_node(
        "backups__retention")[0].metadata.items()}
    assert md["applied"] is False
    assert md["partitions_removed"] == 2 * len(SPECS) + 4
    d1, d2 = s.days[1].isoformat(), s.days[2].isoformat()
    assert "| keap/contacts | 4 | 2 |" in md["plan"] and f"{d1}..{d2}" in md["plan"]
    assert s.dry_run_dirs == [f"snapshot_date={d}" for d in s.days]


def test_prune_removes_exactly_the_pruned_days(scenario: Scenario):
    s = scenario
    d = [x.isoformat() for x in s.days]
    assert s.applied["applied"] is True
    assert s.applied["partitions_removed"] == 2 * len(SPECS) + 4
    for spec in SPECS:
        folder = s.root / spec.schema.source / spec.schema.entity
        kept = sorted(p.name for p in folder.iterdir())
        # d0 stays as the month's first full; d3 (full) anchors the daily window d4..d5
        assert kept == [f"snapshot_date={x}" for x in (d[0], d[3], d[4], d[5])], folder
    probe = s.root / "sync" / "retention_probe"
    assert sorted(p.name for p in probe.iterdir()) == [f"snapshot_date={x}" for x in d[4:]]
    assert not list(s.root.glob("*/*/.trash"))


def test_state_now_and_as_of_every_kept_instant_is_unchanged(scenario: Scenario):
    s = scenario
    after = states(s.root, s.times)
    changed = [k for k in s.before if after[k] != s.before[k]]
    assert not changed, f"{len(changed)} states changed by pruning, e.g. {changed[:3]}"


def test_records_deleted_in_pruned_days_stay_deleted(scenario: Scenario):
    """Without the full-snapshot fence they would come back from the older full."""
    s = scenario
    assert s.deleted_in_pruned["greenhouse.candidates"]
    assert s.deleted_in_pruned["keap.contacts"]
    con = duckdb.connect()
    resurrected = 0
    for spec in SPECS:
        view = f"{spec.schema.source}.{spec.schema.entity}"
        folder = s.root / spec.schema.source / spec.schema.entity
        history = history_sql(folder)
        plain = {r[0] for r in con.execute(f"SELECT id FROM ({state_sql(history)})").fetchall()}
        fenced = {r[0] for r in con.execute(
            f"SELECT id FROM ({state_sql(history, entity_dir=folder)})").fetchall()}
        gone = s.deleted_in_pruned[view]
        assert not gone & fenced, view
        assert gone <= plain, view          # the unfenced state would resurrect them
        resurrected += len(plain - fenced)
    assert resurrected >= len(s.deleted_in_pruned["keap.contacts"]) > 0


def test_after_pruning_everything_verifies_and_prune_is_idempotent(scenario: Scenario):
    s = scenario
    report = verify(s.root, record=False)
    assert report.ok, report.summary()
    again = prune(s.root, Policy(days=1, derived_days=1), s.days[5], apply=True)
    assert again.partitions_removed == 0
    # the saved catalog was rebuilt by the prune and reads the pruned data
    assert (s.root / "catalog.duckdb").stat().st_mtime > s.catalog_mtime
    con = duckdb.connect(str(s.root / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM keap.contacts").fetchone()[0] == \
        len(s.before[("keap.contacts", "now")])


def test_prunes_are_audited(scenario: Scenario):
    con = open_catalog(scenario.root)
    rows = con.execute("""SELECT status, counts, details FROM audit.events
                          WHERE action = 'retention_prune' ORDER BY "at" """).fetchall()
    assert [r[0] for r in rows[:2]] == ["dry_run", "succeeded"]
    counts, details = json.loads(rows[1][1]), json.loads(rows[1][2])
    assert counts["partitions_removed"] == 2 * len(SPECS) + 4
    assert details["entities"]["keap/contacts"]["partitions"] == 2
    assert details["entities"]["sync/retention_probe"]["partitions"] == 4
