"""The Keap client's write methods against the sandbox over a real socket: what is resent after a
failure, what is looked up instead, and how many calls each write takes (request log)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestration.http import ApiError, RetryPolicy
from orchestration.resources.keap import KeapClient
from sandbox import credentials
from tests.conftest import Sandbox

FAST = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, min_retry_after=0.01)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[KeapClient]:
    sandbox.rate_limits(False)
    c = KeapClient(f"{sandbox.base_url}/keap/crm", api_key=credentials.KEAP_API_KEY,
                   windows=[(1000, 1.0)], retry=FAST, timeout=10)
    try:
        yield c
    finally:
        c.close()


def body(email: str, **extra: object) -> dict:
    return {"email_addresses": [{"email": email, "field": "EMAIL1"}], **extra}


def contacts_with(sandbox: Sandbox, email: str) -> list[dict]:
    return [c for c in sandbox.records("keap", "contacts")
            if any(e["email"].lower() == email for e in c.get("email_addresses") or [])]


def writes(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests("keap") if r["method"] != "GET"]


def test_upsert_creates_then_matches_and_survives_a_dropped_reply(
        sandbox: Sandbox, client: KeapClient) -> None:
    first, created = client.upsert_contact(body("ann@example.com", given_name="Ann"))
    assert created and first["given_name"] == "Ann"
    again, created = client.upsert_contact(body("ann@example.com", given_name="Anne"))
    assert not created and again["id"] == first["id"] and again["given_name"] == "Anne"
    # the reply to an applied upsert is lost: the resend finds the contact, no duplicate
    sandbox.queue_faults("keap", ["drop"])
    third, _ = client.upsert_contact(body("bob@example.com"))
    assert len(contacts_with(sandbox, "bob@example.com")) == 1
    assert third["id"] == contacts_with(sandbox, "bob@example.com")[0]["id"]
    posts = [r for r in writes(sandbox) if r["method"] == "POST"]
    assert all("duplicate_option=Email" in r["query"] for r in posts)
    assert len(posts) == 4  # 3 upserts + 1 resend


def test_create_without_duplicate_option_is_not_resent_after_a_lost_reply(
        sandbox: Sandbox, client: KeapClient) -> None:
    sandbox.queue_faults("keap", ["drop"])
    with pytest.raises(ApiError) as err:
        client.create_contact(body("cy@example.com"))
    assert err.value.status is None and not err.value.body
    assert len(writes(sandbox)) == 1  # not resent: it may have been applied (it was)
    assert len(contacts_with(sandbox, "cy@example.com")) == 1
    # a 503 proves it was not applied: resent
    sandbox.queue_faults("keap", ["503"])
    made = client.create_contact(body("dee@example.com"))
    assert made["id"] and len(writes(sandbox)) == 3


def test_update_get_delete(sandbox: Sandbox, client: KeapClient) -> None:
    made, _ = client.upsert_contact(body("eve@example.com", given_name="Eve",
                                         family_name="Old"))
    updated = client.update_contact(made["id"], {"family_name": "New", "given_name": "X"},
                                    ["family_name"])
    assert updated["family_name"] == "New" and updated["given_name"] == "Eve"
    got = client.get_contact(made["id"], fields=["job_title", "family_name"])
    assert got is not None and got["family_name"] == "New"
    assert client.get_contact(999999) is None
    with pytest.raises(ApiError) as err:  # permanent: a 400 names the field
        client.update_contact(made["id"], body("not-an-email"), ["email_addresses"])
    assert err.value.status == 400 and not err.value.retryable
    assert client.delete_contact(made["id"]) is True
    assert client.delete_contact(made["id"]) is False
    assert client.get_contact(made["id"]) is None


def test_tags_batched_per_call(sandbox: Sandbox, client: KeapClient) -> None:
    ids = [client.upsert_contact(body(f"p{i}@example.com"))[0]["id"] for i in range(5)]
    tag = client.create_tag("Applied")
    sandbox.admin("DELETE", "/requests")
    results = client.apply_tags(tag["id"], ids + ["987654"], batch=2)
    assert [results[i] for i in ids] == ["SUCCESS"] * 5
    assert results["987654"] == "CONTACT_NOT_FOUND"
    assert len(writes(sandbox)) == 3  # 6 ids, 2 a call
    again = client.apply_tags(tag["id"], ids)
    assert set(again.values()) == {"DUPLICATE"}
    client.remove_tags(tag["id"], ids[:3])
    held = {c["id"]: c.get("tag_ids") for c in sandbox.records("keap", "contacts")}
    assert [str(tag["id"]) in held[i] for i in ids] == [False] * 3 + [True] * 2


def test_tag_category_and_custom_field_created_once_despite_faults(
        sandbox: Sandbox, client: KeapClient) -> None:
    # the create is applied and its reply dropped: looked up by name, not created again
    sandbox.queue_faults("keap", ["drop"])
    category = client.create_tag_category("Pipeline")
    sandbox.queue_faults("keap", ["drop"])
    tag = client.create_tag("Offer Extended", category["id"])
    assert tag["category"]["id"] == category["id"]
    # a name Keap already has: the existing one comes back
    assert client.create_tag("offer extended", category["id"])["id"] == tag["id"]
    assert client.create_tag_category("Pipeline")["id"] == category["id"]
    # a 500 on a create: not applied by the sandbox, looked up, then created
    sandbox.queue_faults("keap", ["500"])
    field = client.create_custom_field("Current Stage", "TEXT")
    assert client.create_custom_field("Current Stage", "TEXT")["id"] == field["id"]
    assert [t["name"] for t in sandbox.records("keap", "tags")] == ["Offer Extended"]
    assert [c["name"] for c in sandbox.records("keap", "tag_categories")] == ["Pipeline"]
    assert [f["label"] for f in sandbox.records("keap", "custom_fields")] == ["Current Stage"]
    with pytest.raises(ApiError) as err:
        client.create_custom_field("Bad", "NOT_A_TYPE")
    assert err.value.status == 400
