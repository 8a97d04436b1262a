"""Granular restores, refusals, resuming, and the Dagster jobs and CLI, against the sandbox."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from assets.catalog.views import open_catalog
from assets.recovery.restore import RestoreRefused, preview
from assets.recovery.restore.apply import apply as apply_plan
from orchestration.cli.restore import restore_app as app
from orchestration.jobs import restore_apply_job, restore_preview_job
from orchestration.resources import HighLevelResource, KeapResource
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import iso
from tests.e2e.conftest import CRM_SPECS, World


@pytest.fixture(scope="module")
def as_of(sandbox_world: World) -> str:
    w = sandbox_world
    w.backup(w.day(), CRM_SPECS)
    w.tick(1)
    w.backup(w.day(), CRM_SPECS)
    t = iso(w.store.now() - timedelta(milliseconds=1))
    w.admin("POST", "/clock", json={"advance_seconds": 600})
    return t


def keap_contact(w: World, with_title: bool = True) -> str:
    docs = w.sandbox_docs("keap", "contacts")
    return next(i for i, d in sorted(docs.items(), key=lambda kv: int(kv[0]))
                if d.get("given_name") and d.get("family_name")
                and bool(d.get("job_title")) == with_title)


def test_granular_restore_of_two_fields_changes_only_those(sandbox_world: World, as_of):
    w = sandbox_world
    cid = keap_contact(w)
    original = w.sandbox_docs("keap", "contacts")[cid]
    keap = KeapResource().open()
    try:
        keap.update_contact(cid, {"given_name": "Wrong", "family_name": "Wrong",
                                  "job_title": "Wrong"})
    finally:
        keap.close()
    before = w.sandbox_docs("keap", "contacts")
    plan = preview(w.root, "keap", as_of, fields=["given_name", "job_title"],
                   selection=_ids(cid))
    assert plan.counts["update_records"] == 1 and plan.counts["update_fields"] == 2
    assert apply_plan(w.root, plan.plan_id)["succeeded"] == 1
    after = w.sandbox_docs("keap", "contacts")
    assert after[cid]["given_name"] == original["given_name"]
    assert after[cid]["job_title"] == original["job_title"]
    assert after[cid]["family_name"] == "Wrong"                 # not asked for: left alone
    assert {k: v for k, v in after.items() if k != cid} == {
        k: v for k, v in before.items() if k != cid}             # no other contact touched


def _ids(*ids: str):
    from assets.recovery.restore import Selection

    return Selection(ids=list(ids))


def test_apply_refuses_when_live_changed_after_the_preview(sandbox_world: World, as_of):
    w = sandbox_world
    cid = keap_contact(w, with_title=False)
    keap = KeapResource().open()
    try:
        keap.update_contact(cid, {"given_name": "Bad"})
        plan = preview(w.root, "keap", as_of, selection=_ids(cid))
        assert plan.counts["update_fields"] == 1
        keap.update_contact(cid, {"job_title": "Edited after the preview"})
    finally:
        keap.close()
    changed = w.sandbox_docs("keap", "contacts")[cid]
    with pytest.raises(RestoreRefused, match=f"contacts {cid} \\(changed\\)"):
        apply_plan(w.root, plan.plan_id)
    assert w.sandbox_docs("keap", "contacts")[cid] == changed   # nothing written
    fresh = preview(w.root, "keap", as_of, selection=_ids(cid))
    assert fresh.counts["update_fields"] == 2                    # sees both changes now
    apply_plan(w.root, fresh.plan_id)
    assert w.sandbox_docs("keap", "contacts")[cid].get("job_title") is None


def test_apply_resumes_after_failures_and_skips_what_succeeded(sandbox_world: World, as_of):
    w = sandbox_world
    docs = w.sandbox_docs("highlevel", "contacts")
    victims = sorted(docs)[:12]
    hl = HighLevelResource().open()
    try:
        for cid in victims:
            hl.update_contact(cid, {"companyName": "Broken"})
    finally:
        hl.close()
    plan = preview(w.root, "highlevel", as_of)
    assert plan.counts["update_records"] == 12
    flaky = FaultsFromFirstWrite(HighLevelResource(max_attempts=1).open(), w)
    try:
        first = apply_plan(w.root, plan.plan_id, client=flaky, concurrency=1)
    finally:
        flaky.close()
        w.admin("PUT", "/faults", json={"clear": True})
    assert first["failed_retryable"] > 0 and first["succeeded"] > 0
    second = apply_plan(w.root, plan.plan_id)
    # only what failed is still needed; what succeeded is not written twice
    assert second["changes_still_needed"] == first["failed_retryable"]
    assert second["succeeded"] == first["failed_retryable"]
    assert all(d.get("companyName") != "Broken"
               for d in w.sandbox_docs("highlevel", "contacts").values())
    assert preview(w.root, "highlevel", as_of).counts.get("update_records", 0) == 0


class FaultsFromFirstWrite:
    """The real client; the sandbox starts failing half of HighLevel's requests (HTTP 500, real
    replies) when the first write is sent, so the apply's reads before it are unaffected."""

    def __init__(self, client, world: World):
        self._client, self._world, self._armed = client, world, False

    def update_contact(self, *args, **kw):
        if not self._armed:
            self._armed = True
            self._world.admin("PUT", "/faults",
                              json={"source": "highlevel", "rates": {"500": 0.5}})
        return self._client.update_contact(*args, **kw)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_dagster_jobs_preview_then_apply(sandbox_world: World, as_of):
    w = sandbox_world
    cid = keap_contact(w)
    keap = KeapResource().open()
    try:
        keap.update_contact(cid, {"job_title": "Dagster broke it"})
    finally:
        keap.close()
    resources = {"keap": KeapResource(), "highlevel": HighLevelResource(),
                 "storage": SnapshotStorage(root=str(w.root))}
    result = restore_preview_job.execute_in_process(resources=resources, run_config={
        "ops": {"restore_preview_op": {"config": {"source": "keap", "as_of": as_of,
                                                  "ids": [cid], "fields": ["job_title"]}}}})
    assert result.success
    plan_id = result.output_for_node("restore_preview_op")
    mats = result.get_step_success_events()  # the preview travels as output metadata
    assert mats
    applied = restore_apply_job.execute_in_process(resources=resources, run_config={
        "ops": {"restore_apply_op": {"config": {"plan_id": plan_id}}}})
    assert applied.success
    assert w.sandbox_docs("keap", "contacts")[cid].get("job_title") != "Dagster broke it"


def test_cli_preview_and_apply(sandbox_world: World, as_of):
    w = sandbox_world
    cid = keap_contact(w)
    keap = KeapResource().open()
    try:
        keap.update_contact(cid, {"given_name": "Cli"})
    finally:
        keap.close()
    runner = CliRunner()
    out = runner.invoke(app, ["preview", "--source", "keap", "--as-of", as_of, "--ids", cid,
                              "--root", str(w.root)])
    assert out.exit_code == 0, out.output
    assert "«masked»" in out.output and "Cli" not in out.output
    plan_id = out.output.strip().rsplit("plan id: ", 1)[1].split()[0]
    shown = runner.invoke(app, ["preview", "--source", "keap", "--as-of", as_of, "--ids", cid,
                                "--show-values", "--root", str(w.root)])
    assert '"Cli"' in shown.output
    ((details, subjects),) = open_catalog(w.root).execute(
        "SELECT details, subjects FROM audit.events WHERE action = 'restore_preview' "
        'ORDER BY "at" DESC LIMIT 1').fetchall()
    assert json.loads(details)["show_values"] is True and subjects == [f"keap_contact:{cid}"]
    peek = runner.invoke(app, ["preview", "--source", "keap", "--as-of", as_of, "--where",
                               "id IN (SELECT content FROM read_text('/etc/hostname'))",
                               "--root", str(w.root)])
    assert peek.exit_code == 2 and "may read only the backup" in peek.output
    bad = runner.invoke(app, ["preview", "--source", "keap", "--as-of", as_of, "--fields",
                              "nope", "--root", str(w.root)])
    assert bad.exit_code == 2 and "nope" in bad.output
    done = runner.invoke(app, ["apply", plan_id, "--root", str(w.root)])
    assert done.exit_code == 0, done.output
    assert w.sandbox_docs("keap", "contacts")[cid]["given_name"] != "Cli"
