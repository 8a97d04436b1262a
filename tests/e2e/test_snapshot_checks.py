"""Snapshot checks in real Dagster runs against the sandbox over a socket: silent on a clean
generated world; on crafted bad records the right checks fail with the right ids, a blocking
ERROR stops what depends on the asset, and a WARN does not."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets.greenhouse.extract import greenhouse_assets
from assets.highlevel.extract import highlevel_assets
from assets.keap.extract import keap_assets
from checks.rules import ENUMERATIONS_KNOWN, REFERENCES_RESOLVE, TIMESTAMPS_NOT_IN_FUTURE
from orchestration.partitions import daily_snapshots
from orchestration.times import iso
from sandbox import records
from tests.e2e.conftest import World

MISSING_CANDIDATE = 99999999


@dg.asset(key=["test", "after_applications"], deps=[dg.AssetKey(["greenhouse", "applications"])],
          partitions_def=daily_snapshots, group_name="test", kinds={"python"})
def after_applications() -> dg.MaterializeResult:
    """Stands in for the Keap push: reads applications."""
    return dg.MaterializeResult()


@dg.asset(key=["test", "after_candidates"], deps=[dg.AssetKey(["greenhouse", "candidates"])],
          partitions_def=daily_snapshots, group_name="test", kinds={"python"})
def after_candidates() -> dg.MaterializeResult:
    """Reads candidates, whose only failing check will be a warning."""
    return dg.MaterializeResult()


def _failed(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e
            for e in result.get_asset_check_evaluations() if not e.passed}


def test_every_check_passes_on_a_clean_generated_world(sandbox_world: World):
    """The generated world's deliberate messiness (bad emails, odd phones, drifting stage names)
    is not structural breakage: no check fails on it, so nothing blocks."""
    extracts = [*greenhouse_assets, *keap_assets, *highlevel_assets]
    result = dg.materialize(extracts, partition_key=sandbox_world.day().isoformat(),
                            resources=sandbox_world.resources())
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    expected = {k for a in extracts for k in a.check_keys}
    assert {(e.asset_key, e.check_name) for e in evaluations} == {
        (k.asset_key, k.name) for k in expected}
    assert _failed(result) == {}


def test_bad_records_fail_the_right_checks_and_only_errors_block(sandbox_world: World):
    w = sandbox_world
    w.tick(1)                     # the day after the clean full snapshot: an incremental
    day = w.day().isoformat()
    now = w.store.now()
    stamp = iso(now - timedelta(hours=1))
    base = next(w.store.iter_docs("greenhouse", "applications", "json_extract(doc, '$.status') "
                                  "= 'in_process'"))
    top = max(int(d["id"]) for d in w.store.iter_docs("greenhouse", "applications"))
    orphan = {**base, "id": top + 1, "candidate_id": MISSING_CANDIDATE, "updated_at": stamp}
    unknown = {**base, "id": top + 2, "status": "archived", "updated_at": stamp}
    person = w.store.get("greenhouse", "candidates", base["candidate_id"])
    # ahead of the sandbox's clock, though months behind the real one: only the simulated
    # clock can flag it
    person = {**person, "last_activity_at": iso(now + timedelta(days=3)), "updated_at": stamp}
    for entity, doc in (("applications", orphan), ("applications", unknown),
                        ("candidates", person)):
        records.save(w.store, "greenhouse", entity, doc)

    result = dg.materialize([*greenhouse_assets, after_applications, after_candidates],
                            partition_key=day, resources=w.resources(),
                            raise_on_error=False)

    failed = _failed(result)
    assert set(failed) == {("greenhouse/applications", REFERENCES_RESOLVE),
                           ("greenhouse/applications", ENUMERATIONS_KNOWN),
                           ("greenhouse/candidates", TIMESTAMPS_NOT_IN_FUTURE)}
    ids = {k: e.metadata["sample_failing_ids"].value for k, e in failed.items()}
    assert ids[("greenhouse/applications", REFERENCES_RESOLVE)] == [orphan["id"]]
    assert ids[("greenhouse/applications", ENUMERATIONS_KNOWN)] == [unknown["id"]]
    assert ids[("greenhouse/candidates", TIMESTAMPS_NOT_IN_FUTURE)] == [person["id"]]
    severities = {k: e.severity for k, e in failed.items()}
    assert severities[("greenhouse/candidates", TIMESTAMPS_NOT_IN_FUTURE)] == \
        dg.AssetCheckSeverity.WARN
    assert severities[("greenhouse/applications", REFERENCES_RESOLVE)] == \
        dg.AssetCheckSeverity.ERROR
    assert failed[("greenhouse/candidates", TIMESTAMPS_NOT_IN_FUTURE)].metadata[
        "clock_source"].value == "sandbox"

    materialized = {e.asset_key.to_user_string()
                    for e in result.get_asset_materialization_events()}
    # every backup still landed (the partition is kept, flagged), ...
    assert {a.key.to_user_string() for a in greenhouse_assets} <= materialized
    # ... the blocking ERROR stopped what reads applications, the WARN did not stop anything
    assert "test/after_applications" not in materialized
    assert "test/after_candidates" in materialized
    assert not result.success
