"""The Keap sync's mapping document: the shipped default loads, every validation error fires on
a crafted bad document and names its line and the fix, and `mapping check` compares a mapping
with real snapshot partitions (written by the backups' own writer)."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from assets.greenhouse import schemas as gh
from assets.identity import field_rules
from assets.sync.mapping import (
    DEFAULT_PATH,
    MappingError,
    check_mapping,
    load_mapping,
    parse_mapping,
)
from orchestration.cli.mapping import mapping_app
from orchestration.storage.snapshots import SnapshotStorage

DAY = "2026-01-04"
BASE = """\
version: 1
fields:
  email:
    from: email
"""


def problems(text: str) -> list:
    with pytest.raises(MappingError) as e:
        parse_mapping(textwrap.dedent(text), "bad.yaml")
    return e.value.problems


def only(text: str):
    found = problems(text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


# -- the shipped document ----------------------------------------------------------------------
def test_the_default_mapping_loads_and_says_what_it_controls():
    m = load_mapping(DEFAULT_PATH)
    assert m.path == DEFAULT_PATH
    assert list(m.cross) == ["new_application", "stage_change", "interview_scheduled",
                             "offer_extended", "offer_accepted", "hired", "offer_declined",
                             "withdrawn", "rejected"]
    assert {"internal_note", "admin_edit"} <= set(m.never)
    assert m.fields[0].target == "email" and m.fields[0].source == "email"
    assert m.custom_fields()["Application Status"] == {"field_type": "TEXT",
                                                       "on_missing": "create"}
    assert m.conflict()["job_title"] == "keap_wins"
    assert m.stage_tag("Phone Screen") == "Stage: Phone Interview"
    assert m.stage_tag("Culture Chat") is None
    assert m.tag_rule("Offer Extended", None).group == "application"
    assert m.tag_rule("Stage: Offer", "stage").category == "Pipeline Stage"
    assert len(m.fingerprint) == 64


def test_the_fingerprint_ignores_comments_and_layout(tmp_path):
    text = DEFAULT_PATH.read_text()
    copy = tmp_path / "copy.yaml"
    copy.write_text("# my copy\n" + text.replace("version: 1", "version:   1  # same"))
    assert load_mapping(copy).fingerprint == load_mapping(DEFAULT_PATH).fingerprint
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("conflict: keap_wins", "conflict: ats_wins", 1))
    assert load_mapping(changed).fingerprint != load_mapping(DEFAULT_PATH).fingerprint


def test_the_environment_variable_chooses_the_mapping(tmp_path, monkeypatch):
    path = tmp_path / "m.yaml"
    path.write_text(BASE)
    monkeypatch.setenv("TALENTVAULT_SYNC_MAPPING", str(path))
    assert load_mapping().path == path.resolve()
    monkeypatch.setenv("TALENTVAULT_SYNC_MAPPING", str(tmp_path / "missing.yaml"))
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping()


def test_the_field_audit_vocabulary_comes_from_the_mapping():
    m = load_mapping(DEFAULT_PATH)
    stages = field_rules.MAPPED_VALUES[("greenhouse", "applications", "stage_name")]
    assert set(stages) == set(m.stage_map) and "Culture Chat" not in stages
    assert set(field_rules.MAPPED_VALUES[("greenhouse", "applications", "status")]) == {
        "in_process", "hired", "rejected", "converted"}
    reads = field_rules.SYNC_FIELDS
    assert "can_email" in reads[("greenhouse", "candidates")]
    assert {"source_id", "created_at"} <= set(reads[("greenhouse", "applications")])
    assert "type_name" in reads[("greenhouse", "rejection_reasons")]


# -- every validation error, with its line -----------------------------------------------------
def test_unknown_ats_field():
    p = only(BASE + "  given_name:\n    from: first_nam\n")
    assert (p.line, p.file) == (6, "bad.yaml")
    assert "unknown ATS field 'first_nam'" in p.message and "first_name" in p.fix
    assert str(p).startswith("bad.yaml:6: unknown ATS field") and " — use one of" in str(p)


def test_unknown_keap_field():
    p = only(BASE + "  nickname:\n    from: first_name\n")
    assert p.line == 5 and "unknown Keap field 'nickname'" in p.message
    assert "custom:<Label>" in p.fix


def test_transform_that_does_not_exist():
    p = only(BASE + "  given_name:\n    from: first_name\n    transforms: [trim, snake]\n")
    assert p.line == 7 and "unknown transform 'snake'" in p.message and "e164" in p.fix
    p = only(BASE + "  given_name:\n    from: first_name\n    transforms:\n"
             "      - trim\n      - value_mapp: {a: b}\n")
    assert p.line == 9 and "unknown transform 'value_mapp'" in p.message
    p = only(BASE + "  given_name:\n    from: first_name\n    transforms: [value_map]\n")
    assert p.line == 7 and "needs its values" in p.message


def test_bad_null_policy():
    p = only(BASE + "  job_title:\n    from: title\n    null: erase\n")
    assert p.line == 7 and "bad null policy 'erase'" in p.message
    assert "leave, clear, or {default: <value>}" in p.fix
    p = only(BASE + "  job_title:\n    from: title\n    null: {fallback: x}\n")
    assert p.line == 7


def test_bad_conflict_policy_and_custom_field_settings():
    p = only(BASE + "  job_title:\n    from: title\n    conflict: human_wins\n")
    assert p.line == 7 and "ats_wins or keap_wins" in p.fix
    p = only(BASE + "  \"custom:Score\":\n    from: title\n    field_type: STRING\n")
    assert p.line == 7 and "unknown Keap field type 'STRING'" in p.message
    p = only(BASE + "  job_title:\n    from: title\n    field_type: TEXT\n")
    assert p.line == 7 and "only applies to custom fields" in p.message


def test_custom_field_on_missing_setting():
    p = only("version: 1\ncustom_fields:\n  on_missing: ignore\nfields:\n  email:\n"
             "    from: email\n  \"custom:Score\":\n    from: title\n")
    assert p.line == 3 and "unknown on_missing setting 'ignore'" in p.message


def test_unknown_event_name_and_events_that_never_cross():
    doc = BASE + ("events:\n  cross:\n    new_aplication:\n      tags: [Candidate]\n"
                  "    internal_note:\n      tags: [Note]\n    hired:\n      tags: [Hired]\n"
                  "  never: [hired, gossip]\n")
    found = {p.line: p for p in problems(doc)}
    assert "unknown event 'new_aplication'" in found[7].message
    assert "new_application" in found[7].fix
    assert "never crosses" in found[9].message and "events.never" in found[9].fix
    assert "both in cross and in never" in found[11].message
    assert "unknown event 'gossip'" in found[13].message


def test_tag_in_two_exclusive_groups():
    doc = BASE + ("events:\n  cross:\n    hired:\n      tags: [Hired, Active Applicant]\n"
                  "tags:\n  exclusive:\n    a: [Hired, Active Applicant]\n"
                  "    b:\n      - Offer Extended\n      - Hired\n")
    found = problems(doc)
    lines = {p.line: p.message for p in found}
    assert "two exclusive groups ('a' and 'b')" in lines[14]
    assert "produced by nothing" in lines[13]        # Offer Extended: no event makes it
    assert all(p.fix for p in found)


def test_tag_families_placeholders_and_categories():
    doc = BASE + ("tags:\n  stages:\n    unmapped: \"Stage\"\n  jobs:\n"
                  "    template: \"Job: {job_title}\"\n  categories:\n    A: [\"@stages\"]\n"
                  "    B: [\"@job\"]\n    C: [\"@job\"]\n")
    lines = {p.line: p for p in problems(doc)}
    assert "no placeholder" in lines[7].message and "{stage}" in lines[7].fix
    assert "unknown placeholder {job_title}" in lines[9].message
    assert "unknown tag family '@stages'" in lines[11].message
    assert "two categories" in lines[13].message


def test_job_tags_may_name_a_job_custom_field():
    ok = BASE + "tags:\n  jobs:\n    template: \"Job: {job_name} ({job_custom:employment_type})\"\n"
    m = parse_mapping(ok, "ok.yaml")      # accepted
    bad = BASE + "tags:\n  jobs:\n    template: \"Job: {job_custom:employment type}\"\n"
    found = [p for p in problems(bad) if "placeholder" in p.message]
    assert found and "{job_custom:<key>}" in found[0].fix
    assert m.job_tag("Engineer", 1, 2, {"employment_type": {"value": "Contract"}}) == \
        "Job: Engineer (Contract)"
    assert m.job_tag("Engineer", 1, 2, None) == "Job: Engineer ()"


def test_unknown_keys_and_types_name_their_line():
    p = only(BASE + "  given_name:\n    from: first_name\n    transform: [trim]\n")
    assert p.line == 7 and "unknown key 'transform'" in p.message and "transforms" in p.fix
    p = only("version: 1\nfield:\n  email:\n    from: email\n")
    assert p.line == 2 and "unknown key 'field'" in p.message
    p = only(BASE + "  given_name:\n    transforms: [trim]\n")
    assert p.line == 5 and "required" in p.message and "from:" in p.fix
    p = only("version: 2\n" + BASE.split("\n", 1)[1])
    assert p.line == 1 and "version: 1" in p.fix


def test_the_email_match_key_is_required():
    p = only("version: 1\nfields:\n  given_name:\n    from: first_name\n")
    assert p.line == 2 and "email" in p.message
    p = only("version: 1\nfields:\n  email:\n    from: title\n")
    assert p.line == 4 and "set `from: email`" in p.fix


def test_not_yaml_names_the_line():
    p = only(BASE + "  given_name:\n    from: [first_name\n")
    assert p.line is not None and p.line >= 6 and "not valid YAML" in p.message


def test_every_problem_is_reported_at_once():
    doc = BASE + ("  given_name:\n    from: nope\n    transforms: [nope]\n    null: nope\n"
                  "    conflict: nope\n")
    assert sorted(p.line for p in problems(doc)) == [6, 7, 8, 9]


# -- against snapshots --------------------------------------------------------------------------
def land(root: Path, schema, docs: list[dict]) -> None:
    end = datetime.fromisoformat(DAY).replace(tzinfo=UTC) + timedelta(days=1)
    w = SnapshotStorage(root=str(root)).writer(schema, DAY, mode="full", run_id="test",
                                               window=(None, end))
    w.add(docs)
    w.commit()


def _stamp() -> dict:
    return {"created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T10:00:00Z"}


def backup(root: Path, stages=("Application Review", "Culture Chat"),
           statuses=("in_process", "on_hold"), without: tuple = ()) -> None:
    apps = [{"id": 50000001 + i, "candidate_id": 10000001, "job_id": 100001,
             "stage_name": stages[i % len(stages)], "status": s, "source_id": 30009,
             "last_activity_at": "2026-01-02T10:00:00Z", **_stamp()}
            for i, s in enumerate(statuses)]
    data = {
        gh.candidates: [{"id": 10000001, "first_name": "A", "last_name": "B",
                         "email_addresses": [{"value": "a@x.example"}], **_stamp()}],
        gh.applications: apps,
        gh.jobs: [{"id": 100001, "name": "Engineer", "department_id": 4001, **_stamp(),
                   "custom_fields": {"employment_type": {"name": "Employment Type",
                                                         "type": "single_select",
                                                         "value": "Contract"}}}],
        gh.job_stages: [{"id": 1000001 + i, "job_id": 100001, "name": s, "sort_order": i,
                         "active": True, **_stamp()} for i, s in enumerate(stages)],
        gh.application_stages: [], gh.interviews: [], gh.rejection_details: [],
        gh.rejection_reasons: [],
        gh.sources: [{"id": 30009, "name": "Agency", "type": {"id": 5, "name": "Agencies"},
                      **_stamp()}],
        gh.departments: [{"id": 4001, "name": "Engineering", **_stamp()}],
        gh.offers: [{"id": 600000001, "application_id": 50000001, "status": "Pending",
                     "version": 1, **_stamp()}],
    }
    for schema, docs in data.items():
        if schema.entity not in without:
            land(root, schema, docs)


def test_check_reports_what_the_backup_holds_and_nothing_maps(tmp_path):
    backup(tmp_path)
    found = check_mapping(load_mapping(DEFAULT_PATH), tmp_path)
    errors = [p for p in found if p.severity == "error"]
    text = "\n".join(str(p) for p in errors)
    assert "stage 'Culture Chat' is in the backup" in text
    assert "application status 'on_hold'" in text
    assert "offer status 'Pending'" in text
    assert "custom:Application Status: value 'on_hold' of current_status" in text
    assert len(errors) == 4
    stage = next(p for p in errors if "Culture Chat" in p.message)
    assert stage.line == DEFAULT_PATH.read_text().splitlines().index("    map:") + 1
    assert "tags.stages.map" in stage.fix
    warnings = [p for p in found if p.severity == "warning"]
    assert any("'Take Home Test' is mapped but" in p.message for p in warnings)
    assert not any("'Application Review'" in p.message for p in warnings)


def test_check_names_job_custom_fields_the_backup_lacks(tmp_path):
    backup(tmp_path)
    doc = yaml.safe_load(DEFAULT_PATH.read_text())
    doc["tags"]["jobs"]["template"] = "Job: {job_name} ({job_custom:seniority})"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    found = [p for p in check_mapping(load_mapping(path), tmp_path) if "job_custom" in p.message]
    assert [p.severity for p in found] == ["warning"]
    assert "'seniority'" in found[0].message
    assert "employment_type (e.g. Contract)" in found[0].fix
    doc["tags"]["jobs"]["template"] = "Job: {job_name} ({job_custom:employment_type})"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert not [p for p in check_mapping(load_mapping(path), tmp_path)
                if "job_custom" in p.message]


def test_check_reports_value_maps_and_missing_snapshots(tmp_path):
    backup(tmp_path, stages=("Offer",), statuses=("in_process",), without=("jobs",))
    path = tmp_path / "m.yaml"
    path.write_text(BASE + "  \"custom:Source\":\n    from: current_source_id\n"
                    "    transforms:\n      - value_map: {\"30001\": LinkedIn}\n"
                    "  \"custom:Job\":\n    from: current_job_name\n"
                    "tags:\n  stages:\n    map: {Offer: \"Stage: Offer\"}\n")
    errors = [p for p in check_mapping(load_mapping(path), tmp_path)
              if p.severity == "error"]
    by_line = {p.line: p.message for p in errors}
    assert "value '30009' of current_source_id" in by_line[8]
    assert "greenhouse/jobs, which has no snapshot" in by_line[10]
    assert any("offer status 'Pending'" in m for m in by_line.values())
    assert len(errors) == 3


def test_the_cli_exits_1_on_problems_and_0_on_a_good_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "  given_name:\n    from: nope\n")
    r = CliRunner().invoke(mapping_app, ["check", str(bad)])
    assert r.exit_code == 1 and f"{bad.resolve()}:6: unknown ATS field 'nope'" in r.output
    r = CliRunner().invoke(mapping_app, ["check", str(DEFAULT_PATH), "--offline"])
    assert r.exit_code == 0, r.output
    backup(tmp_path)
    r = CliRunner().invoke(mapping_app, ["check", str(DEFAULT_PATH)])
    assert r.exit_code == 1 and "Culture Chat" in r.output
    r = CliRunner().invoke(mapping_app, ["check", str(DEFAULT_PATH), "--date", "2026-01-03"])
    assert r.exit_code == 1 and "no snapshot for 2026-01-03" in r.output


def test_check_names_lists_what_the_backup_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(tmp_path))
    backup(tmp_path)
    r = CliRunner().invoke(mapping_app, ["check", str(DEFAULT_PATH), "--names"])
    lines = {line.split(" [")[0].strip(): line for line in r.output.splitlines() if " [" in line}
    assert "Agency (2 applications)" in lines["sources"]
    assert "Engineering (1 jobs)" in lines["departments"]
    assert "Application Review (1 applications)" in lines["stages"]
    assert "employment_type (e.g. Contract)" in lines["job custom fields"]
    assert "offices: no backup that day" in r.output


@pytest.mark.parametrize("text, where, what", [
    (BASE + "  given_name:\n    from: [first_name\n", ":7:", "not valid YAML"),
    # a key written twice: YAML parsers keep the last silently (the first block's mappings
    # would vanish and the check would say "valid")
    (BASE + "fields:\n  email:\n    from: email\n", ":", "appears twice"),
])
def test_a_mapping_that_is_not_yaml_is_one_line_naming_file_line_and_column_exit_2(
        tmp_path, monkeypatch, text, where, what):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    monkeypatch.setenv("TALENTVAULT_SYNC_MAPPING", str(path))     # as the sync reads it
    r = CliRunner().invoke(mapping_app, ["check", "--offline"])
    assert r.exit_code == 2
    [line] = r.output.strip().splitlines()
    assert line.startswith(f"error: {path.resolve()}{where}") and what in line
    assert re.search(r"\.yaml:\d+:\d+: ", line)
    with pytest.raises(MappingError):       # the sync's assets load the same way
        load_mapping()

