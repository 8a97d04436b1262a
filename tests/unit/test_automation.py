"""The automation conditions after the backups, evaluated by Dagster against a real instance
(`dg.evaluate_automation_conditions`): what runs after the nightly partition and after an open-day
backup, that a failed blocking check holds the day across runs, and that a passing re-run
releases it. Backups "land" as reported materializations and check results, so no run is needed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest

from orchestration.automation import held_by
from orchestration.definitions import defs

NIGHTLY = "2026-01-10"
TODAY = "2026-01-11"
NOW = datetime(2026, 1, 11, 0, 40, tzinfo=UTC)  # after the 00:30 nightly tick
GRAPH = defs.resolve_asset_graph()
BACKUP_KEYS = sorted((k for k in GRAPH.get_all_asset_keys()
                      if GRAPH.get(k).group_name in ("greenhouse", "keap", "highlevel")),
                     key=lambda k: k.to_user_string())
CANDIDATES = dg.AssetKey(["greenhouse", "candidates"])
PUSH = dg.AssetKey(["sync", "keap_push"])
CHAIN = ["identity/candidate_profiles", "identity/quarantine", "identity/keap_contacts",
         "sync/keap_desired", "sync/keap_changeset", "sync/keap_push"]
CLOSED_DAY_ONLY = ["identity/possible_duplicates", "identity/field_profile"]


def land(instance: dg.DagsterInstance, key: dg.AssetKey, day: str,
         failing: str | None = None) -> None:
    """A backup partition as a run leaves it: the materialization, then its checks' results
    (each landing is its own run, as a re-run is)."""
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData

    run_id = str(uuid.uuid4())

    def report(kind: DagsterEventType, data) -> None:
        instance.report_dagster_event(DagsterEvent(event_type_value=kind.value,
                                                   job_name="backup_job",
                                                   event_specific_data=data), run_id=run_id)

    report(DagsterEventType.ASSET_MATERIALIZATION,
           StepMaterializationData(dg.AssetMaterialization(key, partition=day)))
    for check in GRAPH.get(key).check_keys:
        report(DagsterEventType.ASSET_CHECK_EVALUATION, dg.AssetCheckEvaluation(
            asset_key=key, check_name=check.name, passed=check.name != failing,
            partition=day, blocking=GRAPH.get(check).blocking,
            severity=dg.AssetCheckSeverity.ERROR))


def requested(result) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key in GRAPH.get_all_asset_keys():
        parts = result.get_requested_partitions(key)
        if parts:
            out[key.to_user_string()] = set(parts)
    return out


class Ticks:
    """Successive ticks of the automation sensor (the cursor carried over, like the daemon)."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.cursor = instance, None

    def __call__(self, now: datetime = NOW) -> dict[str, set[str]]:
        result = dg.evaluate_automation_conditions(defs, self.instance, evaluation_time=now,
                                                   cursor=self.cursor)
        self.cursor = result.cursor
        return requested(result)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def blocking_check(key: dg.AssetKey) -> str:
    return next(c.name for c in GRAPH.get(key).check_keys if GRAPH.get(c).blocking)


def test_the_nightly_partition_moves_the_whole_day_to_the_push(instance):
    tick = Ticks(instance)
    assert tick() == {}  # nothing landed yet: nothing to do
    for key in BACKUP_KEYS:
        land(instance, key, NIGHTLY)
    asked = tick()
    assert {k: asked.get(k) for k in CHAIN + CLOSED_DAY_ONLY} == {
        k: {NIGHTLY} for k in CHAIN + CLOSED_DAY_ONLY}
    assert tick() == {}  # requested once, not on every tick


def test_an_open_day_backup_of_one_source_reaches_the_push(instance):
    tick = Ticks(instance)
    tick()
    # a webhook backed up Greenhouse alone for today: Keap has no partition for the day
    for key in BACKUP_KEYS:
        if key.path[0] == "greenhouse":
            land(instance, key, TODAY)
    asked = tick(NOW.replace(hour=23, minute=47))
    assert {k: asked.get(k) for k in CHAIN} == {k: {TODAY} for k in CHAIN}
    # the review list and the field audit wait for the whole day (the nightly)
    assert not any(asked.get(k) for k in CLOSED_DAY_ONLY)


def test_a_failed_blocking_check_holds_the_day_until_a_passing_rerun(instance):
    tick = Ticks(instance)
    tick()
    check = blocking_check(CANDIDATES)
    for key in BACKUP_KEYS:
        land(instance, key, NIGHTLY, failing=check if key == CANDIDATES else None)
    asked = tick()
    # what reads the candidates is held, so nothing downstream of it moves either
    assert not any(asked.get(k) for k in ["identity/candidate_profiles", "sync/keap_desired",
                                           "sync/keap_changeset", "sync/keap_push"])
    assert tick() == {} and tick() == {}  # held across ticks, not only in the run
    assert held_by(defs, instance, NIGHTLY) == [f"greenhouse/candidates:{check}"]
    # the data fixed and the backup re-run: its check passes and the day moves on
    land(instance, CANDIDATES, NIGHTLY)
    asked = tick()
    assert asked.get("identity/candidate_profiles") == {NIGHTLY}
    assert asked.get("sync/keap_push") == {NIGHTLY}
    assert held_by(defs, instance, NIGHTLY) == []


def test_a_backfill_of_old_days_does_not_push_old_states(instance):
    tick = Ticks(instance)
    tick()
    for key in BACKUP_KEYS:
        land(instance, key, "2026-01-03")
    asked = tick()
    assert not any(asked.get(k) for k in CHAIN + CLOSED_DAY_ONLY)


CATALOG = "backups/catalog"
VERIFY = dg.AssetCheckKey(dg.AssetKey(CATALOG.split("/")), "backup_files_match_manifests")


def test_the_catalog_is_refreshed_once_after_any_backup_lands(instance):
    tick = Ticks(instance)
    assert CATALOG not in tick()  # nothing landed: no catalog of nothing
    # a webhook's open-day backup of one source, then the nightly of every source, then an old
    # day backfilled: each lands partitions the catalog reads, each refreshes it once
    for day, keys in ((TODAY, [k for k in BACKUP_KEYS if k.path[0] == "keap"]),
                      (NIGHTLY, BACKUP_KEYS), ("2026-01-03", BACKUP_KEYS)):
        for key in keys:
            land(instance, key, day)
        assert tick().get(CATALOG) == {None}, day  # one unpartitioned refresh
        assert CATALOG not in tick()


def test_the_verify_check_is_left_to_its_schedule(instance):
    # a check with no condition of its own would ride along with every automated refresh of the
    # catalog (the daemon runs every check of a requested asset); verify re-hashes every file
    assert GRAPH.get(VERIFY).automation_condition is not None
    tick = Ticks(instance)
    tick()
    for key in BACKUP_KEYS:
        land(instance, key, NIGHTLY)
    result = dg.evaluate_automation_conditions(defs, instance, evaluation_time=NOW,
                                               cursor=tick.cursor)
    assert result.get_num_requested(dg.AssetKey(CATALOG.split("/"))) == 1
    assert result.get_num_requested(VERIFY) == 0
