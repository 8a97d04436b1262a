"""`sync/keap_desired` end to end: a generated sandbox world served over a real socket, backed
up, identity and desired state built by real `dg.materialize` runs, then compared person by
person with the independent model in tests/e2e/sync_expected.py (plain Python over the
sandbox's own records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from assets.identity import suppressed
from assets.identity.assets import identity_profiles
from assets.sync.desired import KEY, keap_desired
from assets.sync.mapping import DEFAULT_PATH, Mapping, load_mapping
from orchestration.resources import build_resources
from orchestration.storage.derived import partition_dir
from tests.e2e.conftest import SYNC_SPECS, World
from tests.e2e.sync_expected import Expected, expected_contacts


@dataclass
class Synced:
    world: World
    day: str
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def synced(sandbox_world: World) -> Iterator[Synced]:
    day = sandbox_world.day()
    sandbox_world.backup(day, SYNC_SPECS)
    result = dg.materialize([identity_profiles, keap_desired], partition_key=day.isoformat(),
                            resources=build_resources(), raise_on_error=False)
    yield Synced(sandbox_world, day.isoformat(), result)


def desired(root: Path, day: str) -> tuple[dict[str, tuple], dict]:
    folder = partition_dir(root, "keap_desired", day, "sync")
    rows = duckdb.connect().execute(f"""
        SELECT profile_id, email, emails, fields, tags, events
        FROM read_parquet('{folder}/*.parquet', hive_partitioning = false)""").fetchall()
    manifest = json.loads((folder / "_manifest.json").read_text())
    return {r[1]: r for r in rows}, manifest


def materialize_desired(s: Synced, mapping: Path | None = None) -> dg.ExecuteInProcessResult:
    config = {"mapping_path": str(mapping)} if mapping else {}
    result = dg.materialize([keap_desired], partition_key=s.day, resources=build_resources(),
                            run_config={"ops": {"sync__keap_desired": {"config": config}}})
    assert result.success
    return result


def assert_matches(got: dict[str, tuple], manifest: dict, exp: Expected, m: Mapping) -> None:
    assert set(got) == set(exp.contacts)
    for email, c in exp.contacts.items():
        profile_id, _, emails, fields, tags, events = got[email]
        assert profile_id == c.profile_id, email
        assert emails == c.emails, profile_id
        assert dict(fields) == c.fields, profile_id
        assert tags == sorted(c.tags), profile_id
        assert events == c.events, profile_id
    assert manifest["managed_tags"] == sorted(exp.managed_tags)
    assert manifest["tag_categories"] == exp.tag_categories
    assert manifest["mapping_fingerprint"] == m.fingerprint
    assert manifest["custom_fields"] == m.custom_fields()
    assert manifest["conflict"] == m.conflict()


def test_desired_state_equals_the_independent_model(synced: Synced):
    assert synced.result.success
    got, manifest = desired(synced.world.root, synced.day)
    m = load_mapping(DEFAULT_PATH)
    exp = expected_contacts(synced.world.store, m)
    assert len(got) > 100 and not exp.left_out
    assert_matches(got, manifest, exp, m)
    # the world exercises the rules: every event and every kind of tag occurs
    events = {e for r in got.values() for e in r[5]}
    assert {"new_application", "stage_change", "rejected", "withdrawn", "hired",
            "offer_accepted"} <= events
    tags = {t for r in got.values() for t in r[4]}
    assert any(t.startswith("Stage: ") for t in tags) and any(t.startswith("Job: ")
                                                              for t in tags)
    assert any(t.startswith("Rejection: ") for t in tags)


def test_exclusive_groups_hold_and_every_tag_is_managed(synced: Synced):
    got, manifest = desired(synced.world.root, synced.day)
    m = load_mapping(DEFAULT_PATH)
    managed = set(manifest["managed_tags"])
    for _, _, _, _, tags, events in got.values():
        assert set(tags) <= managed
        groups = [m.tag_rule(t, None if not t.startswith("Stage: ") else "stage").group
                  for t in tags]
        held = [g for g in groups if g is not None]
        assert len(held) == len(set(held)), tags
        if "offer_extended" in events:
            assert "Offer Extended" in tags and "Active Applicant" not in tags
        if "rejected" in events:
            assert {"Rejected", "Not a Fit"} <= set(tags)
            assert not any(t.startswith("Stage: ") for t in tags)
            assert "Active Applicant" not in tags


def test_quarantined_records_never_appear(synced: Synced):
    root, day = synced.world.root, synced.day
    con = duckdb.connect()
    quarantined = {r[0] for r in con.execute(f"""
        SELECT candidate_id FROM read_parquet('{partition_dir(root, "quarantine", day)}/*.parquet')
        WHERE entity = 'candidates'""").fetchall()}
    assert quarantined, "the generated world has records without a valid email"
    ids = {r[0] for r in con.execute(f"""
        SELECT unnest(candidate_ids) FROM read_parquet(
            '{partition_dir(root, "candidate_profiles", day)}/*.parquet')
        WHERE profile_id IN (SELECT profile_id FROM read_parquet(
            '{partition_dir(root, "keap_desired", day, "sync")}/*.parquet'))""").fetchall()}
    assert ids and not ids & quarantined


def test_no_personal_values_reach_the_metadata(synced: Synced):
    event = synced.result.asset_materializations_for_node("sync__keap_desired")[0]
    text = json.dumps({k: str(v.value) for k, v in event.metadata.items()})
    got, _ = desired(synced.world.root, synced.day)
    assert "Contacts per tag" in text
    for email, row in got.items():
        assert email not in text
        fields = dict(row[3])
        for key in ("given_name", "family_name", "phone"):
            value = fields.get(key)
            assert not value or len(value) < 4 or value not in text, key


def test_another_mapping_document_is_followed(synced: Synced, tmp_path: Path):
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["consent"]["can_email_false"] = "skip"
    doc["tags"]["jobs"] = {"template": "Job {job_id}: {job_name} [{job_custom:employment_type} | "
                                       "{department_name} | {office_name}]",
                           "applications": "current"}
    doc["tags"]["stages"]["unmapped"] = "Stage: {stage}"
    del doc["tags"]["stages"]["map"]["Application Review"]
    doc["tags"]["rejection_reasons"]["map"] = {"Other": None, "Withdrew": "Withdrew"}
    doc["fields"]["job_title"]["null"] = {"default": "Unknown"}
    doc["fields"]["given_name"]["transforms"] = ["trim", "upper"]
    doc["fields"]["custom:Company"] = {"from": "company", "null": "clear",
                                      "transforms": ["lower"]}
    doc["fields"]["custom:Last Activity"] = {"from": "last_activity_at",
                                            "field_type": "DATE_TIME"}
    doc["fields"]["custom:Reason"] = {"from": "current_rejection_reason", "null": "clear"}
    doc["fields"]["custom:Office"] = {"from": "current_office_name", "null": "clear"}
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    m = load_mapping(path)
    materialize_desired(synced, path)
    got, manifest = desired(synced.world.root, synced.day)
    exp = expected_contacts(synced.world.store, m)
    assert exp.left_out and set(exp.left_out.values()) == {"can_email_false"}
    assert_matches(got, manifest, exp, m)
    assert "Stage: Application Review" in manifest["managed_tags"]
    # a job custom field in the job tags: the employment types the jobs backup holds
    kinds = {tuple(t.rsplit("[", 1)[1].rstrip("]").split(" | "))
             for t in manifest["managed_tags"] if t.startswith("Job ")}
    assert kinds and {k for k, _, _ in kinds} <= {"Full-time", "Contract", "Part-time"}, kinds
    assert all(d for _, d, _ in kinds), kinds   # department names
    offices = {o["name"] for o in synced.world.store.iter_docs("greenhouse", "offices")}
    assert {o for *_, o in kinds} & offices, kinds   # office names (a job may have none)
    # custom:Office (current_office_name) is compared with the model by assert_matches
    assert {v for row in got.values() for k, v in dict(row[3]).items()
            if k == "custom:Office" and v} & offices
    materialize_desired(synced)     # back to the default for the tests below


def test_rerun_is_identical_and_suppressed_people_leave(synced: Synced):
    root, day = synced.world.root, synced.day
    before = materialize_desired(synced)
    _, first = desired(root, day)
    materialize_desired(synced)
    got, again = desired(root, day)
    assert again["content_fingerprint"] == first["content_fingerprint"]
    gone = sorted(got)[0]
    suppressed.add(root, "email", gone)
    materialize_desired(synced)
    got, manifest = desired(root, day)
    assert gone not in got
    m = load_mapping(DEFAULT_PATH)
    assert_matches(got, manifest, expected_contacts(synced.world.store, m,
                                                    suppressed_emails={gone}), m)
    event = [e for e in before.get_asset_materialization_events()
             if e.asset_key == KEY][0]
    assert event.materialization.metadata["dagster/row_count"].value == len(got) + 1
