"""The emulated HighLevel custom field writes (issue 17 item 2, configuration restore), over a
real socket, against specs/highlevel/locations.json: POST /locations/{locationId}/customFields
takes CreateCustomFieldsDTO (name and dataType required; unknown properties such as picklist
`options`, which the DTO does not have, are a 422) and answers 201 with the field and a key
derived from its name; a second field with that key is a 400; DELETE removes the field and every
value of it, and a value sent for it afterwards is a 422."""

from __future__ import annotations

import httpx
import pytest

from sandbox import records
from tests.conftest import Sandbox
from tests.integration.contract import assert_openapi_conforms
from tests.integration.test_sandbox_highlevel import (
    HEADERS,
    LOCATION,
    SPEC,
    UNPROCESSABLE,
    reply_schema,
)

FIELDS, FIELD = "/locations/{locationId}/customFields", "/locations/{locationId}/customFields/{id}"
LOCATIONS_SPEC = SPEC / "locations.json"


@pytest.fixture
def hl(sandbox: Sandbox):
    with httpx.Client(base_url=sandbox.url("/highlevel"), headers=HEADERS, timeout=30) as client:
        yield client


def conforms(r: httpx.Response, path: str, method: str, status: int) -> dict:
    assert r.status_code == status, r.text
    assert_openapi_conforms(r.json(), LOCATIONS_SPEC, reply_schema(path, method, status))
    return r.json()


def test_create_then_use_then_delete_a_custom_field(hl: httpx.Client) -> None:
    path = f"/locations/{LOCATION}/customFields"
    made = conforms(hl.post(path, json={"name": "Notice Period", "dataType": "TEXT",
                                        "placeholder": "weeks", "position": 150}),
                    FIELDS, "post", 201)["customField"]
    assert (made["name"], made["fieldKey"], made["dataType"], made["model"], made["position"]) \
        == ("Notice Period", "contact.notice_period", "TEXT", "contact", 150)
    assert made["id"] in [f["id"] for f in hl.get(path).json()["customFields"]]
    contact = hl.post("/contacts/", json={"locationId": LOCATION, "email": "cf@example.com",
                                          "customFields": [{"id": made["id"],
                                                            "field_value": "4"}]})
    assert contact.status_code == 201, contact.text
    cid = contact.json()["contact"]["id"]
    assert contact.json()["contact"]["customFields"] == [{"id": made["id"], "value": "4"}]

    gone = conforms(hl.delete(f"{path}/{made['id']}"), FIELD, "delete", 200)
    assert gone == {"succeded": True}
    assert made["id"] not in [f["id"] for f in hl.get(path).json()["customFields"]]
    assert hl.get(f"/contacts/{cid}").json()["contact"]["customFields"] == []  # values went too
    again = hl.put(f"/contacts/{cid}", json={"customFields": [{"id": made["id"],
                                                                "field_value": "5"}]})
    assert again.status_code == 422
    assert hl.delete(f"{path}/{made['id']}").status_code == 400


def test_an_opportunity_field_takes_its_values_from_opportunities(sandbox: Sandbox,
                                                                  hl: httpx.Client) -> None:
    path = f"/locations/{LOCATION}/customFields"
    made = hl.post(path, json={"name": "Deal size", "dataType": "NUMERICAL",
                               "model": "opportunity"}).json()["customField"]
    assert made["fieldKey"] == "opportunity.deal_size"
    opp = {"id": "oppCf000000000000001", "name": "x", "locationId": LOCATION,
           "pipelineId": "p", "contactId": "c", "status": "open",
           "customFields": [{"id": made["id"], "fieldValue": 3}, {"id": "other", "fieldValue": 1}]}
    records.save(sandbox.store, "highlevel", "opportunities", opp)
    assert hl.delete(f"{path}/{made['id']}").status_code == 200
    assert sandbox.store.get("highlevel", "opportunities", opp["id"])["customFields"] == [
        {"id": "other", "fieldValue": 1}]


@pytest.mark.parametrize(("body", "message"), [
    ({"dataType": "TEXT"}, "name should not be empty"),
    ({"name": "X"}, "dataType should not be empty"),
    ({"name": "X", "dataType": "SINGLE_OPTIONS", "options": ["a"]},
     "property options should not exist"),
    ({"name": "X", "dataType": "TEXT", "model": "company"}, "model must be one of"),
])
def test_create_refuses_what_the_dto_does_not_allow(hl: httpx.Client, body: dict,
                                                    message: str) -> None:
    r = hl.post(f"/locations/{LOCATION}/customFields", json=body)
    assert r.status_code == 422
    assert_openapi_conforms(r.json(), SPEC / "contacts.json", UNPROCESSABLE)
    assert any(m.startswith(message) for m in r.json()["message"]), r.json()


def test_a_second_field_with_the_same_key_is_refused(hl: httpx.Client) -> None:
    path = f"/locations/{LOCATION}/customFields"
    assert hl.post(path, json={"name": "Start date", "dataType": "DATE"}).status_code == 201
    twin = hl.post(path, json={"name": " start  DATE ", "dataType": "TEXT"})
    assert twin.status_code == 400 and "contact.start_date" in twin.json()["message"]
    # the same name in the other model is another key
    assert hl.post(path, json={"name": "Start date", "dataType": "DATE",
                               "model": "opportunity"}).status_code == 201
    assert hl.post("/locations/otherLocation0000001/customFields",
                   json={"name": "Y", "dataType": "TEXT"}).status_code == 403
