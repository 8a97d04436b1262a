"""Identity end to end: crafted messy fixtures loaded with `talentvault sandbox load`, served
by the sandbox over a real socket, backed up, then real `dg.materialize` runs of the identity
assets with their GX checks. See tests/fixtures/messy/README.md for what each record is for."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from assets.catalog.views import open_catalog
from assets.identity.assets import (
    DUPLICATES_KEY,
    FIELD_PROFILE_KEY,
    PROFILES_KEY,
    field_profile,
    identity_assets,
    identity_profiles,
    possible_duplicates,
)
from assets.sync.changeset import keap_changeset
from assets.sync.desired import keap_desired
from assets.sync.push import keap_push
from checks import identity as checks
from orchestration.cli import app as cli
from orchestration.resources import build_resources
from orchestration.storage.snapshots import SnapshotStorage
from sandbox import process, records
from sandbox.store import Store
from tests.e2e.conftest import World

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "messy"
NAMES = ("Lopez", "Stone", "Diaz", "Park", "Moss", "Bell", "Chen", "Smith", "Núñez", "Doe")


@dataclass
class Messy:
    world: World
    day: str
    first: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Messy]:
    base = tmp_path_factory.mktemp("messy")
    folder = base / "sandbox"
    loaded = CliRunner().invoke(cli, ["sandbox", "load", str(FIXTURES), "--data-dir",
                                      str(folder)])
    assert loaded.exit_code == 0, loaded.output
    proc = process.start(folder, rate_limits=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("TALENTVAULT_DATA_DIR", str(base / "data"))
    mp.setenv("TALENTVAULT_SANDBOX_URL", proc.base_url)
    store = Store(folder)
    try:
        w = World(proc.base_url, base / "data", store, proc)
        day = w.day().isoformat()
        w.backup(w.day())
        first = dg.materialize(identity_assets, partition_key=day, resources=build_resources(),
                               raise_on_error=False)
        yield Messy(w, day, first)
    finally:
        mp.undo()
        proc.stop()
        store.close()


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _md(ev: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in ev.metadata.items()}


def test_every_quarantined_record_has_the_right_reason(messy: Messy):
    assert messy.first.success
    con = open_catalog(messy.world.root)
    got = dict(con.execute("SELECT record_id, reason FROM identity.quarantine").fetchall())
    assert got == {
        10000003: "no_email", 10000004: "invalid_email", 10000005: "invalid_email",
        10000006: "conflicting_identity", 10000007: "conflicting_identity",
        10000008: "unparseable_field",
        50000004: "candidate_quarantined", 50000007: "orphan_application",
        50000010: "candidate_quarantined", 50000011: "candidate_quarantined"}
    assert con.execute("SELECT DISTINCT source_snapshot_date::VARCHAR FROM identity.quarantine"
                       ).fetchall() == [(messy.day,)]


def test_the_reconciliation_and_dedup_rules_hold_as_blocking_errors(messy: Messy):
    evs = _checks(messy.first)
    for name in checks.PROFILE_CHECKS:
        assert evs[name].passed, name
        assert evs[name].severity == dg.AssetCheckSeverity.ERROR
    spec = {s.name: s for s in identity_profiles.check_specs}
    assert all(spec[name].blocking for name in checks.PROFILE_CHECKS)
    md = _md(evs[checks.EXTRACTED_EQUALS_PROFILED_PLUS_QUARANTINED])
    assert (md["extracted_candidates"], md["profiled_candidates"],
            md["quarantined_candidates"]) == (21, 15, 6)
    assert (md["extracted_applications"], md["profiled_applications"],
            md["quarantined_applications"]) == (11, 7, 4)
    assert md["unexpected_count"] == 0


def test_dedup_merges_spelling_variants_but_never_different_people(messy: Messy):
    con = open_catalog(messy.world.root)
    profiles = dict(con.execute(
        "SELECT profile_id, candidate_ids FROM identity.candidate_profiles").fetchall())
    assert profiles[10000001] == [10000001, 10000002]          # case/whitespace variants
    assert profiles[10000009] == [10000009, 10000010]
    for a, b in ((10000011, 10000012), (10000015, 10000016), (10000018, 10000019)):
        assert profiles[a] == [a] and profiles[b] == [b]        # same names, other emails
    ana = con.execute("""SELECT first_name, last_name, company, title, phone, can_email,
                                current_application_id, current_stage_name
                         FROM identity.candidate_profiles WHERE profile_id = 10000001""")
    assert ana.fetchall() == [("Ana", "Lopez", "Globex", "Engineer", "+14155550101", False,
                               50000003, "Onsite")]
    pairs = con.execute("""SELECT profile_id_a, profile_id_b, rule
                           FROM identity.possible_duplicates ORDER BY 1""").fetchall()
    assert pairs == [(10000011, 10000012, "same_name_same_phone"),
                     (10000013, 10000014, "similar_name_same_phone"),
                     (10000020, 10000021, "same_name_same_phone")]


def test_keap_duplicates_are_a_warning_with_contact_ids(messy: Messy):
    ev = _checks(messy.first)[checks.KEAP_EMAILS_ARE_UNIQUE]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    md = _md(ev)
    assert md["unexpected_count"] == 1 and md["sample_failing_ids"] == ["1001"]  # one email
    assert md["contacts_sharing_an_email"] == 2 and md["contacts"] == 5


def test_the_field_audit_flags_values_the_sync_does_not_map(messy: Messy):
    evs = _checks(messy.first)
    ev = evs[checks.STAGES_AND_STATUSES_ARE_MAPPED]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    details = _md(ev)["details"]
    assert "Culture Fit Chat (1)" in details and "on_hold (1)" in details
    assert evs[checks.SYNC_FIELDS_ARE_PRESENT].passed
    con = open_catalog(messy.world.root)
    assert con.execute("""SELECT dominant_class FROM identity.field_profile
                          WHERE entity = 'candidates' AND field = 'emails'""").fetchall() == [
        ("email",)]


def test_no_personal_data_reaches_dagster_metadata(messy: Messy):
    texts = []
    for event in messy.first.get_asset_materialization_events():
        texts += [str(v.value) for v in event.materialization.metadata.values()]
    texts += [str(v.value) for e in messy.first.get_asset_check_evaluations()
              for v in e.metadata.values()]
    blob = "\n".join(texts)
    assert "a.a@a.a" in blob                      # emails appear as shapes in the audit
    assert "@example" not in blob and not any(n in blob for n in NAMES)


def test_a_failing_blocking_check_stops_the_downstream_asset(messy: Messy, tmp_path):
    # the same backups, a policy that keeps conflicting records as separate profiles: two
    # profiles then share an email, and the gate must stop everything downstream
    for source in ("greenhouse", "keap"):
        shutil.copytree(messy.world.root / source, tmp_path / source)
    result = dg.materialize(
        [identity_profiles, possible_duplicates, keap_desired, keap_changeset, keap_push],
        partition_key=messy.day,
        resources={**build_resources(), "storage": SnapshotStorage(root=str(tmp_path))},
        run_config={"ops": {"identity_profiles": {"config": {"on_conflict": "separate"}}}},
        raise_on_error=False)
    assert not result.success
    ev = _checks(result)[checks.EMAILS_ARE_UNIQUE]
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert sorted(_md(ev)["sample_failing_ids"]) == [10000006, 10000007]
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert PROFILES_KEY in materialized and DUPLICATES_KEY not in materialized
    # nothing reaches Keap: the sync's desired state, changeset and push never ran
    assert not materialized & {keap_desired.key, keap_changeset.key, keap_push.key}
    assert not (tmp_path / "sync").exists()


def test_next_day_honours_a_greenhouse_merge_and_flags_drift(messy: Messy):
    w, store = messy.world, messy.world.store
    app = store.get("greenhouse", "applications", 50000005)
    app.update(candidate_id=10000009, updated_at="2026-01-05T12:00:00.000Z")
    records.save(store, "greenhouse", "applications", app)
    store.delete("greenhouse", "candidates", 10000010, at="2026-01-05T12:00:01.000Z",
                 merged_into=10000009)
    for n, cid in enumerate((10000009, 10000011, 10000013, 10000015)):
        doc = store.get("greenhouse", "candidates", cid)
        doc["custom_fields"]["candidate_status"]["value"] = "2026-01-05 10:00"
        doc.pop("can_email")                       # a field the sync reads stops coming
        doc["updated_at"] = f"2026-01-05T13:00:0{n}.000Z"
        records.save(store, "greenhouse", "candidates", doc)
    store.set_now(datetime(2026, 1, 6, tzinfo=UTC))
    day = w.day()
    assert day.isoformat() == "2026-01-05"
    w.backup(day)
    result = dg.materialize(
        [identity_profiles, field_profile], partition_key=day.isoformat(),
        resources=build_resources(),
        run_config={"ops": {"identity__field_profile": {"config": {"min_rows": 3}}}},
        raise_on_error=False)
    assert result.success
    con = open_catalog(w.root)
    assert con.execute("""SELECT candidate_ids, merged_candidate_ids, application_ids
                          FROM identity.candidate_profiles WHERE profile_id = 10000009"""
                       ).fetchall() == [([10000009], [10000010], [50000005, 50000006])]
    evs = _checks(result)
    shape = _md(evs[checks.FIELDS_KEEP_THEIR_SHAPE])
    assert not evs[checks.FIELDS_KEEP_THEIR_SHAPE].passed
    assert "greenhouse/candidates.custom_fields.candidate_status" in shape[
        "sample_failing_fields"]
    gone = _md(evs[checks.SYNC_FIELDS_ARE_PRESENT])
    assert gone["sample_failing_fields"] == ["greenhouse/candidates.can_email"]
    assert evs[checks.EXTRACTED_EQUALS_PROFILED_PLUS_QUARANTINED].passed
    event = result.asset_materializations_for_node("identity__field_profile")[0]
    audit = event.metadata["audit"].value
    assert "custom_fields.candidate_status" in audit and "date-like values" in audit
    assert "@example" not in audit and not any(n in audit for n in NAMES)
    assert os.path.exists(w.root / "identity" / "field_profile" / f"snapshot_date={day}")
    assert FIELD_PROFILE_KEY in {e.asset_key for e in result.get_asset_materialization_events()}
