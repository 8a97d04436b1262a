"""webhook_sensor on a real inbox and a real (ephemeral) Dagster instance: which runs it asks
for, that its cursor makes re-evaluation idempotent, and that a busy source waits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import defs as base_defs
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.webhooks.events import Event
from orchestration.webhooks.inbox import Inbox
from orchestration.webhooks.sensor import source_backup_jobs, webhook_sensor

DEFS = dg.Definitions.merge(base_defs, dg.Definitions(
    jobs=list(source_backup_jobs.values()), sensors=[webhook_sensor]))


def ev(source: str, object_id: str, when: datetime | None, op: str = "upsert",
       event_type: str = "change") -> Event:
    return Event(str(uuid.uuid4()), source, event_type, "contact", object_id, op, None, when)


def evaluate(instance: dg.DagsterInstance, root: Path, cursor: str | None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"storage": SnapshotStorage(root=str(root))},
                                  definitions=DEFS)
    return webhook_sensor(ctx)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def test_one_run_per_changed_source_for_the_day_of_the_changes(tmp_path, instance):
    inbox = Inbox(tmp_path)
    day = datetime(2026, 1, 20, 15, tzinfo=UTC)
    inbox.append([ev("keap", "12", day), ev("keap", "13", day.replace(hour=16)),
                  ev("keap", "14", day, op="delete")])
    inbox.append([ev("greenhouse", "77", datetime(2026, 1, 19, 23, tzinfo=UTC)),
                  ev("greenhouse", "78", day)])
    result = evaluate(instance, tmp_path, None)
    requests = {r.job_name: r for r in result.run_requests}
    assert set(requests) == {"greenhouse_backup_job", "keap_backup_job"}
    keap = requests["keap_backup_job"]
    assert keap.partition_key == "2026-01-20"
    assert keap.tags["talentvault/trigger"] == "webhook"
    assert keap.tags["talentvault/webhook_events"] == "3"
    assert keap.tags["talentvault/webhook_deletes"] == "1"
    assert requests["greenhouse_backup_job"].partition_key == "2026-01-20"
    cursor = json.loads(result.cursor)
    assert set(cursor) == {"greenhouse", "keap"}
    assert keap.run_key == f"webhook-keap-{cursor['keap']}"
    # each request resolves against its job: a real partition of the source's assets
    for name, request in requests.items():
        job = DEFS.resolve_job_def(name)
        resolved = request.with_resolved_tags_and_config(job, [], instance)
        assert resolved.tags["dagster/partition"] == request.partition_key
        keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
        source = name.removesuffix("_backup_job")
        # the source's backups only: the automation refreshes the catalog after them
        assert {k.split("/")[0] for k in keys} == {source}

    # the same cursor again: nothing new, nothing requested
    again = evaluate(instance, tmp_path, result.cursor)
    assert again.run_requests == [] and again.cursor == result.cursor
    # a new HighLevel event: only HighLevel
    inbox.append([ev("highlevel", "hl_1", day)])
    third = evaluate(instance, tmp_path, result.cursor)
    assert [r.job_name for r in third.run_requests] == ["highlevel_backup_job"]
    assert json.loads(third.cursor)["keap"] == cursor["keap"]


def test_a_source_with_a_run_in_progress_waits_and_keeps_its_events(tmp_path, instance):
    inbox = Inbox(tmp_path)
    day = datetime(2026, 1, 20, 15, tzinfo=UTC)
    inbox.append([ev("keap", "12", day)])
    first = evaluate(instance, tmp_path, None)
    assert [r.job_name for r in first.run_requests] == ["keap_backup_job"]
    run = instance.add_run(dg.DagsterRun(job_name="keap_backup_job",
                                         run_id=str(uuid.uuid4()),
                                         status=dg.DagsterRunStatus.STARTED))
    inbox.append([ev("keap", "13", day), ev("greenhouse", "5", day)])
    busy = evaluate(instance, tmp_path, first.cursor)
    assert [r.job_name for r in busy.run_requests] == ["greenhouse_backup_job"]
    assert json.loads(busy.cursor)["keap"] == json.loads(first.cursor)["keap"]
    instance.report_run_canceled(run)
    later = evaluate(instance, tmp_path, busy.cursor)
    [request] = later.run_requests
    assert request.job_name == "keap_backup_job"
    assert request.tags["talentvault/webhook_events"] == "1"


def test_the_daily_backup_in_progress_also_holds_webhook_runs(tmp_path, instance):
    Inbox(tmp_path).append([ev("greenhouse", "5", datetime(2026, 1, 20, tzinfo=UTC))])
    instance.add_run(dg.DagsterRun(job_name="backup_job", run_id=str(uuid.uuid4()),
                                   status=dg.DagsterRunStatus.STARTING))
    result = evaluate(instance, tmp_path, None)
    assert result.run_requests == []
    assert "wait for the run in progress" in result.skip_reason.skip_message


def test_todays_changes_back_up_the_open_day_at_once(tmp_path, instance, monkeypatch):
    # a real vendor (not the sandbox): events without a time are of the vendor's today, which is
    # a partition (end_offset=1): the run backs the open day up to now
    monkeypatch.setenv("GREENHOUSE_BASE_URL", "https://harvest.greenhouse.io")
    Inbox(tmp_path).append([ev("greenhouse", "5", None)])
    result = evaluate(instance, tmp_path, None)
    today = datetime.now(UTC).date().isoformat()
    assert [(r.job_name, r.partition_key) for r in result.run_requests] == [
        ("greenhouse_backup_job", today)]
    assert "greenhouse" in json.loads(result.cursor)


def test_a_day_that_is_not_a_partition_is_left_to_the_nightly_backup(
        tmp_path, instance, monkeypatch):
    # a vendor clock ahead of ours: tomorrow is not a partition yet
    monkeypatch.setenv("GREENHOUSE_BASE_URL", "https://harvest.greenhouse.io")
    tomorrow = datetime.now(UTC) + timedelta(days=1, hours=1)
    Inbox(tmp_path).append([ev("greenhouse", "5", tomorrow)])
    result = evaluate(instance, tmp_path, None)
    assert result.run_requests == []
    assert f"of {tomorrow.date().isoformat()}, not a partition yet" in (
        result.skip_reason.skip_message)
    assert "greenhouse" in json.loads(result.cursor)


def test_an_empty_inbox_skips(tmp_path, instance):
    result = evaluate(instance, tmp_path, None)
    assert result.run_requests == []
    assert result.skip_reason.skip_message == "no new webhook events"


def test_code_location_with_the_webhook_parts_loads():
    dg.Definitions.validate_loadable(DEFS)
    assert webhook_sensor.default_status == dg.DefaultSensorStatus.STOPPED
