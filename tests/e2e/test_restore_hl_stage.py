"""HighLevel: a stage deleted inside a pipeline that still exists, against the served sandbox.

HighLevel's API cannot write pipelines or stages, so a restore cannot bring the stage back: the
preview lists it with its pipeline and position (configuration.md) and its opportunities as
waiting, apply writes none of them and fails none; once the stage is added again by hand (same
name, new id), the next preview and apply restore the opportunities at it, and then nothing is
left to do.
"""

from __future__ import annotations

import pytest

from assets.recovery.restore import preview
from assets.recovery.restore.apply import apply as apply_plan
from orchestration.resources import HighLevelResource
from sandbox import records
from tests.e2e.conftest import World, backed_up_docs
from tests.e2e.restore_support import written
from tests.e2e.test_restore_config import CONFIG_SPECS


@pytest.fixture(scope="module")
def as_of(sandbox_world: World) -> str:
    return sandbox_world.backup_as_of(CONFIG_SPECS)


def test_opportunities_at_a_deleted_stage_wait_for_it(sandbox_world: World, as_of: str) -> None:
    w = sandbox_world
    at_stage: dict[tuple[str, str], list[str]] = {}
    for o in w.sandbox_docs("highlevel", "opportunities").values():
        at_stage.setdefault((o["pipelineId"], o["pipelineStageId"]), []).append(o["id"])
    (pid, sid), held = max(at_stage.items(), key=lambda kv: (len(kv[1]), kv[0]))
    pipeline = w.sandbox_docs("highlevel", "pipelines")[pid]
    ordered = sorted(pipeline["stages"], key=lambda s: s["position"])
    position = next(k for k, s in enumerate(ordered, 1) if s["id"] == sid)
    stage, other = ordered[position - 1], ordered[0 if position > 1 else 1]
    assert len(held) >= 3
    # deleted in HighLevel: its opportunities moved to another stage, one deleted
    records.save(w.store, "highlevel", "pipelines",
                 {**pipeline, "stages": [s for s in pipeline["stages"] if s["id"] != sid]})
    hl = HighLevelResource(requests_per_window=10_000).open()
    try:
        for oid in held[1:]:
            hl.update_opportunity(oid, {"pipelineStageId": other["id"]})
        hl.delete_opportunity(held[0])
    finally:
        hl.close()

    plan = preview(w.root, "highlevel", as_of)
    c = plan.counts
    assert (c["stages_to_rebuild_by_hand"], c["opportunities_waiting_for_stage"]) == (
        1, len(held))
    assert c["pipelines_to_rebuild_by_hand"] == 0          # the pipeline is still there
    assert written(c) == {}                                # nothing else to do meanwhile
    assert all(f"`{oid}`" in plan.markdown for oid in held)
    doc = (w.root / "restore" / "plans" / plan.plan_id / "configuration.md").read_text()
    assert f"## Stage: {stage['name']} (pipeline {pipeline['name']})" in doc
    assert f"at position {position} of {len(ordered)}" in doc
    applied = apply_plan(w.root, plan.plan_id)
    assert applied["failed_permanent"] == applied["failed_retryable"] == 0
    assert applied["succeeded"] == 0

    added = {**stage, "id": "readded-stage-1"}              # added again by hand: a new id
    records.save(w.store, "highlevel", "pipelines", {**pipeline, "stages": [
        added if s["id"] == sid else s for s in pipeline["stages"]]})
    plan2 = preview(w.root, "highlevel", as_of)
    assert plan2.counts["opportunities_waiting_for_stage"] == 0
    assert plan2.counts["stages_to_rebuild_by_hand"] == 0
    assert written(plan2.counts) == {"opportunity_create": 1,
                                     "opportunity_update_records": len(held) - 1}
    applied = apply_plan(w.root, plan2.plan_id)
    assert applied["failed_permanent"] == applied["failed_retryable"] == 0
    live = w.sandbox_docs("highlevel", "opportunities")
    contact = backed_up_docs(w.root, "highlevel", "opportunities", as_of)[held[0]]["contactId"]
    assert [o["pipelineStageId"] for o in live.values()
            if o["contactId"] == contact and o["pipelineId"] == pid] == [added["id"]]
    assert all(live[oid]["pipelineStageId"] == added["id"] for oid in held[1:])
    assert written(preview(w.root, "highlevel", as_of).counts) == {}
