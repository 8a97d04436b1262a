"""`talentvault verify` on real backups of the sandbox: clean data passes, and every kind of
damage (a flipped byte, a truncated, missing or extra file, a broken incremental chain, a
re-written file whose manifest was "fixed") is named, with a non-zero exit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from assets.catalog.asset import catalog
from assets.catalog.views import open_catalog
from assets.recovery.verify import verify
from assets.recovery.verify.check import backup_files_match_manifests
from orchestration.cli import app
from orchestration.jobs import verify_job
from orchestration.schedules import verify_schedule
from orchestration.storage.derived import write_partition
from orchestration.storage.seals import sha256_file
from orchestration.storage.snapshots import SnapshotStorage
from tests.e2e.conftest import World

runner = CliRunner()


@pytest.fixture(scope="module")
def backed_up(sandbox_world: World) -> World:
    """Three days of backups (a full, then two incrementals) and a derived partition."""
    w = sandbox_world
    w.backup(w.day())
    for _ in range(2):
        w.tick(1)
        w.backup(w.day())
    con = duckdb.connect()
    glob = w.root / "keap" / "contacts" / "*" / "*.parquet"
    write_partition(con, w.root, "verify_probe", w.day().isoformat(),
                    f"SELECT DISTINCT id FROM read_parquet('{glob}')", "id", run_id="probe",
                    source="sync")
    con.close()
    return w


@pytest.fixture
def root(backed_up: World, tmp_path: Path) -> Path:
    """A private copy of the data root: damage stays in this test."""
    dst = tmp_path / "data"
    shutil.copytree(backed_up.root, dst)
    return dst


def cli(root: Path, *args: str):
    return runner.invoke(app, ["verify", "--data-dir", str(root), *args])


def contacts_part(root: Path, day_index: int = 1) -> Path:
    days = sorted((root / "keap" / "contacts").glob("snapshot_date=*"))
    return days[day_index] / "part-00000.parquet"


def writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


def damaged_files(result_output: str) -> list[str]:
    report = json.loads(result_output)
    return [p for p in report["damaged_paths"] if not p.startswith("catalog:")]


def test_clean_backups_verify_and_the_run_is_audited(root: Path):
    n_manifests = len(list(root.glob("*/*/snapshot_date=*/_manifest.json")))
    result = cli(root, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["partitions"] == n_manifests > 20
    assert report["files"] >= n_manifests and report["views"] > 30
    assert report["other_files"] > 0          # the audit trail's own files were read
    full = cli(root, "--read-data")
    assert full.exit_code == 0, full.output
    assert "OK: every file matches its manifest" in full.output
    events = open_catalog(root).execute(
        "SELECT status, counts, details FROM audit.events WHERE action = 'verify' "
        'ORDER BY "at"').fetchall()
    assert [e[0] for e in events] == ["succeeded", "succeeded"]
    assert json.loads(events[0][1])["partitions"] == n_manifests
    assert json.loads(events[1][2])["read_data"] is True


def test_one_flipped_byte_is_named(root: Path):
    part = writable(contacts_part(root))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    result = cli(root, "--json")
    assert result.exit_code == 1
    rel = str(part.relative_to(root))
    assert damaged_files(result.output) == [rel]
    kinds = {p["kind"] for p in json.loads(result.output)["problems"] if p["path"] == rel}
    assert "sha256" in kinds
    text = cli(root)
    assert text.exit_code == 1 and f"DAMAGED {rel}: content changed" in text.output


def test_truncated_missing_and_extra_files_are_named(root: Path):
    truncated = writable(contacts_part(root, 1))
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    missing = contacts_part(root, 2)
    writable(missing).unlink()
    tags = sorted((root / "keap" / "tags").glob("snapshot_date=*"))[0]
    extra = tags / "part-00001.parquet"
    shutil.copyfile(tags / "part-00000.parquet", extra)
    result = cli(root, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    by_path: dict[str, set[str]] = {}
    for p in report["problems"]:
        by_path.setdefault(p["path"], set()).add(p["kind"])
    rel = {f: str(f.relative_to(root)) for f in (truncated, missing, extra)}
    assert {"size", "sha256", "unreadable"} <= by_path[rel[truncated]]
    assert by_path[rel[missing]] == {"missing"}
    assert by_path[rel[extra]] == {"unlisted"}
    assert set(damaged_files(result.output)) == set(rel.values())


def test_an_incremental_without_its_base_is_named(root: Path):
    days = sorted((root / "greenhouse" / "candidates").glob("snapshot_date=*"))
    assert json.loads((days[2] / "_manifest.json").read_text())["mode"] == "incremental"
    shutil.rmtree(days[1])
    result = cli(root, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [p["kind"] for p in report["problems"]] == ["seal_missing", "chain"]
    assert report["damaged_paths"] == [str(days[1].relative_to(root)),
                                       str(days[2].relative_to(root))]
    assert "partition gone without a prune" in report["problems"][0]["reason"]


def test_read_data_catches_a_rewritten_file_whose_manifest_was_fixed(root: Path):
    """A valid Parquet file with one changed value and a manifest updated to its new hash: the
    seal names the manifest's changed `files`; once someone accepts the change (`talentvault
    seal --accept`), the fast form cannot tell, and reading the rows back and recomputing the
    fingerprint still can."""
    part = contacts_part(root, 1)
    table = pq.read_table(part)
    ops = table.column("_op")
    flipped = pc.if_else(pc.equal(pc.cumulative_sum(
        pc.cast(pc.equal(ops, "upsert"), "int64")), 1), "delete", ops)
    table = table.set_column(table.schema.get_field_index("_op"), "_op", flipped)
    writable(part)
    pq.write_table(table, part, compression="zstd")
    manifest_path = part.parent / "_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][0].update(sha256=sha256_file(part), bytes=part.stat().st_size)
    writable(manifest_path).write_text(json.dumps(manifest))
    result = cli(root)
    assert result.exit_code == 1
    assert "manifest field `files` changed" in result.output
    target = str(part.parent.relative_to(root))
    accepted = runner.invoke(app, ["seal", "--data-dir", str(root), "--accept", target])
    assert accepted.exit_code == 0, accepted.output
    assert cli(root).exit_code == 0
    result = cli(root, "--read-data", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [(p["path"], p["kind"]) for p in report["problems"]] == [
        (str(part.parent.relative_to(root)), "fingerprint")]


def test_leftovers_are_warnings_not_damage(root: Path):
    (root / "keap" / "contacts" / ".staging-2026-01-01-deadbeef").mkdir()
    result = cli(root, "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert [w["kind"] for w in report["warnings"]] == ["leftover"]


def test_scheduled_dagster_check_fails_naming_the_damaged_file(root: Path, backed_up: World):
    def run(data: Path) -> dg.AssetCheckEvaluation:
        defs = dg.Definitions(assets=[catalog], asset_checks=[backup_files_match_manifests],
                              jobs=[verify_job], schedules=[verify_schedule],
                              resources={"storage": SnapshotStorage(root=str(data))})
        assert defs.resolve_schedule_def("verify_schedule").job_name == "verify_job"
        result = defs.resolve_job_def("verify_job").execute_in_process(
            instance=dg.DagsterInstance.ephemeral())
        assert result.success
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    clean = run(backed_up.root)
    assert clean.passed and clean.metadata["damaged_count"].value == 0
    part = writable(contacts_part(root))
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    damaged = run(root)
    assert not damaged.passed and damaged.severity == dg.AssetCheckSeverity.ERROR
    assert damaged.metadata["damaged_count"].value >= 1
    assert str(part.relative_to(root)) in damaged.metadata["damaged_paths"].value


def test_python_api_report(root: Path):
    report = verify(root, record=False)
    assert report.ok and report.rows > 0 and report.bytes > 0
    assert "0 damaged" not in report.summary()
