"""The emulated Keap REST v2 API, used as a client would: real HTTP to a sandbox server process.

Replies are checked against the published Keap v2 OpenAPI schemas (closed: no invented fields).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox import credentials, records
from tests.conftest import SPECS, Sandbox
from tests.integration.contract import assert_conforms, openapi_schema

SPEC = SPECS / "keap" / "keap-rest-v2.openapi.yml"
API = "/keap/crm/rest/v2"
PAT = {"X-Keap-API-Key": credentials.KEAP_API_KEY}


def conforms(instance: Any, schema: str) -> None:
    assert_conforms(instance, openapi_schema(SPEC, schema, closed=True), schema)


@pytest.fixture
def keap(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A PAT client on the Keap API, with rate limits off (tests of the limits turn them on)."""
    sandbox.rate_limits(False)
    with httpx.Client(base_url=sandbox.base_url + API, headers=PAT, timeout=30) as client:
        yield client


def contact(i: int, email: str | None = None, *, given: str = "Ann", family: str = "Lee",
            updated: str | None = None, **extra: Any) -> dict[str, Any]:
    """A stored Keap contact doc in the API's shape."""
    stamp = updated or f"2026-01-01T00:00:{i % 60:02d}.000Z"
    return {"id": str(i), "given_name": given, "family_name": family,
            "email_addresses": [{"email": email or f"person{i}@example.com", "field": "EMAIL1"}],
            "phone_numbers": [], "addresses": [], "tag_ids": [], "custom_fields": [],
            "create_time": stamp, "update_time": stamp, **extra}


def seed(sandbox: Sandbox, docs: list[dict[str, Any]], entity: str = "contacts") -> None:
    records.save_many(sandbox.store, "keap", entity, docs)


def all_pages(keap: httpx.Client, path: str, key: str, **params: Any
              ) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, following next_page_token; (items, number of pages)."""
    items, pages, token = [], 0, None
    while True:
        r = keap.get(path, params={**params, **({"page_token": token} if token else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        items += body[key]
        token = body["next_page_token"]
        if not token:
            return items, pages
        assert pages < 1000, "pagination does not end"


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    conforms(body, "Error")
    assert body["code"] == status
    return body


def new_contact(keap: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("email_addresses", [{"email": "new@example.com", "field": "EMAIL1"}])
    r = keap.post("/contacts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


# -- listing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 4, 5, 6, 17])
def test_contacts_page_exactly_once(sandbox: Sandbox, keap: httpx.Client, n: int) -> None:
    seed(sandbox, [contact(i) for i in range(1, n + 1)])
    r = keap.get("/contacts", params={"page_size": 5})
    conforms(r.json(), "ListContactsResponse")
    items, pages = all_pages(keap, "/contacts", "contacts", page_size=5)
    assert [c["id"] for c in items] == [str(i) for i in range(1, n + 1)]
    assert pages == max(1, math.ceil(n / 5))


@pytest.mark.parametrize("order, key, reverse", [
    ("update_time desc", "update_time", True), ("update_time", "update_time", False),
    ("create_time", "create_time", False), ("id desc", "id", True)])
def test_contacts_page_in_order(sandbox: Sandbox, keap: httpx.Client, order: str, key: str,
                                reverse: bool) -> None:
    # shared times across ids: pages must break ties by id and still return each row once
    seed(sandbox, [contact(i, updated=f"2026-01-0{1 + i % 3}T00:00:00.000Z")
                   for i in range(1, 24)])
    items, _ = all_pages(keap, "/contacts", "contacts", page_size=4, order_by=order)
    assert sorted(c["id"] for c in items) == sorted(str(i) for i in range(1, 24))
    values = [(c[key], int(c["id"])) if key != "id" else int(c["id"]) for c in items]
    assert values == sorted(values, reverse=reverse)


def test_page_token_carries_the_query(sandbox: Sandbox, keap: httpx.Client) -> None:
    seed(sandbox, [contact(i, given="Zed" if i % 2 else "Ann") for i in range(1, 11)])
    first = keap.get("/contacts", params={"filter": "given_name==Zed", "page_size": 2}).json()
    token = first["next_page_token"]
    alone = keap.get("/contacts", params={"page_token": token, "page_size": 2}).json()
    assert [c["given_name"] for c in alone["contacts"]] == ["Zed", "Zed"]
    assert {c["id"] for c in alone["contacts"]}.isdisjoint(c["id"] for c in first["contacts"])
    changed = keap.get("/contacts", params={"page_token": token, "filter": "given_name==Ann"})
    assert error_of(changed, 400)["details"][0]["resource"] == "filter"
    assert error_of(keap.get("/contacts", params={"page_token": "nonsense"}), 400)


@pytest.mark.parametrize("size", ["1001", "-1", "ten"])
def test_page_size_out_of_range_is_refused(keap: httpx.Client, size: str) -> None:
    body = error_of(keap.get("/contacts", params={"page_size": size}), 400)
    assert "page_size" in body["message"]


def ids(keap: httpx.Client, **params: Any) -> list[str]:
    items, _ = all_pages(keap, "/contacts", "contacts", **params)
    return [c["id"] for c in items]


def test_email_filter_matches_any_address_case_insensitively(sandbox: Sandbox,
                                                             keap: httpx.Client) -> None:
    second = contact(2, "other@example.com")
    second["email_addresses"].append({"email": "Mary.Major@Example.com", "field": "EMAIL2"})
    seed(sandbox, [contact(1, "mary.major@example.com"), second, contact(3, "marygold@x.io"),
                   contact(4, "ann@example.com")])
    assert ids(keap, filter="email==MARY.MAJOR@example.com") == ["1", "2"]
    assert ids(keap, filter="email==mary*") == ["1", "2", "3"]
    assert ids(keap, filter="email==nobody@example.com") == []


def test_name_id_and_update_window_filters(sandbox: Sandbox, keap: httpx.Client) -> None:
    seed(sandbox, [
        contact(1, given="Mary", family="Smith", updated="2026-02-01T00:00:00.000Z"),
        contact(2, given="Marek", family="Smithers", updated="2026-02-02T00:00:00.000Z"),
        contact(3, given="Ann", family="Smith", updated="2026-02-03T00:00:00.000Z"),
        contact(4, given="mary", family="Jones", updated="2026-02-04T00:00:00.000Z"),
    ])
    assert ids(keap, filter="given_name==Mary") == ["1", "4"]
    assert ids(keap, filter="given_name==Mar*;family_name==Smith*") == ["1", "2"]
    assert ids(keap, filter="ids==4,2,99") == ["2", "4"]
    window = ("start_update_time==2026-02-02T00:00:00.000Z;"
              "end_update_time==2026-02-03T00:00:00.000Z")
    assert ids(keap, filter=window) == ["2", "3"]
    assert ids(keap, filter=window + ";family_name==Smith") == ["3"]


@pytest.mark.parametrize("filter_, field", [
    ("favorite_color==blue", "favorite_color"),
    ("start_update_time==2026-02-02", "start_update_time"),
    ("ids==1,x", "ids"),
    ("email>a", "email"),
])
def test_bad_filters_are_refused_by_name(keap: httpx.Client, filter_: str, field: str) -> None:
    body = error_of(keap.get("/contacts", params={"filter": filter_}), 400)
    assert field in body["message"]
    assert body["details"][0]["resource"] == field


def test_fields_choose_the_properties(sandbox: Sandbox, keap: httpx.Client) -> None:
    seed(sandbox, [contact(1, tag_ids=["5"], custom_fields=[{"id": "1", "content": "x"}],
                           job_title="Engineer")])
    default = keap.get("/contacts").json()["contacts"][0]
    assert {"id", "given_name", "email_addresses", "update_time"} <= default.keys()
    assert not {"tag_ids", "custom_fields", "job_title"} & default.keys()
    chosen = keap.get("/contacts/1", params={"fields": "tag_ids,job_title"}).json()
    assert chosen == {"id": "1", "tag_ids": ["5"], "job_title": "Engineer"}
    assert error_of(keap.get("/contacts", params={"fields": "shoe_size"}), 400)


# -- one contact -------------------------------------------------------------------------------
def test_create_get_delete(sandbox: Sandbox, keap: httpx.Client) -> None:
    created = new_contact(keap, given_name="Ada", family_name="Byron",
                          phone_numbers=[{"field": "PHONE1", "number": "(555) 010-2000"}],
                          addresses=[{"field": "BILLING", "line1": "1 Main St",
                                      "region_code": "US-AZ", "country_code": "USA"}])
    conforms(created, "Contact")
    assert created["id"].isdigit() and created["create_time"] == created["update_time"]
    assert created["phone_numbers"][0]["number_e164"] == "+15550102000"
    fetched = keap.get(f"/contacts/{created['id']}")
    assert fetched.status_code == 200 and fetched.json() == created
    assert keap.delete(f"/contacts/{created['id']}").status_code == 204
    error_of(keap.get(f"/contacts/{created['id']}"), 404)
    error_of(keap.delete(f"/contacts/{created['id']}"), 404)
    assert [t["id"] for t in sandbox.admin("GET", "/tombstones/keap/contacts")] == [created["id"]]


def test_new_ids_never_reuse_stored_or_deleted_ones(sandbox: Sandbox,
                                                    keap: httpx.Client) -> None:
    seed(sandbox, [contact(1), contact(2)])
    first = new_contact(keap)["id"]
    keap.delete(f"/contacts/{first}")
    second = new_contact(keap)["id"]
    assert len({"1", "2", first, second}) == 4


@pytest.mark.parametrize("body, resource", [
    ({"email_addresses": [{"email": "not-an-email", "field": "EMAIL1"}]},
     "email_addresses[EMAIL1]"),
    ({"email_addresses": [{"email": "a@example.com", "field": "EMAIL4"}]},
     "email_addresses.field"),
    ({"email_addresses": [{"email": "a" * 64 + "@example.com", "field": "EMAIL1"}]},
     "email_addresses[EMAIL1]"),
    ({"phone_numbers": [{"number": "555 0100", "field": "MOBILE"}]}, "phone_numbers.field"),
    ({"email_addresses": [{"email": "a@example.com", "field": "EMAIL1"}],
      "custom_fields": [{"id": "999", "content": "x"}]}, "custom_fields[999]"),
    ({"given_name": "No Way To Reach Me"}, "email_addresses"),
    ({"email_addresses": [{"email": "a@example.com", "field": "EMAIL1"}], "emails": []},
     "emails"),
])
def test_invalid_contacts_are_refused(sandbox: Sandbox, keap: httpx.Client,
                                      body: dict[str, Any], resource: str) -> None:
    body_ = error_of(keap.post("/contacts", json=body), 400)
    assert body_["details"][0]["resource"] == resource
    assert sandbox.records("keap", "contacts") == []


def test_email1_may_hold_75_characters(keap: httpx.Client) -> None:
    address = "a" * 63 + "@example.com"
    assert len(address) == 75
    assert new_contact(keap, email_addresses=[{"email": address, "field": "EMAIL1"}])


# -- upsert ------------------------------------------------------------------------------------
def upsert(keap: httpx.Client, option: str | None, **body: Any) -> httpx.Response:
    params = {"duplicate_option": option} if option else {}
    return keap.post("/contacts", params=params, json=body)


EXISTING = {"given_name": "Ann", "family_name": "Lee", "company": {"company_name": "Acme"},
            "email_addresses": [{"email": "Ann.Lee@example.com", "field": "EMAIL1"},
                                {"email": "ann@home.example", "field": "EMAIL2"}],
            "phone_numbers": [{"field": "PHONE1", "number": "5550100100"}]}


@pytest.mark.parametrize("option, change, matches", [
    ("Email", {}, True),
    ("Email", {"given_name": "Anne"}, True),
    ("EmailAndName", {}, True),
    ("EmailAndName", {"family_name": "Li"}, False),
    ("EmailAndNameAndCompany", {}, True),
    ("EmailAndNameAndCompany", {"company": {"company_name": "Globex"}}, False),
])
def test_upsert_matches_by_duplicate_option(keap: httpx.Client, option: str,
                                            change: dict[str, Any], matches: bool) -> None:
    original = new_contact(keap, **EXISTING)
    body = {**EXISTING, **change,
            "email_addresses": [{"email": "ANN.LEE@example.com", "field": "EMAIL1"}]}
    r = upsert(keap, option, **body)
    conforms(r.json(), "Contact")
    assert r.status_code == (200 if matches else 201)
    assert (r.json()["id"] == original["id"]) is matches
    everyone = ids(keap)
    assert len(everyone) == (1 if matches else 2)
    if matches:  # the array sent replaced the stored one; the array not sent stayed
        stored = keap.get(f"/contacts/{original['id']}").json()
        assert [e["email"] for e in stored["email_addresses"]] == ["ANN.LEE@example.com"]
        assert stored["phone_numbers"] == original["phone_numbers"]
        assert stored["update_time"] > original["update_time"]


def test_create_without_duplicate_option_makes_duplicates(keap: httpx.Client) -> None:
    first = upsert(keap, None, **EXISTING)
    second = upsert(keap, None, **EXISTING)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert len(ids(keap, filter="email==ann.lee@example.com")) == 2
    error_of(upsert(keap, "EmailOnly", **EXISTING), 400)


# -- updates: whole-array replacement and update_mask -----------------------------------------
def test_patch_replaces_arrays_and_leaves_the_rest(keap: httpx.Client) -> None:
    original = new_contact(keap, **EXISTING)
    path = f"/contacts/{original['id']}"
    r = keap.patch(path, json={"email_addresses": [{"email": "new@example.com",
                                                    "field": "EMAIL2"}]})
    assert r.status_code == 200, r.text
    conforms(r.json(), "Contact")
    stored = keap.get(path).json()
    assert [(e["field"], e["email"]) for e in stored["email_addresses"]] == [
        ("EMAIL2", "new@example.com")]
    assert stored["phone_numbers"] == original["phone_numbers"]
    assert stored["given_name"] == "Ann" and stored["update_time"] > original["update_time"]
    assert ids(keap, filter="email==ann.lee@example.com") == []
    assert ids(keap, filter="email==new@example.com") == [original["id"]]
    keap.patch(path, json={"phone_numbers": []})
    assert keap.get(path).json()["phone_numbers"] == []


def test_update_mask_limits_what_changes(keap: httpx.Client) -> None:
    original = new_contact(keap, **EXISTING)
    path = f"/contacts/{original['id']}"
    r = keap.patch(path, params={"update_mask": "given_name"},
                   json={"given_name": "Annie", "family_name": "Changed",
                         "email_addresses": []})
    assert r.status_code == 200, r.text
    stored = keap.get(path).json()
    assert (stored["given_name"], stored["family_name"]) == ("Annie", "Lee")
    assert stored["email_addresses"] == original["email_addresses"]
    error_of(keap.patch(path, params={"update_mask": "shoe_size"}, json={}), 400)
    error_of(keap.patch("/contacts/424242", json={"given_name": "X"}), 404)


# -- tags --------------------------------------------------------------------------------------
def test_tags_and_categories(keap: httpx.Client) -> None:
    category = keap.post("/tags/categories", json={"name": "Candidate"})
    assert category.status_code == 201, category.text
    conforms(category.json(), "TagCategory")
    cid = category.json()["id"]
    error_of(keap.post("/tags/categories", json={"name": "candidate"}), 400)
    made = [keap.post("/tags", json={"name": n, "category": {"id": cid}}).json()
            for n in ("Active Applicant", "Hired")]
    made.append(keap.post("/tags", json={"name": "VIP", "description": "Handle with care"})
                .json())
    for tag in made:
        conforms(tag, "Tag")
    error_of(keap.post("/tags", json={"name": "Hired", "category": {"id": cid}}), 400)
    error_of(keap.post("/tags", json={"name": "X", "category": {"id": "999"}}), 400)
    listing = keap.get("/tags").json()
    conforms(listing, "ListTagsResponse")
    assert [t["name"] for t in listing["tags"]] == ["Active Applicant", "Hired", "VIP"]
    in_category, _ = all_pages(keap, "/tags", "tags", filter=f"category_id=={cid}",
                               page_size=1)
    assert [t["name"] for t in in_category] == ["Active Applicant", "Hired"]
    named, _ = all_pages(keap, "/tags", "tags", filter="name==h*", order_by="name desc")
    assert [t["name"] for t in named] == ["Hired"]
    assert keap.get(f"/tags/{made[2]['id']}").json() == made[2]
    categories = keap.get("/tags/categories").json()
    conforms(categories, "ListTagCategoriesResponse")
    assert [c["id"] for c in categories["tag_categories"]] == [cid]


def test_apply_and_remove_tags(keap: httpx.Client) -> None:
    tag = keap.post("/tags", json={"name": "Active Applicant"}).json()["id"]
    a = new_contact(keap, email_addresses=[{"email": "a@example.com", "field": "EMAIL1"}])
    b = new_contact(keap, email_addresses=[{"email": "b@example.com", "field": "EMAIL1"}])
    r = keap.post(f"/tags/{tag}/contacts:applyTags",
                  json={"contact_ids": [a["id"], b["id"], "424242"]})
    assert r.status_code == 200, r.text
    conforms(r.json(), "ApplyTagsResponse")
    assert r.json()["results"] == {a["id"]: "SUCCESS", b["id"]: "SUCCESS",
                                   "424242": "CONTACT_NOT_FOUND"}
    again = keap.post(f"/tags/{tag}/contacts:applyTags", json={"contact_ids": [a["id"]]})
    assert again.json()["results"] == {a["id"]: "DUPLICATE"}
    after = keap.get(f"/contacts/{a['id']}", params={"fields": "tag_ids,update_time"}).json()
    assert after["tag_ids"] == [tag] and after["update_time"] > a["update_time"]

    tagged = keap.get(f"/tags/{tag}/contacts").json()
    conforms(tagged, "ListTaggedContactsResponse")
    assert [(c["id"], c["email"]) for c in tagged["contacts"]] == [
        (a["id"], "a@example.com"), (b["id"], "b@example.com")]
    on_a = keap.get(f"/contacts/{a['id']}/tags").json()
    conforms(on_a, "ListContactTagsResponse")
    assert [t["tag"]["id"] for t in on_a["tags"]] == [tag]
    assert on_a["tags"][0]["applied_time"] == tagged["contacts"][0]["applied_time"]

    removed = keap.post(f"/tags/{tag}/contacts:removeTags",
                        json={"contact_ids": [a["id"], "424242"]})
    assert removed.status_code == 204
    assert keap.get(f"/contacts/{a['id']}", params={"fields": "tag_ids"}).json()["tag_ids"] == []
    assert [c["id"] for c in keap.get(f"/tags/{tag}/contacts").json()["contacts"]] == [b["id"]]
    error_of(keap.post("/tags/999/contacts:applyTags", json={"contact_ids": [a["id"]]}), 404)
    error_of(keap.post(f"/tags/{tag}/contacts:applyTags", json={"ids": [a["id"]]}), 400)


def test_tagged_contacts_of_a_generated_world(sandbox: Sandbox, keap: httpx.Client) -> None:
    # tags a world was generated with have no recorded applied time: create_time stands in
    seed(sandbox, [{"id": "7", "name": "Hired", "create_time": "2025-01-01T00:00:00Z",
                    "update_time": "2025-01-01T00:00:00Z"}], "tags")
    seed(sandbox, [contact(i, tag_ids=["7"] if i % 3 == 0 else []) for i in range(1, 13)])
    items, pages = all_pages(keap, "/tags/7/contacts", "contacts", page_size=2)
    assert [c["id"] for c in items] == ["3", "6", "9", "12"] and pages == 2
    assert items[0]["applied_time"] == contact(3)["create_time"]


# -- custom fields -----------------------------------------------------------------------------
def test_custom_field_create_and_use(keap: httpx.Client) -> None:
    r = keap.post("/contacts/model/customFields",
                  json={"label": "Last Stage", "field_type": "DROPDOWN",
                        "options": [{"label": "Applied"}, {"label": "Offer"}]})
    assert r.status_code == 201, r.text
    field = r.json()
    conforms(field, "CustomFieldMetaData")
    error_of(keap.post("/contacts/model/customFields",
                       json={"label": "last stage", "field_type": "TEXT"}), 400)
    model = keap.get("/contacts/model").json()
    conforms(model, "ObjectModel")
    assert [f["id"] for f in model["custom_fields"]] == [field["id"]]
    assert "custom_fields" in model["optional_properties"]

    person = new_contact(keap, custom_fields=[{"id": field["id"], "content": "Offer"}])
    stored = keap.get(f"/contacts/{person['id']}", params={"fields": "custom_fields"}).json()
    assert stored["custom_fields"] == [{"id": field["id"], "content": "Offer"}]
    assert ids(keap, filter=f"{field['field_name']}==offer") == [person["id"]]
    bad = keap.patch(f"/contacts/{person['id']}",
                     json={"custom_fields": [{"id": field["id"], "content": "Hired"}]})
    assert error_of(bad, 400)["details"][0]["resource"] == f"custom_fields[{field['id']}]"


def test_custom_field_filters_compare_by_type(keap: httpx.Client) -> None:
    def define(label: str, kind: str) -> dict[str, Any]:
        r = keap.post("/contacts/model/customFields", json={"label": label, "field_type": kind})
        assert r.status_code == 201, r.text
        return r.json()

    applied, score = define("Applied On", "DATE"), define("Score", "WHOLE_NUMBER")

    def person(email: str, day: str, points: Any) -> httpx.Response:
        return keap.post("/contacts", json={
            "email_addresses": [{"email": email, "field": "EMAIL1"}],
            "custom_fields": [{"id": applied["id"], "content": day},
                              {"id": score["id"], "content": points}]})

    a, b = person("a@example.com", "2026-01-10", 7), person("b@example.com", "2026-02-10", 12)
    a_id, b_id = a.json()["id"], b.json()["id"]
    since = "2026-02-01T00:00:00.000Z"
    assert ids(keap, filter=f"{applied['field_name']}>={since}") == [b_id]
    assert ids(keap, filter=f"{score['field_name']}>10") == [b_id]
    assert ids(keap, filter=f"{score['field_name']}<=7") == [a_id]
    error_of(person("c@example.com", "2026-03-01", "seven"), 400)
    error_of(person("c@example.com", "March 1st", 3), 400)


# -- auth --------------------------------------------------------------------------------------
def token(sandbox: Sandbox, **form: str) -> httpx.Response:
    return httpx.post(sandbox.url("/keap/token"), data=form, timeout=30)


def code_grant(sandbox: Sandbox) -> dict[str, Any]:
    r = token(sandbox, grant_type="authorization_code", code=credentials.KEAP_AUTHORIZATION_CODE,
              client_id=credentials.KEAP_CLIENT_ID, client_secret=credentials.KEAP_CLIENT_SECRET,
              redirect_uri="https://example.com/callback")
    assert r.status_code == 200, r.text
    return r.json()


def as_bearer(sandbox: Sandbox, access: str) -> httpx.Response:
    return httpx.get(sandbox.url(API + "/contacts"), timeout=30,
                     headers={"Authorization": f"Bearer {access}"})


def test_oauth_code_refresh_rotation_and_expiry(sandbox: Sandbox) -> None:
    pair = code_grant(sandbox)
    assert pair["token_type"].lower() == "bearer" and pair["expires_in"] > 0
    assert pair["access_token"] and pair["refresh_token"] and pair["scope"]
    assert as_bearer(sandbox, pair["access_token"]).status_code == 200

    basic = httpx.BasicAuth(credentials.KEAP_CLIENT_ID, credentials.KEAP_CLIENT_SECRET)
    refreshed = httpx.post(sandbox.url("/keap/token"), auth=basic, timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != pair["refresh_token"]
    assert new["access_token"] != pair["access_token"]
    reused = httpx.post(sandbox.url("/keap/token"), auth=basic, timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    sandbox.admin("POST", "/tokens/expire")
    expired = as_bearer(sandbox, new["access_token"])
    assert "expired" in error_of(expired, 401)["message"].lower()
    again = httpx.post(sandbox.url("/keap/token"), auth=basic, timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": new["refresh_token"]})
    assert again.status_code == 200
    assert as_bearer(sandbox, again.json()["access_token"]).status_code == 200


@pytest.mark.parametrize("form, status, error", [
    ({"grant_type": "authorization_code", "code": "wrong"}, 400, "invalid_grant"),
    ({"grant_type": "refresh_token", "refresh_token": "never-issued"}, 400, "invalid_grant"),
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ({"grant_type": "authorization_code", "client_secret": "wrong"}, 401, "invalid_client"),
])
def test_token_endpoint_refusals(sandbox: Sandbox, form: dict[str, str], status: int,
                                 error: str) -> None:
    data = {"client_id": credentials.KEAP_CLIENT_ID,
            "client_secret": credentials.KEAP_CLIENT_SECRET,
            "code": credentials.KEAP_AUTHORIZATION_CODE, **form}
    r = token(sandbox, **data)
    assert (r.status_code, r.json()["error"]) == (status, error)


@pytest.mark.parametrize("headers", [{}, {"X-Keap-API-Key": "wrong"},
                                     {"Authorization": "Bearer not-a-token"}])
def test_requests_without_valid_credentials_are_refused(sandbox: Sandbox,
                                                        headers: dict[str, str]) -> None:
    error_of(httpx.get(sandbox.url(API + "/contacts"), headers=headers, timeout=30), 401)


# -- rate limits -------------------------------------------------------------------------------
def test_api_key_is_throttled_at_10_per_second_without_retry_after(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url + API, headers=PAT, timeout=30) as client:
        started = time.monotonic()
        replies = [client.get("/contacts", params={"page_size": 1}) for _ in range(11)]
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, "the calls were too slow to test a per-second limit"
    assert [r.status_code for r in replies] == [200] * 10 + [429]
    first, throttled = replies[0], replies[-1]
    assert first.headers["x-keap-product-throttle-limit"] == "240"
    assert first.headers["x-keap-product-throttle-time-unit"] == "minute"
    assert first.headers["x-keap-product-quota-limit"] == "30000"
    assert first.headers["x-keap-product-quota-time-unit"] == "day"
    assert int(first.headers["x-keap-product-quota-expiry-time"]) > time.time() * 1000
    assert first.headers["x-keap-tenant-id"]
    used = [int(r.headers["x-keap-product-throttle-used"]) for r in replies[:10]]
    assert used == list(range(1, 11))
    assert int(replies[9].headers["x-keap-product-throttle-available"]) == 230
    assert "retry-after" not in throttled.headers
    assert throttled.headers["x-keap-product-throttle-used"] == "10"
    assert throttled.json()["message"] == "Quota Exceeded"


def test_oauth_clients_get_the_larger_quota(sandbox: Sandbox) -> None:
    access = code_grant(sandbox)["access_token"]
    r = as_bearer(sandbox, access)
    assert r.headers["x-keap-product-throttle-limit"] == "1500"
    assert r.headers["x-keap-product-quota-limit"] == "150000"


def test_injected_429_may_carry_retry_after(sandbox: Sandbox, keap: httpx.Client) -> None:
    sandbox.queue_faults("keap", ["429", "429_no_retry_after"])
    with_header, without = keap.get("/contacts"), keap.get("/contacts")
    assert with_header.status_code == without.status_code == 429
    assert "retry-after" in with_header.headers and "retry-after" not in without.headers
    assert keap.get("/contacts").status_code == 200
