"""The replica (TALENTVAULT_REPLICA_DIR): every landed partition is copied there intact; verify
checks both copies; a partition deleted from the primary is named and `verify --repair` brings
it back from the replica with SQL answering as before; a damaged replica file is repaired from
the primary; retention's prune and an erasure reach the replica too."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from assets.recovery.erasure import forget
from assets.recovery.verify import verify
from assets.recovery.verify.partitions import partition_folders
from orchestration.cli import app
from orchestration.storage.seals import sha256_file
from tests.e2e.conftest import CRM_SPECS, World

runner = CliRunner()
CONTACTS = Path("keap") / "contacts"


def files_of(base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)): sha256_file(p)
            for folder in partition_folders(base) for p in sorted(folder.iterdir())}


def keap_contacts(root: Path) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(f"""
            SELECT id, _op FROM read_parquet('{root / CONTACTS}/*/*.parquet')
            ORDER BY ALL""").fetchall()
    finally:
        con.close()


@pytest.fixture
def replicated(sandbox_world: World, tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    root, copy = tmp_path / "data", tmp_path / "replica"
    monkeypatch.setenv("TALENTVAULT_REPLICA_DIR", str(copy))
    w = sandbox_world
    w.backup(w.day(), specs=CRM_SPECS, root=root)
    w.tick(1)
    w.backup(w.day(), specs=CRM_SPECS, root=root)
    return root, copy


def test_every_landed_partition_has_an_identical_copy(replicated):
    root, copy = replicated
    primary = files_of(root)
    assert primary and files_of(copy) == primary
    report = verify(root)
    assert report.ok, report.summary()
    assert report.replica_partitions == report.partitions == len(partition_folders(root))


def test_a_partition_lost_from_the_primary_comes_back_from_the_replica(replicated):
    root, _ = replicated
    before = keap_contacts(root)
    lost = sorted((root / CONTACTS).glob("snapshot_date=*"))[-1]
    shutil.rmtree(lost)
    rel = str(lost.relative_to(root))
    found = runner.invoke(app, ["verify", "--data-dir", str(root)])
    assert found.exit_code == 1
    assert f"DAMAGED {rel}: missing here but held by the replica" in found.output
    fixed = runner.invoke(app, ["verify", "--data-dir", str(root), "--repair"])
    assert f"restored from the replica: {rel}" in fixed.output
    assert fixed.exit_code == 0, fixed.output
    assert "OK: every file matches its manifest" in fixed.output
    assert keap_contacts(root) == before


def test_a_damaged_replica_file_is_named_and_copied_again(replicated):
    root, copy = replicated
    part = next(p for p in sorted((copy / CONTACTS).glob("*/*.parquet")))
    part.chmod(0o644)
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")
    report = verify(root)
    assert [p.kind for p in report.problems] == ["replica_damaged"]
    fixed = runner.invoke(app, ["verify", "--data-dir", str(root), "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "copied to the replica: keap/contacts/" in fixed.output
    assert files_of(copy) == files_of(root)


def test_repair_without_a_replica_says_what_to_set(replicated, monkeypatch):
    root, _ = replicated
    shutil.rmtree(sorted((root / CONTACTS).glob("snapshot_date=*"))[0])
    monkeypatch.delenv("TALENTVAULT_REPLICA_DIR")
    out = runner.invoke(app, ["verify", "--data-dir", str(root), "--repair"])
    assert out.exit_code == 2
    assert "set TALENTVAULT_REPLICA_DIR" in out.output


def test_an_erased_person_leaves_the_replica_too(replicated):
    root, copy = replicated
    con = duckdb.connect()
    email, = con.execute(f"""
        SELECT lower(e) FROM (
            SELECT unnest(emails) AS e FROM read_parquet('{root / CONTACTS}/*/*.parquet'))
        WHERE e IS NOT NULL ORDER BY 1 LIMIT 1""").fetchone()

    def in_copy() -> int:
        return con.execute(f"""
            SELECT count(*) FROM read_parquet('{copy / CONTACTS}/*/*.parquet')
            WHERE contains(lower(CAST(emails AS VARCHAR)) || lower(_raw), ?)""",
            [email]).fetchone()[0]

    assert in_copy() > 0
    forget(root, email=email)
    assert in_copy() == 0
    assert verify(root).ok
    con.close()


def test_a_pruned_partition_leaves_the_replica_too(replicated):
    from datetime import date, timedelta

    from assets.recovery.retention import Policy, prune

    root, copy = replicated
    last = max(p.name.split("=")[1] for p in (root / CONTACTS).glob("snapshot_date=*"))
    report = prune(root, Policy(days=1, months=0, derived_days=1),
                   today=date.fromisoformat(last) + timedelta(days=40), apply=True)
    assert report.partitions_removed > 0
    assert files_of(copy) == files_of(root)
    assert verify(root).ok
