"""HighLevel configuration in a restore (issue 17 item 2), against the served sandbox.

A day backed up; then a custom field is deleted (its values go with it) through the API, a
pipeline and a workflow are deleted in the sandbox's store (the API cannot write either) with
the pipeline's opportunities, and one contact holding a value of the field is deleted. The
preview at the backup's time lists the field to recreate, the pipeline and the workflow as
"rebuild by hand" with the export document, and the pipeline's opportunities as waiting. Apply
recreates the field before any contact write, and every value lands on the new field (sandbox
truth). The pipeline is then rebuilt by hand (same name and stage names, new ids): the next
preview and apply bring its opportunities back into it at their stages; a re-run writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.recovery.restore import Selection, preview
from assets.recovery.restore.apply import apply as apply_plan
from assets.recovery.restore.ledger import ledger_relation
from orchestration.resources import HighLevelResource
from orchestration.times import iso
from sandbox import credentials, records
from tests.e2e.conftest import World, backed_up_docs
from tests.e2e.restore_support import lost_create_applied, written

# what a HighLevel restore reads (no notes, tasks or conversations: one call per contact)
CONFIG_SPECS = [s for s in HIGHLEVEL if s.key.path[-1] in (
    "contacts", "opportunities", "pipelines", "workflows", "custom_fields")]
FIELD_KEY = "contact.source_channel"


def idmap(root: Path, entity: str) -> dict[str, str]:
    con = duckdb.connect()
    try:
        ledger_relation(con, root)
        return dict(con.execute("SELECT backup_id, live_id FROM restore_idmap "
                                "WHERE entity = ?", [entity]).fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def damaged(sandbox_world: World) -> dict:
    w = sandbox_world
    as_of = w.backup_as_of(CONFIG_SPECS)
    field = next(f for f in w.sandbox_docs("highlevel", "custom_fields").values()
                 if f["fieldKey"] == FIELD_KEY)
    holders = {cid: v["value"] for cid, d in w.sandbox_docs("highlevel", "contacts").items()
               for v in d.get("customFields") or [] if v["id"] == field["id"]}
    opps = w.sandbox_docs("highlevel", "opportunities")
    pipelines = w.sandbox_docs("highlevel", "pipelines")
    pipeline = max(pipelines.values(),
                   key=lambda p: sum(o["pipelineId"] == p["id"] for o in opps.values()))
    in_pipeline = {i: o for i, o in opps.items() if o["pipelineId"] == pipeline["id"]}
    workflow = next(iter(w.sandbox_docs("highlevel", "workflows").values()))
    hl = HighLevelResource(requests_per_window=10_000).open()
    try:
        hl.http.request("DELETE", f"/locations/{credentials.HIGHLEVEL_LOCATION_ID}/"
                        f"customFields/{field['id']}", idempotent=True)
        for oid in in_pipeline:
            hl.delete_opportunity(oid)
        gone_contact = sorted(set(holders) - {o["contactId"] for o in opps.values()})[0]
        hl.delete_contact(gone_contact)
    finally:
        hl.close()
    at = iso(w.store.now())
    w.store.delete("highlevel", "pipelines", pipeline["id"], at=at)
    w.store.delete("highlevel", "workflows", workflow["id"], at=at)
    assert len(holders) >= 5 and len(in_pipeline) >= 5
    assert not any(v["id"] == field["id"] for d in w.sandbox_docs("highlevel", "contacts").values()
                   for v in d.get("customFields") or [])          # the values went too
    return {"as_of": as_of, "field": field, "holders": holders, "pipeline": pipeline,
            "opps": in_pipeline, "workflow": workflow, "gone_contact": gone_contact}


def test_custom_field_recreated_first_and_pipeline_rebuilt_by_hand(sandbox_world: World,
                                                                    damaged: dict) -> None:
    w, d = sandbox_world, damaged
    plan = preview(w.root, "highlevel", d["as_of"])
    c = plan.counts
    assert c["custom_field_create"] == 1
    assert (c["pipelines_to_rebuild_by_hand"], c["workflows_to_rebuild_by_hand"]) == (1, 1)
    assert c["opportunities_waiting_for_pipeline"] == len(d["opps"])
    assert c["create"] == 1 and c["update_records"] == len(d["holders"]) - 1
    assert "opportunity_create" not in c                  # nothing written into no pipeline
    assert "cannot be recreated through the API" in plan.markdown
    doc_path = w.root / "restore" / "plans" / plan.plan_id / "configuration.md"
    assert str(doc_path) in plan.markdown
    doc = doc_path.read_text()
    stages = [s["name"] for s in sorted(d["pipeline"]["stages"], key=lambda s: s["position"])]
    assert f"## Pipeline: {d['pipeline']['name']}" in doc
    assert "\n".join(f"{k}. {s}" for k, s in enumerate(stages, 1)) in doc
    assert f"## Workflow: {d['workflow']['name']}" in doc
    assert "\n".join(f"{k}. {o}" for k, o in enumerate(d["field"]["picklistOptions"], 1)) in doc
    for oid in sorted(d["opps"])[:50]:
        assert f"`{oid}`" in plan.markdown                # waiting, named
    assert not any(v in plan.markdown for v in d["holders"].values() if len(v) > 8)

    applied = apply_plan(w.root, plan.plan_id)
    assert applied["failed_permanent"] == applied["failed_retryable"] == 0
    live_fields = [f for f in w.sandbox_docs("highlevel", "custom_fields").values()
                   if f["name"] == d["field"]["name"]]
    assert len(live_fields) == 1 and live_fields[0]["id"] != d["field"]["id"]
    new_id = live_fields[0]["id"]
    assert idmap(w.root, "custom_fields") == {d["field"]["id"]: new_id}
    contacts = idmap(w.root, "contacts")
    assert set(contacts) == {d["gone_contact"]}
    live = w.sandbox_docs("highlevel", "contacts")
    for cid, value in d["holders"].items():               # every value on the new field
        values = {v["id"]: v["value"] for v in live[contacts.get(cid, cid)]["customFields"]}
        assert values.get(new_id) == value and d["field"]["id"] not in values
    con = duckdb.connect()
    ledger_relation(con, w.root)
    first_contact_write, field_done = con.execute("""
        SELECT min("at") FILTER (entity <> 'custom_fields'),
               max("at") FILTER (entity = 'custom_fields' AND status = 'succeeded')
        FROM restore_ledger WHERE plan_id = ?""", [plan.plan_id]).fetchone()
    con.close()
    assert field_done < first_contact_write               # the field before any contact write

    again = preview(w.root, "highlevel", d["as_of"])      # still waiting, nothing else to do
    assert written(again.counts) == {}
    assert again.counts["opportunities_waiting_for_pipeline"] == len(d["opps"])

    # rebuilt by hand in HighLevel: same name and stage names, new ids
    rebuilt = {**d["pipeline"], "id": "rebuiltPipeline00001",
               "stages": [{**s, "id": f"rebuilt-stage-{k}"}
                          for k, s in enumerate(reversed(d["pipeline"]["stages"]))]}
    records.save(w.store, "highlevel", "pipelines", rebuilt)
    plan2 = preview(w.root, "highlevel", d["as_of"])
    assert plan2.counts["opportunity_create"] == len(d["opps"])
    assert plan2.counts["opportunities_waiting_for_pipeline"] == 0
    assert plan2.counts["pipelines_to_rebuild_by_hand"] == 0
    assert written(plan2.counts) == {"opportunity_create": len(d["opps"])}
    assert apply_plan(w.root, plan2.plan_id)["succeeded"] == len(d["opps"])
    stage_of = {s["id"]: s["name"] for s in d["pipeline"]["stages"]}
    new_stage = {s["name"]: s["id"] for s in rebuilt["stages"]}
    backup = backed_up_docs(w.root, "highlevel", "opportunities", d["as_of"])
    by_contact = {o["contactId"]: o for o in w.sandbox_docs("highlevel", "opportunities").values()
                  if o["pipelineId"] == rebuilt["id"]}
    assert len(by_contact) == len(d["opps"])
    for oid in d["opps"]:
        b = backup[oid]
        o = by_contact[contacts.get(b["contactId"], b["contactId"])]
        assert o["pipelineStageId"] == new_stage[stage_of[b["pipelineStageId"]]]
        assert (o["name"], o["status"], o["monetaryValue"]) == (
            b["name"], b["status"], b["monetaryValue"])

    rerun = apply_plan(w.root, plan2.plan_id)             # the same plan again: nothing sent
    assert rerun["succeeded"] == 0 and rerun["changes_still_needed"] == 0
    last = preview(w.root, "highlevel", d["as_of"])
    assert written(last.counts) == {}
    assert last.counts["opportunities_waiting_for_pipeline"] == 0
    assert json.loads((w.root / "restore" / "plans" / last.plan_id / "plan.json").read_text())


def test_a_field_create_whose_reply_was_lost_is_found_by_name(sandbox_world: World,
                                                              damaged: dict) -> None:
    """An apply killed after HighLevel made the field and before the ledger heard it: the
    re-run finds the field by name, creates no second one, and records the write once."""
    w, d = sandbox_world, damaged
    field = next(f for f in w.sandbox_docs("highlevel", "custom_fields").values()
                 if f["fieldKey"] == "contact.ats_candidate_id")
    holders = {cid: v["value"] for cid, doc in w.sandbox_docs("highlevel", "contacts").items()
               for v in doc.get("customFields") or [] if v["id"] == field["id"]}
    assert len(holders) >= 3
    path = f"/locations/{credentials.HIGHLEVEL_LOCATION_ID}/customFields"
    hl = HighLevelResource(requests_per_window=10_000).open()
    try:
        hl.http.request("DELETE", f"{path}/{field['id']}", idempotent=True)
        # a granular restore recreates the field only when its records carry a value of it
        one = sorted(holders)[0]
        assert preview(w.root, "highlevel", d["as_of"], selection=Selection(ids=[one])
                       ).counts["custom_field_create"] == 1
        other = sorted(set(w.sandbox_docs("highlevel", "contacts")) - set(holders))[0]
        assert "custom_field_create" not in preview(
            w.root, "highlevel", d["as_of"], selection=Selection(ids=[other])).counts
        plan = preview(w.root, "highlevel", d["as_of"])
        assert plan.counts["custom_field_create"] == 1
        lost_id = lost_create_applied(w, plan.plan_id, "custom_fields", field["id"],
                                      field["name"], hl.create_custom_field)
    finally:
        hl.close()
    live = w.sandbox_docs("highlevel", "contacts")
    contacts = idmap(w.root, "contacts")
    for cid, value in holders.items():
        values = {v["id"]: v["value"] for v in live[contacts.get(cid, cid)]["customFields"]}
        assert values.get(lost_id) == value
    assert written(preview(w.root, "highlevel", d["as_of"]).counts) == {}

