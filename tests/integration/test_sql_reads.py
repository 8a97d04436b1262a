"""Reads through `talentvault sql` leave a trail (who, when, what, whom; never values), the trail
answers "who looked at this person", and results save cleanly (or fail in one line)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.catalog.views import open_catalog
from orchestration.cli import app
from orchestration.cli import sql as sqlcli
from tests.integration.sql_door_world import EMAIL, build


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("reads"))


@pytest.fixture
def env(root, monkeypatch):
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(root))
    monkeypatch.delenv("TALENTVAULT_ACTOR", raising=False)
    return root


def events(root: Path, action: str | None = None) -> list[dict]:
    rows = open_catalog(root).sql(
        'SELECT * FROM audit.events ORDER BY "at"').to_arrow_table().to_pylist()
    return [r | {"counts": json.loads(r["counts"]), "details": json.loads(r["details"])}
            for r in rows if action is None or r["action"] == action]


def test_a_query_is_recorded_with_who_what_and_whom_but_no_value(env, monkeypatch, capsys):
    monkeypatch.setenv("TALENTVAULT_ACTOR", "analyst-7")
    query = f"SELECT id, given_name FROM keap.contacts WHERE primary_email = '{EMAIL}'"
    assert sqlcli.run_and_print(query) == 0
    assert "N4" in capsys.readouterr().out
    event = events(env, "sql_query")[-1]
    assert event["actor"] == "actor:analyst-7" and event["status"] == "succeeded"
    assert event["target"] == "keap.contacts" and event["counts"]["rows"] == 1
    assert event["subjects"] == ["keap_contact:4"]
    assert event["details"]["relations"] == ["keap.contacts"]
    qhash = event["details"]["query_hash"]
    assert len(qhash) == 64 and qhash != hashlib.sha256(query.encode()).hexdigest()
    trail = json.dumps(events(env), default=str)
    assert EMAIL not in trail and "ada.lovelace" not in trail and "N4" not in trail


def test_refusals_and_exports_are_recorded(env, tmp_path, capsys):
    assert sqlcli.run_and_print("SELECT * FROM read_text('/etc/hostname')") == 2
    refused = events(env, "sql_refused")[-1]
    assert refused["status"] == "refused" and refused["counts"]["rows"] == 0
    out = tmp_path / "contacts.csv"
    assert sqlcli.run_and_print("SELECT id FROM keap.contacts", "csv", out) == 0
    export = events(env, "sql_export")[-1]
    assert export["details"]["output"] == {"path": str(out), "format": "csv"}
    assert export["counts"]["rows"] == 7 and len(export["subjects"]) == 7


def test_audit_reads_answers_who_looked_at_a_person(env, capsys):
    shown = {"SELECT profile_id, candidate_ids FROM identity.candidate_profiles": "profile:9001",
             "SELECT id, given_name FROM keap.contacts_history WHERE id = '4'": "keap_contact:4",
             "SELECT * FROM sync.dead_letter": "keap_contact:4"}
    for query in [*shown, "SELECT id FROM keap.contacts WHERE id = '5'",
                  "SELECT given_name FROM keap.contacts"]:
        assert sqlcli.run_and_print(query) == 0
    result = CliRunner().invoke(app, ["audit", "reads", "--profile-id", "9001", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    reads = {r["details"]["query_hash"]: r for r in lines if r["kind"] == "read"}
    by_subjects = {tuple(e["subjects"]): e["details"]["query_hash"]
                   for e in events(env, "sql_query")}
    assert ("greenhouse_candidate:9001", "greenhouse_candidate:9005",
            "profile:9001") in by_subjects
    for subject in shown.values():      # each query that showed one of the person's ids
        assert any(subject in r["matched"] for r in reads.values()), subject
    assert by_subjects[("greenhouse_candidate:9001", "greenhouse_candidate:9005",
                        "profile:9001")] in reads
    assert by_subjects[("keap_contact:4",)] in reads
    assert by_subjects[("keap_contact:5",)] not in reads      # another person
    unattributed = [r for r in lines if r["kind"] == "unattributed"]
    assert any(r["details"]["relations"] == ["keap.contacts"] and r["counts"]["rows"] == 7
               for r in unattributed)
    text = CliRunner().invoke(app, ["audit", "reads", "--profile-id", "9001"]).output
    assert "keap_contact:4" in text and "cannot be attributed" in text


@pytest.mark.parametrize("target", ["root", "a_folder"])
def test_output_at_the_data_root_or_a_folder_is_one_line_error(env, tmp_path, capsys, target):
    output = {"root": env, "a_folder": tmp_path}[target]
    assert sqlcli.run_and_print("SELECT id FROM keap.contacts", "parquet", output) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(output) in err


def test_csv_of_list_columns_writes_json_text(env, tmp_path):
    out = tmp_path / "history.csv"
    # the README's own example
    assert sqlcli.run_and_print("SELECT * FROM keap.contacts_history WHERE id = '4'", "csv",
                                out) == 0
    (row,) = list(csv.DictReader(out.open()))
    assert json.loads(row["emails"]) == [EMAIL] and row["id"] == "4"
