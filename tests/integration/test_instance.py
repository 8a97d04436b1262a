"""The Dagster instance: nothing in it depends on the working directory, and the production
instance (deploy/dagster.postgres.yaml) keeps runs, event logs and schedule state in a real
Postgres server and step logs in a real S3-protocol store, both started here over sockets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import httpx
import psycopg2
import pytest
import yaml

from tests.instance_support import REPO
from tests.s3_server import s3_server as start_s3_server

LOCAL_YAML = REPO / "dagster.yaml"
PROD_YAML = REPO / "deploy" / "dagster.postgres.yaml"
PATH_KEYS = {"base_dir", "local_dir", "path", "dir"}


def relative_paths(node: object, where: str = "") -> list[str]:
    """Every path-like setting whose value is a relative path (an {env: ...} value is not)."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in PATH_KEYS and isinstance(v, str) and not os.path.isabs(v):
                found.append(f"{where}.{k}: {v}")
            found += relative_paths(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += relative_paths(v, f"{where}[{i}]")
    return found


def test_the_path_rule_sees_a_relative_path():
    assert relative_paths({"storage": {"sqlite": {"base_dir": ".dagster_home/storage"}}}) == [
        ".storage.sqlite.base_dir: .dagster_home/storage"]
    assert relative_paths({"compute_logs": {"config": {"local_dir": {"env": "X"}}}}) == []


@pytest.mark.parametrize("path", [LOCAL_YAML, PROD_YAML], ids=lambda p: p.name)
def test_no_instance_setting_is_relative_to_the_working_directory(path):
    assert relative_paths(yaml.safe_load(path.read_text())) == []


@dg.asset
def tiny() -> None:
    print("a line for the step's log")


def test_run_history_lands_in_dagster_home_whatever_the_working_directory(tmp_path,
                                                                           monkeypatch):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(elsewhere)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([tiny], instance=instance)
        assert result.success
    assert list(elsewhere.iterdir()) == []
    with dg.DagsterInstance.get() as again:  # a new process would see the same history
        assert again.get_run_by_id(result.run_id) is not None
    assert (home / "history" / "runs.db").exists()


def test_the_project_instance_is_the_checkouts_own_folder_with_a_copy_of_dagster_yaml(
        tmp_path, monkeypatch):
    from orchestration import instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.setattr(instance, "REPO", checkout)
    monkeypatch.setattr(instance, "LOCAL_HOME", checkout / ".dagster_home")
    assert instance.project_home() is None               # an installed package: no instance
    assert not (checkout / ".dagster_home").exists()     # and nothing created beside it
    (checkout / "dagster.yaml").write_text(LOCAL_YAML.read_text())
    home = Path(instance.project_home())
    assert home == checkout / ".dagster_home"
    assert (home / "dagster.yaml").read_text() == LOCAL_YAML.read_text()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    assert instance.project_home() == str(tmp_path / "elsewhere")


# -- the production instance on Postgres and an S3-protocol store --------------------------------
@pytest.fixture
def postgres(tmp_path):
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE dagster;")
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def s3_server():
    with start_s3_server("compute-logs") as url:
        yield url


def test_the_production_instance_keeps_its_state_in_postgres_and_the_object_store(
        tmp_path, monkeypatch, postgres, s3_server):
    socket_dir = postgres.get_uri().split("host=")[1]
    env = {"DAGSTER_PG_URL": f"postgresql+psycopg2://postgres@/dagster?host={socket_dir}",
           "DAGSTER_COMPUTE_LOGS_BUCKET": "compute-logs",
           "AWS_ENDPOINT": s3_server, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load(PROD_YAML.read_text())
    # the one setting the test changes: its S3 server speaks plain http on loopback (a bool,
    # which Dagster cannot read from the environment; deploy/README.md shows the same override)
    config["compute_logs"]["config"]["allow_http"] = True
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)

    # the instance loads (its config is checked against Dagster's schema on the way) ...
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        result = dg.materialize([tiny], instance=instance)
        assert result.success

    # ... and a schedule started through Dagster's own CLI is state in the same database
    started = subprocess.run(
        [sys.executable, "-m", "dagster", "schedule", "start", "daily_backup_schedule",
         "-m", "orchestration.definitions"], capture_output=True, text=True, timeout=180,
        env={**os.environ, "TALENTVAULT_DATA_DIR": str(tmp_path / "data")}, cwd=REPO)
    assert started.returncode == 0, started.stderr[-2000:]

    con = psycopg2.connect(host=socket_dir, user="postgres", dbname="dagster")
    try:
        cur = con.cursor()
        cur.execute("SELECT run_id, status FROM runs")
        assert cur.fetchall() == [(result.run_id, "SUCCESS")]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [result.run_id])
        assert cur.fetchone()[0] > 5
        cur.execute("SELECT count(*) FROM event_logs WHERE asset_key LIKE %s", ['%tiny%'])
        assert cur.fetchone()[0] >= 1
        cur.execute("SELECT count(*) FROM instigators WHERE status = 'RUNNING'")
        assert cur.fetchone()[0] == 1
    finally:
        con.close()
    assert not list(home.rglob("*.db"))  # no run history on the local disk

    # the step's stdout went to the bucket
    listing = httpx.get(f"{s3_server}/compute-logs", params={"list-type": "2"}, timeout=10)
    assert "dagster/compute-logs/" in listing.text
