"""The code location loads, and every asset carries what the UI needs."""

import dagster as dg

from orchestration.definitions import defs


def test_code_location_loads():
    dg.Definitions.validate_loadable(defs)


def test_every_asset_has_group_kinds_and_description():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert len(key.path) == 2, key
        assert node.group_name, key
        assert node.kinds, key
        assert node.description and len(node.description) > 20, key


def test_backup_assets_cover_every_entity_of_the_brief():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    expected = {
        "greenhouse/" + e for e in ("candidates", "applications", "jobs", "job_stages",
                                    "application_stages", "offers", "interviews",
                                    "rejection_reasons", "users")
    } | {"keap/" + e for e in ("contacts", "tags", "tag_categories", "custom_fields")} | {
        "highlevel/" + e for e in ("contacts", "opportunities", "pipelines", "workflows",
                                   "custom_fields")}
    assert expected <= keys


def test_weekly_full_schedule_asks_every_extract_asset_for_a_full_snapshot():
    from datetime import UTC, datetime

    from orchestration.schedules import weekly_full_backup_schedule

    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 11, 2, tzinfo=UTC))
    request = weekly_full_backup_schedule(ctx)
    assert request.partition_key == "2026-01-10"
    ops = request.run_config["ops"]
    assert ops["keap__contacts"] == {"config": {"mode": "full"}}
    assert len(ops) == 44
    # the run config must be valid for the job it launches
    result = dg.validate_run_config(defs.resolve_job_def("backup_job"), request.run_config)
    assert result["ops"]["keap__contacts"]["config"]["mode"] == "full"


def test_nightly_schedule_backs_up_the_day_that_ended_not_the_open_day():
    from datetime import UTC, datetime

    from orchestration.partitions import daily_snapshots
    from orchestration.schedules import daily_backup_schedule

    now = datetime(2026, 1, 11, 0, 30, tzinfo=UTC)
    request = daily_backup_schedule(dg.build_schedule_context(scheduled_execution_time=now))
    assert request.partition_key == "2026-01-10"
    assert request.run_key == "daily-2026-01-10"
    # today is a partition too (an open day), which is why the schedule names yesterday
    today = datetime.now(UTC).date()
    assert daily_snapshots.has_partition_key(today.isoformat())
    assert daily_snapshots.get_last_partition_key() == today.isoformat()


def test_every_asset_shows_its_owner_and_where_its_code_is():
    from pathlib import Path

    from orchestration.owners import DEFAULT_OWNER

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == [DEFAULT_OWNER], key
        refs = node.metadata["dagster/code_references"].code_references
        assert refs and all(Path(r.file_path).is_file() and r.line_number > 0 for r in refs), key


def test_owners_per_group_from_the_setting():
    import pytest

    from orchestration.owners import OwnersError, owners_by_group, with_owners

    @dg.asset(group_name="sync")
    def pushed() -> None: ...

    @dg.asset(group_name="keap")
    def backed_up() -> None: ...

    @dg.asset(group_name="keap", owners=["someone@example.com"])
    def declared() -> None: ...

    owners = owners_by_group(" sync = team:crm-ops , *=team:data ")
    assert owners == {"*": "team:data", "sync": "team:crm-ops"}
    assert [a.specs_by_key[a.key].owners for a in with_owners([pushed, backed_up, declared],
                                                               owners)] == [
        ["team:crm-ops"], ["team:data"], ["someone@example.com"]]
    assert owners_by_group("") == {"*": "team:data-platform"}
    for bad in ("sync", "sync=", "=team:x", "sync=crm-ops"):
        with pytest.raises(OwnersError, match="TALENTVAULT_ASSET_OWNERS"):
            owners_by_group(bad)
