"""The Harvest v3 writes the reverse sync makes, against the sandbox over a real socket, through
the product's own client: tag a candidate, untag, set a candidate custom field. Every reply fits
the published v3 item schema of its resource (a write answers the record as GET serves it), the
candidate's `updated_at` moves with each change (so an incremental backup sees it) and not with a
write that changes nothing, and each write is safe to resend.
(The contract and its sources: specs/ats/greenhouse-harvest-v3-writes.md.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestration.http import ApiError, RetryPolicy
from orchestration.resources.greenhouse import GreenhouseResource
from sandbox import records
from tests.conftest import SPECS, Sandbox
from tests.integration.contract import assert_conforms, load_schema
from tests.integration.test_sandbox_greenhouse import candidate

SCHEMAS = SPECS / "ats" / "greenhouse-harvest-v3-schemas"
FIELD = {"id": 80_001, "created_at": "2026-01-01T00:00:00.000Z",
         "updated_at": "2026-01-01T00:00:00.000Z", "field_type": "candidate", "sort_order": 0,
         "name": "Email Opt-Out", "name_key": "email_opt_out", "value_type": "yes_no",
         "private": False, "required": False, "require_approval": False,
         "trigger_new_version": False, "active": True}
TAG = {"id": 60_001, "created_at": "2026-01-01T00:00:00.000Z",
       "updated_at": "2026-01-01T00:00:00.000Z", "name": "Python"}


def schema(name: str) -> dict:
    return load_schema(SCHEMAS / f"{name}.json")


@pytest.fixture
def gh(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("TALENTVAULT_SANDBOX_URL", sandbox.base_url)
    records.save_many(sandbox.store, "greenhouse", "candidates", [candidate(1), candidate(2)])
    records.save_many(sandbox.store, "greenhouse", "candidate_tags", [TAG])
    records.save_many(sandbox.store, "greenhouse", "custom_fields", [FIELD])
    sandbox.admin("POST", "/clock", json={"now": "2026-01-06T00:00:00.000Z"})  # after the records
    client = GreenhouseResource().open()
    client.http.retry = RetryPolicy(max_attempts=1)
    try:
        yield client
    finally:
        client.close()


def served(sandbox: Sandbox, cid: int) -> dict:
    return next(c for c in sandbox.records("greenhouse", "candidates") if c["id"] == cid)


def test_tagging_a_candidate(sandbox: Sandbox, gh) -> None:
    before = served(sandbox, 1)["updated_at"]
    made = gh.create_candidate_tag("Email Opt-Out")
    assert_conforms(made, schema("candidate_tags"), "created tag")
    assert gh.create_candidate_tag("email opt-out")["id"] == made["id"]   # no second tag
    applied = gh.apply_candidate_tag(1, made["id"])
    assert_conforms(applied, schema("applied_candidate_tags"), "applied tag")
    assert (applied["candidate_id"], applied["candidate_tag_id"]) == (1, made["id"])
    after = served(sandbox, 1)
    assert after["tags"] == ["Email Opt-Out", "Python"]
    assert after["updated_at"] > before
    assert_conforms(after, schema("candidates"), "tagged candidate")
    # resent (a lost reply): the same applied tag, the candidate unmoved
    assert gh.apply_candidate_tag(1, made["id"])["id"] == applied["id"]
    assert served(sandbox, 1)["updated_at"] == after["updated_at"]
    # the list filters find it; untagging removes it and moves the candidate again
    assert [r["id"] for r in gh.applied_tags(1, made["id"])] == [applied["id"]]
    gh.remove_applied_tag(applied["id"])
    gone = served(sandbox, 1)
    assert gone["tags"] == ["Python"] and gone["updated_at"] > after["updated_at"]
    assert gh.applied_tags(1, made["id"]) == []
    gh.remove_applied_tag(applied["id"])   # resent: already gone is done
    assert served(sandbox, 2)["tags"] == ["Python"]   # nobody else touched


def test_setting_a_candidate_custom_field(sandbox: Sandbox, gh) -> None:
    before = served(sandbox, 1)
    out = gh.update_candidate(1, {"custom_fields": [{"name_key": "email_opt_out",
                                                     "value": True}]})
    assert_conforms(out, schema("candidates"), "patched candidate")
    assert out["custom_fields"]["email_opt_out"] == {"name": "Email Opt-Out", "type": "yes_no",
                                                     "value": True}
    assert out["custom_fields"]["desired_salary"] == before["custom_fields"]["desired_salary"]
    assert out["updated_at"] > before["updated_at"] and served(sandbox, 1) == out
    # the same values again change nothing, not even the update time; by id works too
    again = gh.update_candidate(1, {"custom_fields": [{"id": 80_001, "value": "true"}]})
    assert again["updated_at"] == out["updated_at"]
    cleared = gh.update_candidate(1, {"custom_fields": [{"name_key": "email_opt_out",
                                                         "delete_value": True}]})
    assert "email_opt_out" not in cleared["custom_fields"]
    assert cleared["updated_at"] > out["updated_at"]


@pytest.mark.parametrize("call, status, field", [
    (lambda gh: gh.update_candidate(1, {"custom_fields": [{"name_key": "nope", "value": 1}]}),
     422, "custom_fields[0]"),
    (lambda gh: gh.update_candidate(1, {"custom_fields": [{"name_key": "email_opt_out",
                                                           "value": "maybe"}]}),
     422, "custom_fields[0]"),
    (lambda gh: gh.update_candidate(1, {"can_email": False}), 422, "can_email"),
    (lambda gh: gh.update_candidate(99, {"title": "x"}), 404, None),
    (lambda gh: gh.apply_candidate_tag(99, 60_001), 422, "candidate_id"),
    (lambda gh: gh.apply_candidate_tag(1, 12345), 422, "candidate_tag_id"),
])
def test_refused_writes_name_the_field(sandbox: Sandbox, gh, call, status, field) -> None:
    with pytest.raises(ApiError) as e:
        call(gh)
    assert e.value.status == status
    if field:
        assert f'"field":"{field}"' in (e.value.body or "").replace(" ", "")
    assert served(sandbox, 1)["updated_at"] == candidate(1)["updated_at"]


def test_writes_need_a_token(sandbox: Sandbox, gh) -> None:
    import httpx

    r = httpx.post(f"{sandbox.base_url}/greenhouse/v3/applied_candidate_tags",
                   json={"candidate_id": 1, "candidate_tag_id": 60_001})
    assert r.status_code == 401
