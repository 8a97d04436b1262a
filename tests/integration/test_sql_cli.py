"""`talentvault sql` as a user runs it: a real process over real snapshot files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from assets.keap.schemas import contacts
from orchestration.storage.snapshots import SnapshotStorage


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    w = SnapshotStorage(root=str(root)).writer(contacts, "2026-01-05", mode="full", run_id="r",
                                               window=(None, None))
    w.add([{"id": str(i), "given_name": f"N{i}", "update_time": "2026-01-05T10:00:00Z"}
           for i in range(1, 8)])
    w.commit()
    return root


def sql(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TALENTVAULT_DATA_DIR": str(root)}
    return subprocess.run([sys.executable, "-m", "orchestration.cli", "sql", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_table_output(root):
    out = sql(root, "SELECT id, given_name FROM keap.contacts ORDER BY id::INT")
    assert out.returncode == 0, out.stderr
    assert "N1" in out.stdout and "N7" in out.stdout


def test_csv_json_and_parquet_files(root, tmp_path):
    q = "SELECT id, given_name FROM keap.contacts ORDER BY id::INT"
    assert sql(root, q, "--format", "csv", "--output", str(tmp_path / "a.csv")).returncode == 0
    assert (tmp_path / "a.csv").read_text().splitlines()[1] == '"1","N1"'
    assert sql(root, q, "--format", "json", "--output", str(tmp_path / "a.json")).returncode == 0
    assert json.loads((tmp_path / "a.json").read_text().splitlines()[0]) == {
        "id": "1", "given_name": "N1"}
    assert sql(root, q, "--format", "parquet", "--output", str(tmp_path / "a.parquet")
               ).returncode == 0
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 7


@pytest.mark.parametrize("statement", [
    "COPY keap.contacts TO '/tmp/stolen.csv'",
    "DROP VIEW keap.contacts",
    "ATTACH '/tmp/other.db' AS o",
])
def test_writes_are_refused_with_a_clear_message(root, statement):
    out = sql(root, statement)
    assert out.returncode == 2
    assert "not allowed" in out.stderr and "read-only" in out.stderr


def test_output_never_lands_inside_the_backup_folder(root):
    out = sql(root, "SELECT 1", "--format", "csv", "--output", str(root / "x.csv"))
    assert out.returncode == 2 and "inside the backup folder" in out.stderr
    assert not (root / "x.csv").exists()
