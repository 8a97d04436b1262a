"""The canonical field values a restore compares and writes (DuckDB over `_raw` JSON)."""

from __future__ import annotations

import json

import duckdb
import pytest

from assets.backups.restore_fields import MACROS, SPECS, check_fields


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
