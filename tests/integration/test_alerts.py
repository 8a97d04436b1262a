"""Alerts reach a channel over a real socket (apprise JSON webhook to a receiver in the test),
once per event, with ids, counts and run links and no personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from orchestration.sensors import (
    failed_run_alert_sensor,
    finished_run_alert_sensor,
    freshness_alert_sensor,
)
from tests.integration.installs import (
    DAYS,
    alert_receiver,
    contacts_asset,
    land_install,
    push_asset,
    tick,
)

EMAIL = "jane.doe@example.com"
DAY = "2026-01-10"


@pytest.fixture
def channel(monkeypatch, tmp_path):
    monkeypatch.setenv("TALENTVAULT_UI_URL", "https://dagster.example.org/")
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TALENTVAULT_MODE", raising=False)
    with alert_receiver() as (url, received):
        monkeypatch.setenv("TALENTVAULT_ALERT_URLS", url)
        yield received


@pytest.fixture(scope="module")
def instance():
    """One instance for the module (each test starts its sensors at the present)."""
    with dg.instance_for_test() as inst:
        yield inst


def text(message: dict) -> str:
    return f"{message['title']}\n{message['message']}"


@dg.asset(key=["keap", "contacts"], partitions_def=DAYS)
def contacts_that_fail() -> None:
    # a vendor error can quote the record it refused: that text must not reach the alert
    raise ValueError(f"Keap refused the contact {EMAIL}")


def test_a_failed_run_alerts_once_with_its_id_and_link_and_no_personal_data(channel, instance):
    _, cursor = tick(failed_run_alert_sensor, instance, None)   # the first tick starts now
    result = dg.materialize([contacts_that_fail], instance=instance, partition_key=DAY,
                            raise_on_error=False)
    assert not result.success
    tick(failed_run_alert_sensor, instance, cursor)
    assert len(channel) == 1
    message = text(channel[0])
    assert result.run_id in message
    assert f"https://dagster.example.org/runs/{result.run_id}" in message
    assert "keap__contacts (ValueError)" in message and DAY in message
    assert EMAIL not in message and "jane" not in message.lower()
    assert "[sandbox]" in channel[0]["title"]


contacts_with_duplicates = contacts_asset(False, duplicate_rows=2, sample=EMAIL)


@dg.asset(key=["greenhouse", "jobs"], partitions_def=DAYS,
          check_specs=[dg.AssetCheckSpec("titles_present", asset=["greenhouse", "jobs"])])
def jobs_with_a_warning():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="titles_present", passed=False,
                              severity=dg.AssetCheckSeverity.WARN)


def test_a_failed_blocking_check_alerts_that_the_push_is_held_and_why(channel, instance):
    _, cursor = tick(failed_run_alert_sensor, instance, None)
    result = dg.materialize([contacts_with_duplicates, jobs_with_a_warning], instance=instance,
                            partition_key=DAY, raise_on_error=False)
    assert not result.success       # Dagster stops the run at a failed blocking check
    _, cursor = tick(failed_run_alert_sensor, instance, cursor)
    assert [m["title"].split(": ", 1)[1] for m in channel] == [
        "run failed: __ephemeral_asset_job__", f"blocking check failed, Keap push held for {DAY}"]
    message = text(channel[1])
    assert f"keap/contacts emails_are_unique failed for {DAY} (duplicate_rows=2)" in message
    assert f"Keap push (sync/keap_push) for {DAY} is held back" in message
    assert result.run_id in message
    assert EMAIL not in message and "titles_present" not in message  # a warning pages no one
    tick(failed_run_alert_sensor, instance, cursor)
    assert len(channel) == 2        # once per run


push_with_dead_letters = push_asset(sent=5, failed_permanent=2, dead_letters_total=3)


@dg.asset(key=["backups", "catalog"],
          check_specs=[dg.AssetCheckSpec("backup_files_match_manifests", asset=["backups",
                                                                                "catalog"])])
def damaged_catalog():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="backup_files_match_manifests", passed=False,
                              severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"damaged_count": 4, "damaged_paths": "keap/contacts/x"})


def test_new_dead_letters_and_verify_damage_in_a_successful_run_alert_with_counts(
        channel, instance):
    _, cursor = tick(finished_run_alert_sensor, instance, None)
    push = dg.materialize([push_with_dead_letters], instance=instance, partition_key=DAY)
    verify = dg.materialize([damaged_catalog], instance=instance)
    _, cursor = tick(finished_run_alert_sensor, instance, cursor)
    messages = [text(m) for m in channel]
    assert len(messages) == 2
    assert f"2 new dead letter(s) in the Keap push for {DAY}" in messages[0]
    assert "3 in the dead letter in all" in messages[0] and push.run_id in messages[0]
    assert "verify found damaged backup files (damaged_count=4)" in messages[1]
    assert verify.run_id in messages[1]
    tick(finished_run_alert_sensor, instance, cursor)
    assert len(channel) == 2


def test_a_backup_late_beyond_the_rpo_alerts_once_per_late_day(channel, tmp_path, instance,
                                                                monkeypatch):
    from orchestration.config import data_root

    today = datetime.now(UTC).date()
    land_install(data_root(), {"greenhouse": today - timedelta(days=1),
                               "keap": today - timedelta(days=3),
                               "highlevel": today - timedelta(days=1)})
    _, cursor = tick(freshness_alert_sensor, instance, None)
    assert len(channel) == 1
    message = text(channel[0])
    late_day = (today - timedelta(days=3)).isoformat()
    assert f"keap backup late: newest whole day {late_day}" in message
    assert "RPO is 26 h" in message and "greenhouse" not in message
    assert json.loads(cursor) == {"keap": late_day}
    tick(freshness_alert_sensor, instance, cursor)
    assert len(channel) == 1
    monkeypatch.setenv("TALENTVAULT_RPO_HOURS", "100")
    _, cursor = tick(freshness_alert_sensor, instance, cursor)
    assert json.loads(cursor) == {} and len(channel) == 1


def test_an_unreachable_or_wrong_channel_fails_the_tick_without_naming_the_url(
        channel, instance, monkeypatch):
    from sandbox.process import free_port

    _, cursor = tick(finished_run_alert_sensor, instance, None)
    dg.materialize([push_with_dead_letters], instance=instance, partition_key=DAY)
    monkeypatch.setenv("TALENTVAULT_ALERT_URLS", f"json://127.0.0.1:{free_port()}/alerts")
    errors, _ = tick(finished_run_alert_sensor, instance, cursor)
    assert len(errors) == 1 and "did not take the alert" in errors[0]
    monkeypatch.setenv("TALENTVAULT_ALERT_URLS", "json://ok.example,not-a-url-token123")
    errors, _ = tick(finished_run_alert_sensor, instance, cursor)
    assert len(errors) == 1 and "entry 2 of 2 is not an apprise URL" in errors[0]
    assert "token123" not in errors[0]


def test_the_alert_sensors_are_in_the_code_location_and_on_by_default():
    from orchestration.definitions import defs

    names = {"failed_run_alert_sensor", "finished_run_alert_sensor", "freshness_alert_sensor"}
    sensors = {s.name: s for s in defs.sensors if s.name in names}
    assert set(sensors) == names
    assert {s.default_status for s in sensors.values()} == {dg.DefaultSensorStatus.RUNNING}
