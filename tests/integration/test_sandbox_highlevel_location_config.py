"""The emulated HighLevel location tags and custom values, over a real socket, against
specs/highlevel/locations.json: a tag is read, renamed and deleted by id (a rename or a delete
reaches the contacts carrying it, as in HighLevel); custom values are created (customValuesDTO:
name and value required, the merge key derived from the name, a second value with that key a
400), read, edited and deleted; an id the location does not have is a 400. A generated world
has a location tag for every tag its contacts carry, and a few custom values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox import process
from sandbox.world import generate as world
from tests.integration import test_sandbox_highlevel as base
from tests.integration.contract import assert_openapi_conforms
from tests.integration.test_sandbox_highlevel import (
    HEADERS,
    LOCATION,
    SPEC,
    UNPROCESSABLE,
)
from tests.integration.test_sandbox_highlevel_custom_fields import conforms

TAGS, TAG = "/locations/{locationId}/tags", "/locations/{locationId}/tags/{tagId}"
VALUES, VALUE = "/locations/{locationId}/customValues", "/locations/{locationId}/customValues/{id}"
hl = base.hl   # the fixture: a client of the emptied sandbox's HighLevel


def contact_with(hl: httpx.Client, *tags: str) -> str:
    r = hl.post("/contacts/", json={"locationId": LOCATION, "email": "tags@example.com",
                                    "tags": list(tags)})
    assert r.status_code == 201, r.text
    return r.json()["contact"]["id"]


def tags_of(hl: httpx.Client, contact_id: str) -> list[str]:
    return hl.get(f"/contacts/{contact_id}").json()["contact"]["tags"]


def test_a_tag_is_read_renamed_and_deleted_by_id(hl: httpx.Client) -> None:
    path = f"/locations/{LOCATION}/tags"
    made = conforms(hl.post(path, json={"name": "Silver Medalist"}), TAGS, "post", 200)["tag"]
    assert (made["name"], made["locationId"]) == ("silver medalist", LOCATION)
    assert conforms(hl.get(f"{path}/{made['id']}"), TAG, "get", 200) == {"tag": made}
    cid = contact_with(hl, "python", "silver medalist")

    renamed = conforms(hl.put(f"{path}/{made['id']}", json={"name": "Runner Up"}), TAG, "put",
                       200)["tag"]
    assert renamed == {**made, "name": "runner up"}
    assert tags_of(hl, cid) == ["python", "runner up"]   # contacts carry the new name
    assert hl.put(f"{path}/{made['id']}", json={"name": "python"}).status_code == 400  # taken

    assert conforms(hl.delete(f"{path}/{made['id']}"), TAG, "delete", 200) == {"succeded": True}
    assert "runner up" not in [t["name"] for t in hl.get(path).json()["tags"]]
    assert tags_of(hl, cid) == ["python"]                # and lose a deleted one
    for call in (hl.get, hl.delete):
        gone = call(f"{path}/{made['id']}")
        assert gone.status_code == 400 and gone.json()["message"] == "Tag not found"


@pytest.mark.parametrize(("body", "message"), [
    ({}, "name should not be empty"),
    ({"name": "x", "color": "red"}, "property color should not exist"),
])
def test_a_tag_edit_refuses_what_the_dto_does_not_allow(hl: httpx.Client, body: dict,
                                                       message: str) -> None:
    made = hl.post(f"/locations/{LOCATION}/tags", json={"name": "keep"}).json()["tag"]
    r = hl.put(f"/locations/{LOCATION}/tags/{made['id']}", json=body)
    assert r.status_code == 422
    assert_unprocessable(r, message)


def assert_unprocessable(r: httpx.Response, message: str) -> None:
    assert_openapi_conforms(r.json(), SPEC / "contacts.json", UNPROCESSABLE)
    assert any(m.startswith(message) for m in r.json()["message"]), r.json()


def test_a_custom_value_is_created_read_edited_and_deleted(hl: httpx.Client) -> None:
    path = f"/locations/{LOCATION}/customValues"
    made = conforms(hl.post(path, json={"name": "Hiring Manager", "value": "Dana"}), VALUES,
                    "post", 201)["customValue"]
    assert (made["name"], made["fieldKey"], made["value"], made["locationId"]) == (
        "Hiring Manager", "{{ custom_values.hiring_manager }}", "Dana", LOCATION)
    listed = conforms(hl.get(path), VALUES, "get", 200)["customValues"]
    assert made in listed
    assert conforms(hl.get(f"{path}/{made['id']}"), VALUE, "get", 200) == {"customValue": made}

    edited = conforms(hl.put(f"{path}/{made['id']}", json={"name": "Hiring Manager",
                                                           "value": "Sam"}), VALUE, "put", 200)
    assert edited["customValue"] == {**made, "value": "Sam"}
    twin = hl.post(path, json={"name": " hiring  MANAGER", "value": "x"})
    assert twin.status_code == 400 and "custom_values.hiring_manager" in twin.json()["message"]

    assert conforms(hl.delete(f"{path}/{made['id']}"), VALUE, "delete", 200) == {
        "succeded": True}
    assert made["id"] not in [v["id"] for v in hl.get(path).json()["customValues"]]
    for call in (hl.get, hl.delete):
        gone = call(f"{path}/{made['id']}")
        assert gone.status_code == 400 and gone.json()["message"] == "Custom value not found"
    assert hl.get("/locations/otherLocation0000001/customValues").status_code == 403


@pytest.mark.parametrize(("body", "message"), [
    ({"value": "x"}, "name must be a string"),
    ({"name": "X"}, "value must be a string"),
    ({"name": " ", "value": "x"}, "name should not be empty"),
    ({"name": "X", "value": "x", "key": "y"}, "property key should not exist"),
])
def test_a_custom_value_write_refuses_what_the_dto_does_not_allow(hl: httpx.Client, body: dict,
                                                                  message: str) -> None:
    r = hl.post(f"/locations/{LOCATION}/customValues", json=body)
    assert r.status_code == 422
    assert_unprocessable(r, message)


@pytest.fixture(scope="module")
def world_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = Path(tmp_path_factory.mktemp("hl-config")) / "sandbox"
    world.generate(folder, candidates=60, seed=5)
    proc = process.start(folder)
    try:
        yield proc.base_url + "/highlevel"
    finally:
        proc.stop()


def test_a_generated_world_has_the_tags_its_contacts_carry_and_custom_values(
        world_server: str) -> None:
    with httpx.Client(base_url=world_server, headers=HEADERS, timeout=30) as hl:
        tags = conforms(hl.get(f"/locations/{LOCATION}/tags"), TAGS, "get", 200)["tags"]
        carried = {t for c in hl.get("/contacts/", params={"locationId": LOCATION,
                                                           "limit": 100}).json()["contacts"]
                   for t in c.get("tags") or []}
        values = conforms(hl.get(f"/locations/{LOCATION}/customValues"), VALUES, "get",
                          200)["customValues"]
    assert carried and carried <= {t["name"] for t in tags}
    assert len(values) >= 3
    assert all(v["fieldKey"].startswith("{{ custom_values.") and v["value"] for v in values)
