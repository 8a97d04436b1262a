"""The emulated HighLevel (LeadConnector) API v2 over a real socket: what a HighLevel client
relies on.

Auth and the Version header, the one-location rule, reply shapes (checked against the published
OpenAPI schemas), contact search and the deprecated list paging each contact exactly once,
opportunities paging, tag overwrite semantics, upsert matching, duplicate refusal, and the
100-per-10-seconds burst limit with its headers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox import credentials, records
from sandbox.store import iso, parse_ts
from tests.conftest import SPECS, Sandbox
from tests.integration.contract import assert_openapi_conforms

SPEC = SPECS / "highlevel"
CONTACTS_SPEC = SPEC / "contacts.json"
OPPS_SPEC = SPEC / "opportunities.json"
LOCATION = credentials.HIGHLEVEL_LOCATION_ID
HEADERS = {"Authorization": f"Bearer {credentials.HIGHLEVEL_TOKEN}", "Version": "2021-07-28"}
T0 = datetime(2025, 11, 3, 9, 0, tzinfo=UTC)
LIMIT = 5
SIZES = [0, 1, LIMIT - 1, LIMIT, LIMIT + 1, 4 * LIMIT + 2]


def reply_schema(path: str, method: str, status: int) -> str:
    """JSON pointer to the schema an operation declares for a reply status."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"#/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"


UNAUTHORIZED = reply_schema("/contacts/{contactId}", "get", 401)
UNPROCESSABLE = reply_schema("/contacts/{contactId}", "get", 422)
BAD_REQUEST = reply_schema("/contacts/{contactId}", "get", 400)


@pytest.fixture
def hl(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url("/highlevel"), headers=HEADERS, timeout=30) as client:
        yield client


# -- realistic records put straight into the world --------------------------------------------

def contact(i: int, **over: Any) -> dict[str, Any]:
    """A contact as HighLevel returns it. Every three share a dateAdded and every two a
    dateUpdated, so paging must break ties by id."""
    doc = {
        "id": records.highlevel_id(i, salt=7), "locationId": LOCATION, "type": "lead",
        "firstName": f"Grace{i}", "lastName": "Hopper", "name": f"Grace{i} Hopper",
        "firstNameLowerCase": f"grace{i}", "lastNameLowerCase": "hopper",
        "fullNameLowerCase": f"grace{i} hopper", "email": f"grace{i}@navy.example",
        "emailLowerCase": f"grace{i}@navy.example", "phone": f"+1415555{i:04d}", "dnd": False,
        "tags": ["candidate"], "customFields": [], "source": "ats sync", "country": "US",
        "dateAdded": iso(T0 + timedelta(seconds=i // 3)),
        "dateUpdated": iso(T0 + timedelta(days=1, seconds=i // 2)),
    }
    return {**doc, **over}


def seed_contacts(sandbox: Sandbox, n: int, start: int = 0) -> list[dict[str, Any]]:
    docs = [contact(i) for i in range(start, start + n)]
    records.save_many(sandbox.store, "highlevel", "contacts", docs)
    return docs


def seed_pipeline(sandbox: Sandbox) -> dict[str, Any]:
    pipeline = {"id": "pipeHiring0000000001", "name": "Hiring", "locationId": LOCATION,
                "showInFunnel": True, "showInPieChart": True,
                "stages": [{"id": f"stage-{k}", "name": name, "position": k}
                           for k, name in enumerate(["Applied", "Interview", "Offer"])]}
    records.save(sandbox.store, "highlevel", "pipelines", pipeline)
    return pipeline


def opportunity(i: int, contact_id: str, **over: Any) -> dict[str, Any]:
    created = iso(T0 + timedelta(minutes=i // 2))
    doc = {"id": records.highlevel_id(i, salt=11), "name": f"Opening {i}",
           "monetaryValue": 1000 + i, "pipelineId": "pipeHiring0000000001",
           "pipelineStageId": "stage-0", "status": "open", "source": "ats",
           "contactId": contact_id, "locationId": LOCATION, "customFields": [],
           "lastStatusChangeAt": created, "lastStageChangeAt": created,
           "createdAt": created, "updatedAt": created}
    return {**doc, **over}


def ordered(docs: list[dict[str, Any]], key: str, reverse: bool = False) -> list[str]:
    return [d["id"] for d in sorted(docs, key=lambda d: (d[key], d["id"]), reverse=reverse)]


# -- paging helpers: what a client does ---------------------------------------------------------

def search(hl: httpx.Client, **body: Any) -> httpx.Response:
    return hl.post("/contacts/search", json={"locationId": LOCATION, **body})


def search_by_page(hl: httpx.Client, limit: int, **body: Any) -> list[list[dict]]:
    pages, page = [], 1
    while True:
        r = search(hl, pageLimit=limit, page=page, **body)
        assert r.status_code == 200, r.text
        pages.append(r.json()["contacts"])
        if len(pages[-1]) < limit:
            return pages
        page += 1


def search_after(hl: httpx.Client, limit: int, **body: Any) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        r = search(hl, pageLimit=limit, **body, **({"searchAfter": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        pages.append(r.json()["contacts"])
        if len(pages[-1]) < limit:
            return pages
        cursor = pages[-1][-1]["searchAfter"]


def ids(pages: list[list[dict]]) -> list[str]:
    return [c["id"] for page in pages for c in page]


# -- auth, version, location ------------------------------------------------------------------

def test_every_call_needs_the_version_header(sandbox: Sandbox, hl: httpx.Client) -> None:
    url = f"/locations/{LOCATION}/tags"
    bare = httpx.get(sandbox.url(f"/highlevel{url}"),
                     headers={"Authorization": HEADERS["Authorization"]})
    empty = hl.get(url, headers={"Version": ""})
    wrong = hl.get(url, headers={"Version": "2020-01-01"})
    assert (bare.status_code, empty.status_code, wrong.status_code) == (401, 401, 401)
    assert bare.json() == {"statusCode": 401, "message": "version header was not found."}
    assert empty.json() == bare.json()
    assert wrong.json() == {"statusCode": 401, "message": "version header is invalid"}
    assert_openapi_conforms(bare.json(), CONTACTS_SPEC, UNAUTHORIZED, "401 body")
    assert hl.get(url).status_code == 200


def test_unknown_tokens_are_refused_in_highlevel_shape(sandbox: Sandbox) -> None:
    url = sandbox.url(f"/highlevel/locations/{LOCATION}/tags")
    pit = httpx.get(url, headers={**HEADERS, "Authorization": "Bearer pit-not-ours"})
    jwt = httpx.get(url, headers={**HEADERS, "Authorization": "Bearer aaa.bbb.ccc"})
    none = httpx.get(url, headers={"Version": "2021-07-28"})
    assert pit.status_code == jwt.status_code == none.status_code == 401
    assert pit.json() == {"statusCode": 401, "message": "Invalid Private Integration token"}
    assert jwt.json() == {"statusCode": 401, "message": "Invalid JWT"}
    for r in (pit, jwt, none):
        assert_openapi_conforms(r.json(), CONTACTS_SPEC, UNAUTHORIZED, "401 body")


def test_injected_expired_token_looks_like_an_expired_jwt(sandbox: Sandbox,
                                                          hl: httpx.Client) -> None:
    sandbox.queue_faults("highlevel", ["expired_token"])
    r = hl.get(f"/locations/{LOCATION}/tags")
    assert r.status_code == 401
    assert r.json() == {"statusCode": 401, "message": "Invalid JWT"}
    assert hl.get(f"/locations/{LOCATION}/tags").status_code == 200


@pytest.mark.parametrize("call", [
    lambda hl: hl.post("/contacts/search", json={"locationId": "otherLocation0000001",
                                                 "pageLimit": 10}),
    lambda hl: hl.get("/contacts/", params={"locationId": "otherLocation0000001"}),
    lambda hl: hl.get("/opportunities/search", params={"location_id": "otherLocation0000001"}),
    lambda hl: hl.get("/opportunities/pipelines", params={"locationId": "otherLocation0000001"}),
    lambda hl: hl.get("/workflows/", params={"locationId": "otherLocation0000001"}),
    lambda hl: hl.get("/locations/otherLocation0000001/customFields"),
    lambda hl: hl.post("/contacts/", json={"locationId": "otherLocation0000001",
                                           "email": "x@example.com"}),
])
def test_another_location_is_forbidden(hl: httpx.Client, call) -> None:
    r = call(hl)
    assert r.status_code == 403
    assert r.json() == {"statusCode": 403,
                        "message": "The token does not have access to this location."}


def test_a_missing_location_or_unknown_property_is_a_422(hl: httpx.Client) -> None:
    missing = hl.get("/contacts/")
    extra = hl.post("/contacts/search", json={"locationId": LOCATION, "pageLimit": 5,
                                              "pageSize": 5})
    assert missing.status_code == extra.status_code == 422
    assert "locationId should not be empty" in missing.json()["message"]
    assert extra.json()["message"] == ["property pageSize should not exist"]
    for r in (missing, extra):
        assert_openapi_conforms(r.json(), CONTACTS_SPEC, UNPROCESSABLE, "422 body")
        assert r.json()["error"] == "Unprocessable Entity"


# -- contacts: create, read, update, delete ---------------------------------------------------

def create(hl: httpx.Client, **body: Any) -> httpx.Response:
    return hl.post("/contacts/", json={"locationId": LOCATION, **body})


def test_create_read_update_delete_a_contact(sandbox: Sandbox, hl: httpx.Client) -> None:
    created = create(hl, firstName="Ada", lastName="Lovelace", email="Ada@Example.com",
                     phone="(415) 555-0100", tags=["Applicant"], source="ats sync")
    assert created.status_code == 201, created.text
    assert_openapi_conforms(created.json(), CONTACTS_SPEC, reply_schema("/contacts/", "post", 201))
    doc = created.json()["contact"]
    assert len(doc["id"]) == 20 and doc["id"].isalnum()
    assert (doc["email"], doc["emailLowerCase"], doc["phone"]) == (
        "Ada@Example.com", "ada@example.com", "+14155550100")
    assert doc["dateAdded"] == doc["dateUpdated"]
    assert parse_ts(doc["dateAdded"]).microsecond % 1000 == 0 and doc["dateAdded"].endswith("Z")

    read = hl.get(f"/contacts/{doc['id']}")
    assert read.status_code == 200
    assert_openapi_conforms(read.json(), CONTACTS_SPEC,
                            reply_schema("/contacts/{contactId}", "get", 200))
    assert read.json()["contact"] == doc

    updated = hl.put(f"/contacts/{doc['id']}", json={"lastName": "King", "city": "London"})
    assert updated.status_code == 200, updated.text
    assert_openapi_conforms(updated.json(), CONTACTS_SPEC,
                            reply_schema("/contacts/{contactId}", "put", 200))
    after = updated.json()["contact"]
    assert updated.json()["succeded"] is True
    assert (after["lastName"], after["city"], after["name"]) == ("King", "London", "Ada King")
    assert after["dateAdded"] == doc["dateAdded"] and after["dateUpdated"] > doc["dateUpdated"]

    deleted = hl.delete(f"/contacts/{doc['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"succeded": True}  # sic: HighLevel's spelling
    gone = hl.get(f"/contacts/{doc['id']}")
    assert gone.status_code == 400
    assert_openapi_conforms(gone.json(), CONTACTS_SPEC, BAD_REQUEST, "400 body")
    assert [t["id"] for t in sandbox.admin("GET", "/tombstones/highlevel/contacts")] == [doc["id"]]


def test_creating_a_duplicate_email_or_phone_is_refused(hl: httpx.Client) -> None:
    first = create(hl, email="sam@example.com", phone="+1 415 555 0199",
                   firstName="Sam").json()["contact"]
    by_email = create(hl, email="SAM@example.com")
    by_phone = create(hl, email="other@example.com", phone="4155550199")
    for r, field in ((by_email, "email"), (by_phone, "phone")):
        assert r.status_code == 400
        assert r.json() == {"statusCode": 400,
                            "message": "This location does not allow duplicated contacts.",
                            "meta": {"contactName": "Sam", "contactId": first["id"],
                                     "matchingField": field}}
    assert search(hl, pageLimit=10).json()["total"] == 1


def test_update_refuses_taking_another_contacts_email(hl: httpx.Client) -> None:
    a = create(hl, email="a@example.com").json()["contact"]
    create(hl, email="b@example.com")
    r = hl.put(f"/contacts/{a['id']}", json={"email": "B@example.com"})
    assert r.status_code == 400 and r.json()["meta"]["matchingField"] == "email"
    assert hl.put(f"/contacts/{a['id']}", json={"locationId": LOCATION}).json()["message"] == [
        "property locationId should not exist"]


# -- tags: overwrite on create/update/upsert, add/remove on the tags endpoints ----------------

def tags_of(hl: httpx.Client, contact_id: str) -> list[str]:
    return hl.get(f"/contacts/{contact_id}").json()["contact"]["tags"]


def test_tags_sent_on_update_or_upsert_replace_all_tags(hl: httpx.Client) -> None:
    doc = create(hl, email="t@example.com", tags=["Applicant", "Python"]).json()["contact"]
    assert doc["tags"] == ["applicant", "python"]  # HighLevel keeps tags lower-case
    hl.put(f"/contacts/{doc['id']}", json={"city": "Paris"})
    assert tags_of(hl, doc["id"]) == ["applicant", "python"]  # not sent: untouched
    hl.put(f"/contacts/{doc['id']}", json={"tags": ["Interview"]})
    assert tags_of(hl, doc["id"]) == ["interview"]
    hl.post("/contacts/upsert", json={"locationId": LOCATION, "email": "t@example.com",
                                      "tags": ["Offer"]})
    assert tags_of(hl, doc["id"]) == ["offer"]
    hl.put(f"/contacts/{doc['id']}", json={"tags": []})
    assert tags_of(hl, doc["id"]) == []


def test_tag_endpoints_add_and_remove_single_tags(hl: httpx.Client) -> None:
    doc = create(hl, email="t@example.com", tags=["applicant"]).json()["contact"]
    added = hl.post(f"/contacts/{doc['id']}/tags", json={"tags": ["Interview", "applicant"]})
    assert added.status_code == 201
    assert_openapi_conforms(added.json(), CONTACTS_SPEC,
                            reply_schema("/contacts/{contactId}/tags", "post", 201))
    assert added.json()["tags"] == ["applicant", "interview"]
    removed = hl.request("DELETE", f"/contacts/{doc['id']}/tags",
                         json={"tags": ["applicant", "never-had"]})
    assert removed.status_code == 200
    assert_openapi_conforms(removed.json(), CONTACTS_SPEC,
                            reply_schema("/contacts/{contactId}/tags", "delete", 200))
    assert removed.json()["tags"] == ["interview"] == tags_of(hl, doc["id"])
    assert hl.post(f"/contacts/{doc['id']}/tags", json={}).status_code == 422


def test_applied_tags_become_location_tags(hl: httpx.Client) -> None:
    doc = create(hl, email="t@example.com", tags=["applicant"]).json()["contact"]
    hl.post(f"/contacts/{doc['id']}/tags", json={"tags": ["Hired"]})
    r = hl.get(f"/locations/{LOCATION}/tags")
    assert_openapi_conforms(r.json(), SPEC / "locations.json",
                            reply_schema("/locations/{locationId}/tags", "get", 200))
    assert sorted(t["name"] for t in r.json()["tags"]) == ["applicant", "hired"]
    assert {t["locationId"] for t in r.json()["tags"]} == {LOCATION}


# -- upsert -----------------------------------------------------------------------------------

def upsert(hl: httpx.Client, **body: Any) -> dict[str, Any]:
    r = hl.post("/contacts/upsert", json={"locationId": LOCATION, **body})
    assert r.status_code == 200, r.text
    assert_openapi_conforms(r.json(), CONTACTS_SPEC, reply_schema("/contacts/upsert", "post", 200))
    return r.json()


def test_upsert_creates_then_matches_by_email_then_by_phone(hl: httpx.Client) -> None:
    made = upsert(hl, email="lin@example.com", firstName="Lin")
    assert made["new"] is True and made["traceId"]
    by_email = upsert(hl, email="LIN@example.com", lastName="Wu")
    assert (by_email["new"], by_email["contact"]["id"]) == (False, made["contact"]["id"])
    assert by_email["contact"]["name"] == "Lin Wu"
    upsert(hl, email="lin@example.com", phone="+44 20 7946 0000")
    by_phone = upsert(hl, phone="+442079460000", city="Leeds")
    assert (by_phone["new"], by_phone["contact"]["id"]) == (False, made["contact"]["id"])
    assert by_phone["contact"]["email"] == "lin@example.com"
    assert search(hl, pageLimit=10).json()["total"] == 1


def test_upsert_prefers_the_email_match_and_ignores_a_phone_owned_by_another(
        hl: httpx.Client) -> None:
    by_mail = create(hl, email="a@example.com").json()["contact"]
    by_tel = create(hl, email="b@example.com", phone="+14155550123").json()["contact"]
    result = upsert(hl, email="a@example.com", phone="+14155550123", city="Oslo")
    assert (result["new"], result["contact"]["id"]) == (False, by_mail["id"])
    assert "phone" not in result["contact"] and result["contact"]["city"] == "Oslo"
    assert hl.get(f"/contacts/{by_tel['id']}").json()["contact"]["phone"] == "+14155550123"


# -- contact search ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_search_pages_by_page_each_contact_exactly_once(sandbox: Sandbox, hl: httpx.Client,
                                                        n: int) -> None:
    docs = seed_contacts(sandbox, n)
    pages = search_by_page(hl, LIMIT, sort=[{"field": "dateAdded", "direction": "asc"}])
    assert ids(pages) == ordered(docs, "dateAdded")
    assert len(pages) == n // LIMIT + 1


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_search_after_pages_each_contact_exactly_once(sandbox: Sandbox, hl: httpx.Client,
                                                      n: int, direction: str) -> None:
    docs = seed_contacts(sandbox, n)
    pages = search_after(hl, LIMIT, sort=[{"field": "dateUpdated", "direction": direction}])
    assert ids(pages) == ordered(docs, "dateUpdated", reverse=direction == "desc")
    for page in pages:
        for c in page:
            assert_openapi_conforms(c, CONTACTS_SPEC, "ContactsSearchSchema", "search contact")
            assert c["searchAfter"] == [int(parse_ts(c["dateUpdated"]).timestamp() * 1000),
                                        c["id"]]


def test_search_after_reaches_past_the_10000_record_page_window(sandbox: Sandbox,
                                                                hl: httpx.Client) -> None:
    docs = seed_contacts(sandbox, 10_030)
    assert search(hl, pageLimit=500, page=20).status_code == 200
    too_deep = search(hl, pageLimit=500, page=21)
    assert too_deep.status_code == 400 and "searchAfter" in too_deep.json()["message"]
    pages = search_after(hl, 500)
    assert len(pages) == 21
    assert ids(pages) == ordered(docs, "dateAdded", reverse=True)  # newest first by default


def test_search_total_counts_every_match_not_the_page(sandbox: Sandbox, hl: httpx.Client) -> None:
    seed_contacts(sandbox, 12)
    r = search(hl, pageLimit=5)
    assert (len(r.json()["contacts"]), r.json()["total"]) == (5, 12)


def test_search_filters_by_date_updated_range_inclusive(sandbox: Sandbox,
                                                        hl: httpx.Client) -> None:
    docs = seed_contacts(sandbox, 20)
    low, high = docs[4]["dateUpdated"], docs[11]["dateUpdated"]
    window = {"field": "dateUpdated", "operator": "range", "value": {"gte": low, "lte": high}}
    pages = search_after(hl, 3, filters=[window],
                         sort=[{"field": "dateUpdated", "direction": "asc"}])
    expected = [d for d in docs if low <= d["dateUpdated"] <= high]
    assert ids(pages) == ordered(expected, "dateUpdated")
    assert {d["id"] for d in expected} >= {docs[4]["id"], docs[11]["id"]}
    millis = {"gt": int(parse_ts(low).timestamp() * 1000)}
    r = search(hl, pageLimit=100, filters=[{"field": "dateUpdated", "operator": "range",
                                            "value": millis}])
    assert {c["id"] for c in r.json()["contacts"]} == {d["id"] for d in docs
                                                        if d["dateUpdated"] > low}


def test_search_filters_by_email_case_insensitively(sandbox: Sandbox, hl: httpx.Client) -> None:
    docs = seed_contacts(sandbox, 8)
    r = search(hl, pageLimit=10, filters=[{"field": "email", "operator": "eq",
                                           "value": docs[3]["email"].upper()}])
    assert [c["id"] for c in r.json()["contacts"]] == [docs[3]["id"]]
    assert r.json()["total"] == 1


def test_search_filter_groups_combine_with_or(sandbox: Sandbox, hl: httpx.Client) -> None:
    docs = seed_contacts(sandbox, 8)
    group = {"group": "OR", "filters": [
        {"field": "email", "operator": "eq", "value": docs[1]["email"]},
        {"field": "firstName", "operator": "eq", "value": docs[6]["firstName"]}]}
    r = search(hl, pageLimit=10, filters=[group])
    assert {c["id"] for c in r.json()["contacts"]} == {docs[1]["id"], docs[6]["id"]}


@pytest.mark.parametrize("body, problem", [
    ({"pageLimit": 10, "filters": [{"field": "email", "operator": "like", "value": "x"}]},
     "filters.0.operator must be one of the following values"),
    ({"pageLimit": 10, "filters": [{"field": "shoeSize", "operator": "eq", "value": "9"}]},
     "filters.0.field must be one of the following values"),
    ({"pageLimit": 501}, "pageLimit must not be greater than 500"),
    ({}, "pageLimit must be a number"),
    ({"pageLimit": 10, "page": 2, "searchAfter": [1, "x"]}, "page should not be sent"),
    ({"pageLimit": 10, "sort": [{"field": "email", "direction": "asc"}]},
     "sort.0.field must be one of the following values"),
])
def test_search_refuses_what_highlevel_refuses(hl: httpx.Client, body: dict,
                                               problem: str) -> None:
    r = search(hl, **body)
    assert r.status_code == 422, r.text
    assert_openapi_conforms(r.json(), CONTACTS_SPEC, UNPROCESSABLE, "422 body")
    assert any(m.startswith(problem) for m in r.json()["message"]), r.json()


# -- the deprecated list ----------------------------------------------------------------------

def list_pages(sandbox: Sandbox, hl: httpx.Client, limit: int) -> list[dict[str, Any]]:
    """Every reply, following meta.nextPageUrl as HighLevel's own docs show."""
    replies = [hl.get("/contacts/", params={"locationId": LOCATION, "limit": limit})]
    while replies[-1].json()["meta"].get("nextPageUrl"):
        replies.append(hl.get(replies[-1].json()["meta"]["nextPageUrl"]))
    for r in replies:
        assert r.status_code == 200, r.text
        assert_openapi_conforms(r.json(), CONTACTS_SPEC, reply_schema("/contacts/", "get", 200))
        assert_openapi_conforms(r.json()["meta"], CONTACTS_SPEC, "ContactsMetaSchema", "meta")
    return [r.json() for r in replies]


@pytest.mark.parametrize("n", SIZES)
def test_list_pages_by_start_after_id_each_contact_exactly_once(sandbox: Sandbox,
                                                                hl: httpx.Client,
                                                                n: int) -> None:
    docs = seed_contacts(sandbox, n)
    replies = list_pages(sandbox, hl, LIMIT)
    assert [c["id"] for r in replies for c in r["contacts"]] == ordered(docs, "dateAdded")
    assert len(replies) == max(1, math.ceil(n / LIMIT))
    assert all(r["meta"]["total"] == n for r in replies)
    for r in replies[:-1]:
        last = r["contacts"][-1]
        assert r["meta"]["startAfterId"] == last["id"]
        assert r["meta"]["startAfter"] == int(parse_ts(last["dateAdded"]).timestamp() * 1000)


def test_list_start_after_id_alone_continues_after_that_contact(sandbox: Sandbox,
                                                                hl: httpx.Client) -> None:
    docs = seed_contacts(sandbox, 9)
    order = ordered(docs, "dateAdded")
    r = hl.get("/contacts/", params={"locationId": LOCATION, "startAfterId": order[3]})
    assert [c["id"] for c in r.json()["contacts"]] == order[4:]


def test_list_limit_is_at_most_100(hl: httpx.Client) -> None:
    r = hl.get("/contacts/", params={"locationId": LOCATION, "limit": 101})
    assert r.status_code == 422
    assert r.json()["message"] == ["limit must not be greater than 100"]


# -- opportunities, pipelines, workflows, custom fields ---------------------------------------

def seed_opportunities(sandbox: Sandbox, n: int) -> list[dict[str, Any]]:
    seed_pipeline(sandbox)
    people = seed_contacts(sandbox, 3)
    opps = [opportunity(i, people[i % 3]["id"]) for i in range(n)]
    records.save_many(sandbox.store, "highlevel", "opportunities", opps)
    return opps


def opportunity_pages(hl: httpx.Client, limit: int, **params: Any) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"location_id": LOCATION, "limit": limit, **params}
    replies = []
    while True:
        r = hl.get("/opportunities/search", params=query)
        assert r.status_code == 200, r.text
        assert_openapi_conforms(r.json(), OPPS_SPEC,
                                reply_schema("/opportunities/search", "get", 200))
        replies.append(r.json())
        meta = r.json()["meta"]
        if not meta.get("startAfterId"):
            return replies
        query.update(startAfter=meta["startAfter"], startAfterId=meta["startAfterId"],
                     page=meta["nextPage"])


@pytest.mark.parametrize("n", SIZES)
def test_opportunities_page_each_one_exactly_once(sandbox: Sandbox, hl: httpx.Client,
                                                  n: int) -> None:
    opps = seed_opportunities(sandbox, n)
    replies = opportunity_pages(hl, LIMIT)
    assert [o["id"] for r in replies for o in r["opportunities"]] == ordered(opps, "createdAt")
    assert len(replies) == max(1, math.ceil(n / LIMIT))
    assert [r["meta"]["currentPage"] for r in replies] == list(range(1, len(replies) + 1))
    assert all(r["meta"]["total"] == n for r in replies)


def test_opportunities_filter_by_contact_and_embed_the_contact(sandbox: Sandbox,
                                                               hl: httpx.Client) -> None:
    opps = seed_opportunities(sandbox, 9)
    who = opps[1]["contactId"]
    replies = opportunity_pages(hl, 2, contact_id=who)
    found = [o for r in replies for o in r["opportunities"]]
    assert [o["id"] for o in found] == ordered([o for o in opps if o["contactId"] == who],
                                               "createdAt")
    assert {o["contact"]["id"] for o in found} == {who}
    assert found[0]["contact"]["email"].endswith("@navy.example")


def test_opportunity_create_update_delete(sandbox: Sandbox, hl: httpx.Client) -> None:
    seed_pipeline(sandbox)
    person = create(hl, email="o@example.com", firstName="Opal").json()["contact"]
    body = {"locationId": LOCATION, "pipelineId": "pipeHiring0000000001", "name": "Engineer",
            "status": "open", "contactId": person["id"], "monetaryValue": 5000}
    made = hl.post("/opportunities/", json=body)
    assert made.status_code == 201, made.text
    assert_openapi_conforms(made.json(), OPPS_SPEC, reply_schema("/opportunities/", "post", 201))
    opp = made.json()["opportunity"]
    assert (opp["pipelineStageId"], opp["contact"]["id"]) == ("stage-0", person["id"])
    again = hl.post("/opportunities/", json=body)
    assert again.status_code == 400
    assert again.json()["message"] == "Can not create duplicate opportunity for the contact."

    moved = hl.put(f"/opportunities/{opp['id']}", json={"pipelineStageId": "stage-2",
                                                       "status": "won"})
    assert moved.status_code == 200, moved.text
    assert_openapi_conforms(moved.json(), OPPS_SPEC,
                            reply_schema("/opportunities/{id}", "put", 200))
    after = moved.json()["opportunity"]
    assert (after["pipelineStageId"], after["status"]) == ("stage-2", "won")
    assert after["lastStageChangeAt"] == after["lastStatusChangeAt"] == after["updatedAt"]
    assert after["updatedAt"] > opp["updatedAt"] and after["createdAt"] == opp["createdAt"]
    assert hl.put(f"/opportunities/{opp['id']}",
                  json={"pipelineStageId": "no-such-stage"}).status_code == 400

    fetched = hl.get(f"/opportunities/{opp['id']}")
    assert_openapi_conforms(fetched.json(), OPPS_SPEC,
                            reply_schema("/opportunities/{id}", "get", 200))
    assert fetched.json()["opportunity"]["status"] == "won"
    deleted = hl.delete(f"/opportunities/{opp['id']}")
    assert deleted.json() == {"succeded": True}
    assert hl.get(f"/opportunities/{opp['id']}").status_code == 400


def test_pipelines_workflows_and_custom_fields_lists(sandbox: Sandbox, hl: httpx.Client) -> None:
    pipeline = seed_pipeline(sandbox)
    records.save(sandbox.store, "highlevel", "workflows", {
        "id": "78559bb3-b920-461e-b010-7b2a2816d2a9", "name": "New applicant", "status":
        "published", "version": 2, "createdAt": iso(T0), "updatedAt": iso(T0),
        "locationId": LOCATION})
    for k, model in enumerate(["contact", "opportunity"]):
        records.save(sandbox.store, "highlevel", "custom_fields", {
            "id": f"cf{k}", "name": f"Field {k}", "fieldKey": f"{model}.field_{k}",
            "placeholder": "", "dataType": "TEXT", "position": k, "locationId": LOCATION,
            "model": model})

    pipes = hl.get("/opportunities/pipelines", params={"locationId": LOCATION}).json()
    # the published schema types `stages` items as arrays (a generator slip); stages are
    # objects on the real API, so each pipeline is checked without them
    for p in pipes["pipelines"]:
        assert_openapi_conforms({k: v for k, v in p.items() if k != "stages"}, OPPS_SPEC,
                                "PipelinesResponseSchema", "pipeline")
    assert pipes["pipelines"][0]["stages"] == pipeline["stages"]

    flows = hl.get("/workflows/", params={"locationId": LOCATION})
    assert_openapi_conforms(flows.json(), SPEC / "workflows.json",
                            reply_schema("/workflows/", "get", 200))
    assert [w["name"] for w in flows.json()["workflows"]] == ["New applicant"]

    path = f"/locations/{LOCATION}/customFields"
    fields = hl.get(path)
    assert_openapi_conforms(fields.json(), SPEC / "locations.json",
                            reply_schema("/locations/{locationId}/customFields", "get", 200))
    assert [f["id"] for f in fields.json()["customFields"]] == ["cf0", "cf1"]
    only = hl.get(path, params={"model": "opportunity"}).json()["customFields"]
    assert [f["id"] for f in only] == ["cf1"]


def test_contact_custom_fields_are_set_by_id_or_key(sandbox: Sandbox, hl: httpx.Client) -> None:
    records.save(sandbox.store, "highlevel", "custom_fields", {
        "id": "cfStage", "name": "ATS stage", "fieldKey": "contact.ats_stage",
        "dataType": "TEXT", "position": 0, "locationId": LOCATION, "model": "contact"})
    doc = create(hl, email="c@example.com",
                 customFields=[{"key": "ats_stage", "field_value": "Applied"}]).json()["contact"]
    assert doc["customFields"] == [{"id": "cfStage", "value": "Applied"}]
    r = hl.put(f"/contacts/{doc['id']}",
               json={"customFields": [{"id": "cfStage", "field_value": "Offer"}]})
    assert r.json()["contact"]["customFields"] == [{"id": "cfStage", "value": "Offer"}]
    assert hl.put(f"/contacts/{doc['id']}", json={
        "customFields": [{"id": "nope", "field_value": "x"}]}).status_code == 422


# -- rate limit -------------------------------------------------------------------------------

def test_a_burst_past_100_in_10_seconds_gets_429_with_headers(sandbox: Sandbox,
                                                              hl: httpx.Client) -> None:
    url = f"/locations/{LOCATION}/tags"
    replies = [hl.get(url) for _ in range(101)]
    assert [r.status_code for r in replies[:100]] == [200] * 100
    refused = replies[100]
    assert refused.status_code == 429
    assert refused.json()["statusCode"] == 429
    assert "retry-after" not in refused.headers  # HighLevel documents none
    first, last_ok = replies[0].headers, replies[99].headers
    for headers in (first, last_ok, refused.headers):
        assert headers["x-ratelimit-max"] == "100"
        assert headers["x-ratelimit-interval-milliseconds"] == "10000"
        assert headers["x-ratelimit-limit-daily"] == "200000"
    assert (first["x-ratelimit-remaining"], last_ok["x-ratelimit-remaining"],
            refused.headers["x-ratelimit-remaining"]) == ("99", "0", "0")
    assert (first["x-ratelimit-daily-remaining"],
            last_ok["x-ratelimit-daily-remaining"]) == ("199999", "199900")
    assert len(sandbox.requests("highlevel")) == 101


def test_injected_429_keeps_the_highlevel_shape(sandbox: Sandbox, hl: httpx.Client) -> None:
    sandbox.queue_faults("highlevel", ["429_no_retry_after"])
    r = hl.get(f"/locations/{LOCATION}/tags")
    assert r.status_code == 429 and "retry-after" not in r.headers
    assert r.json()["statusCode"] == 429 and r.headers["x-ratelimit-remaining"] == "0"


def test_a_location_tag_can_be_created_once(hl: httpx.Client) -> None:
    path = f"/locations/{LOCATION}/tags"
    made = hl.post(path, json={"name": "Referral "})
    assert made.status_code == 200, made.text
    assert_openapi_conforms(made.json(), SPEC / "locations.json",
                            reply_schema("/locations/{locationId}/tags", "post", 200))
    assert made.json()["tag"]["name"] == "referral"
    assert hl.post(path, json={"name": "REFERRAL"}).status_code == 400
    assert [t["name"] for t in hl.get(path).json()["tags"]] == ["referral"]
