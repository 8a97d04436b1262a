"""The canonical field values a restore compares and writes (DuckDB over `_raw` JSON)."""

from __future__ import annotations

import json

import duckdb
import pytest

from assets.recovery.restore.fields import MACROS, SPECS, check_fields


def canonical(source: str, doc: dict) -> dict[str, str | None]:
    con = duckdb.connect()
    for m in MACROS:
        con.execute(m)
    fields = SPECS[source].fields
    cols = ", ".join(f'CAST({f.sql} AS VARCHAR) AS "{f.name}"' for f in fields)
    row = con.execute(f"SELECT {cols} FROM (SELECT ? AS _raw)",
                      [json.dumps(doc, sort_keys=True)]).fetchone()
    return dict(zip([f.name for f in fields], row, strict=True))


def test_keap_arrays_ignore_order_derived_keys_and_emptiness():
    a = canonical("keap", {"email_addresses": [
        {"field": "EMAIL2", "email": "b@x.org", "is_opt_in": True},
        {"field": "EMAIL1", "email": "a@x.org", "email_opt_status": "CONFIRMED"}],
        "phone_numbers": [{"field": "PHONE1", "number": "1", "number_e164": "+1"}],
        "custom_fields": [{"id": "2", "content": None}, {"id": "1", "content": 5}],
        "addresses": [], "given_name": " "})
    b = canonical("keap", {"email_addresses": [
        {"field": "EMAIL1", "email": "a@x.org"}, {"field": "EMAIL2", "email": "b@x.org"}],
        "phone_numbers": [{"field": "PHONE1", "number": "1"}],
        "custom_fields": [{"id": "1", "content": 5}]})
    assert a == b
    assert json.loads(a["custom_fields"]) == [{"id": "1", "content": 5}]
    assert a["addresses"] is None and a["given_name"] is None


def test_keap_detects_a_changed_value():
    assert canonical("keap", {"job_title": "A"})["job_title"] != canonical(
        "keap", {"job_title": "B"})["job_title"]


def test_highlevel_tags_are_case_and_order_insensitive_and_dnd_defaults_false():
    a = canonical("highlevel", {"tags": ["B", "a"], "dndSettings": {}})
    b = canonical("highlevel", {"tags": ["a", "b"], "dnd": False})
    assert a == b and a["tags"] == '["a","b"]' and a["dndSettings"] is None


def test_fields_subset_is_checked():
    assert check_fields("keap", ["job_title", "tags"]) == ["job_title", "tags"]
    with pytest.raises(ValueError, match="update_time"):
        check_fields("keap", ["update_time"])


def test_keap_email_is_compared_as_keap_stores_it_trimmed_case_kept():
    padded = canonical("keap", {"email_addresses": [
        {"field": "EMAIL1", "email": "\t Ada.Q@x.org  "},
        {"field": "EMAIL2", "email": "\u00a0b@x.org\u3000"}, {"field": "EMAIL3", "email": " "}]})
    stored = canonical("keap", {"email_addresses": [
        {"field": "EMAIL1", "email": "Ada.Q@x.org"}, {"field": "EMAIL2", "email": "b@x.org"}]})
    assert padded["email_addresses"] == stored["email_addresses"]
    # what a restore sends: the trimmed address, and no item for a blank one
    assert json.loads(padded["email_addresses"]) == [
        {"field": "EMAIL1", "email": "Ada.Q@x.org"}, {"field": "EMAIL2", "email": "b@x.org"}]
    # a real difference still differs: Keap keeps case, and an inner space is not trimmed
    for other in ("ada.q@x.org", "Ada.Q@x.org.uk", "Ada. Q@x.org"):
        assert canonical("keap", {"email_addresses": [
            {"field": "EMAIL1", "email": other}, {"field": "EMAIL2", "email": "b@x.org"}]}
        )["email_addresses"] != stored["email_addresses"], other


def test_highlevel_text_is_trimmed_as_highlevel_trims_it():
    a = canonical("highlevel", {"email": "  Ada@x.org ", "firstName": " Ada"})
    b = canonical("highlevel", {"email": "Ada@x.org", "firstName": "Ada"})
    assert a["email"] == b["email"] and a["firstName"] == b["firstName"]
    assert canonical("highlevel", {"email": "ada@x.org"})["email"] != b["email"]
