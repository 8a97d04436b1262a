"""`talentvault status` on a healthy, a late and a failing install: backups landed through the
storage layer, a real Dagster instance with real runs, the audit trail; no sandbox, no vendor."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.config import VENDORS
from orchestration.storage import audit
from sandbox.process import free_port
from tests.integration.installs import contacts_asset, land_install, push_asset
from tests.unit.test_mode import live_env

TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty Dagster home, made once (creating its databases is the slow part)."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg.DagsterInstance.from_config(str(home)).dispose()
    return home


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_home: Path):
    """A live install (credentials that open nothing), its data root and Dagster home in tmp."""
    for v in VENDORS.values():
        for name in v.names():
            monkeypatch.delenv(name, raising=False)
    for name, value in live_env().items():
        monkeypatch.setenv(name, value)
    home = shutil.copytree(empty_home, tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TALENTVAULT_SANDBOX_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("TALENTVAULT_RPO_HOURS", raising=False)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield tmp_path / "data", instance


def run_day(root: Path, instance: dg.DagsterInstance, *, checks_pass: bool, dead: int,
            verify_ok: bool) -> dg.ExecuteInProcessResult:
    """A day as the runs leave it: the backup with its checks and the push (one run), then
    verify."""
    push = push_asset(sent=12, succeeded=12 - dead, failed=dead, failed_permanent=dead,
                      dead_letters_total=dead + 1, dry_run=False)
    result = dg.materialize([contacts_asset(checks_pass), push], instance=instance,
                            partition_key=YESTERDAY.isoformat(), raise_on_error=False)
    audit.record(root, "verify", target="data root", status="succeeded" if verify_ok
                 else "failed", counts={"files": 40, "damaged": 0 if verify_ok else 2})
    return result


def status(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["status", *args])
    return result.exit_code, result.output


def test_status_of_a_healthy_install_says_nothing_needs_a_human(install):
    root, instance = install
    land_install(root, {s: YESTERDAY for s in VENDORS}, open_day=TODAY)
    run_day(root, instance, checks_pass=True, dead=0, verify_ok=True)
    code, out = status()
    assert code == 0, out
    assert "mode live" in out and "nothing needs a human" in out
    assert f"keap        {YESTERDAY} (full), 6 rows" in out
    assert "checks: 1 passed, 0 failed" in out
    assert "12 sent, 12 succeeded, 0 failed, 0 new dead letters (1 in all)" in out
    assert "verify      " in out and "succeeded: 40 files, 0 damaged" in out
    assert "settings present: KEAP_BASE_URL, KEAP_API_KEY" in out
    assert "secret-value" not in out                      # names, never values
    assert "sandbox     not running" in out
    assert "protection  primary /" in out                 # a folder, named
    assert (" · not encrypted (TALENTVAULT_ENCRYPTION_KEY) · no replica "
            "(TALENTVAULT_REPLICA_URL or _DIR) · seals sha256") in out
    code, out = status("--json")
    st = json.loads(out)
    assert code == 0 and st["needs_human"] == []
    assert [s["late"] for s in st["sources"]] == [False, False, False]
    assert {e["open_day"] for s in st["sources"] for e in s["entities"]} == {TODAY.isoformat()}


def test_status_of_a_late_install_names_the_source_and_its_age(install):
    root, instance = install
    three_days_ago = TODAY - timedelta(days=3)
    land_install(root, {"greenhouse": YESTERDAY, "keap": three_days_ago, "highlevel": YESTERDAY})
    run_day(root, instance, checks_pass=True, dead=0, verify_ok=True)
    code, out = status("--json")
    st = json.loads(out)
    assert code == 1
    late = {s["source"]: s["late"] for s in st["sources"]}
    assert late == {"greenhouse": False, "keap": True, "highlevel": False}
    [reason] = st["needs_human"]
    assert reason.startswith(f"keap: late, newest whole day {three_days_ago} is ")
    assert reason.endswith(" h old (RPO 26 h)")
    age = next(s["age_hours"] for s in st["sources"] if s["source"] == "keap")
    # the hours since that day ended (from the clock, not TODAY: the suite may cross midnight)
    ended = datetime.combine(three_days_ago + timedelta(days=1), datetime.min.time(), UTC)
    assert abs(age - (datetime.now(UTC) - ended).total_seconds() / 3600) < 0.5
    assert age > 48


def test_status_of_a_failing_install_lists_every_reason(install):
    root, instance = install
    land_install(root, {s: YESTERDAY for s in VENDORS})
    run = run_day(root, instance, checks_pass=False, dead=3, verify_ok=False)
    code, out = status()
    assert code == 1
    needs = out.split("NEEDS A HUMAN:")[1]
    assert (f"check failed: keap/contacts emails_are_unique ({YESTERDAY}): the Keap push of "
            "that day is held") in needs
    assert f"the Keap push for {YESTERDAY} dead-lettered 3 change(s)" in needs
    assert f"latest run of __ephemeral_asset_job__ failed: run {run.run_id}" in needs
    assert "verify found damage" in needs and "2 damaged" in needs


def test_a_failed_warn_check_is_a_warning_not_a_failure():
    from orchestration.cli.status import check_counts

    group = {"passed": 6, "failed": [
        {"check": "identity/keap_contacts keap_emails_are_unique", "partition": "2026-01-04",
         "severity": "WARN", "blocking": False}]}
    assert check_counts(group) == ("6 passed, 0 failed, 1 warnings: identity/keap_contacts "
                                   "keap_emails_are_unique (2026-01-04, WARN)")


def test_status_names_how_the_backups_are_protected(install, tmp_path, monkeypatch):
    import base64
    import os

    from orchestration.storage import parquet

    root, _ = install
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv(parquet.KEY_ENV, key)
    monkeypatch.setenv("TALENTVAULT_REPLICA_DIR", str(tmp_path / "replica"))
    parquet.check_root.cache_clear()
    code, out = status()
    assert f"encrypted (key id {parquet.parse_key(key).key_id})" in out
    assert f"replica {tmp_path / 'replica'}" in out
    assert key not in out
