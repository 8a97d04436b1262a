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
