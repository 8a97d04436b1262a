"""The emulated HighLevel contact notes and tasks (issue 17: the sandbox first, with contract
tests), over a real socket: every reply checked against the published OpenAPI schemas in
specs/highlevel/contacts.json; create, read, update, delete; a contact's list holds exactly its
own notes and tasks; bad bodies are 422s with HighLevel's messages; another contact's note or a
missing contact is a 400; a deleted contact takes its notes and tasks with it."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Sandbox
from tests.integration.contract import assert_openapi_conforms
from tests.integration.test_sandbox_highlevel import (
    BAD_REQUEST,
    CONTACTS_SPEC,
    HEADERS,
    LOCATION,
    UNPROCESSABLE,
    reply_schema,
)

NOTES, NOTE = "/contacts/{contactId}/notes", "/contacts/{contactId}/notes/{id}"
TASKS, TASK = "/contacts/{contactId}/tasks", "/contacts/{contactId}/tasks/{taskId}"


@pytest.fixture
def hl(sandbox: Sandbox):
    with httpx.Client(base_url=sandbox.url("/highlevel"), headers=HEADERS, timeout=30) as client:
        yield client


def new_contact(hl: httpx.Client, email: str) -> str:
    r = hl.post("/contacts/", json={"locationId": LOCATION, "firstName": "Ada", "email": email})
    assert r.status_code == 201, r.text
    return r.json()["contact"]["id"]


def conforms(r: httpx.Response, path: str, method: str, status: int) -> dict:
    assert r.status_code == status, r.text
    assert_openapi_conforms(r.json(), CONTACTS_SPEC, reply_schema(path, method, status))
    return r.json()


def test_notes_are_created_read_listed_updated_and_deleted(hl: httpx.Client) -> None:
    a, b = new_contact(hl, "notes-a@example.com"), new_contact(hl, "notes-b@example.com")
    first = conforms(hl.post(f"/contacts/{a}/notes", json={"body": "Called, left a message",
                                                            "title": "Call"}), NOTES, "post", 201)
    note = first["note"]
    assert (note["contactId"], note["body"], note["title"]) == (a, "Called, left a message",
                                                                  "Call")
    assert note["dateAdded"].endswith("Z") and len(note["id"]) == 20
    second = hl.post(f"/contacts/{a}/notes", json={"body": "Interview booked", "pinned": True})
    hl.post(f"/contacts/{b}/notes", json={"body": "someone else's"})
    listed = conforms(hl.get(f"/contacts/{a}/notes"), NOTES, "get", 200)["notes"]
    assert [n["id"] for n in listed] == [second.json()["note"]["id"], note["id"]]  # newest first
    read = conforms(hl.get(f"/contacts/{a}/notes/{note['id']}"), NOTE, "get", 200)
    assert read["note"] == note
    edited = conforms(hl.put(f"/contacts/{a}/notes/{note['id']}", json={"body": "Called back"}),
                      NOTE, "put", 200)["note"]
    assert edited["body"] == "Called back" and edited["dateAdded"] == note["dateAdded"]
    # another contact's note is not reachable through this contact
    other = hl.get(f"/contacts/{b}/notes/{note['id']}")
    assert other.status_code == 400
    assert_openapi_conforms(other.json(), CONTACTS_SPEC, BAD_REQUEST, "400 body")
    gone = conforms(hl.delete(f"/contacts/{a}/notes/{note['id']}"), NOTE, "delete", 200)
    assert gone == {"succeded": True}    # sic: HighLevel's spelling
    assert [n["id"] for n in hl.get(f"/contacts/{a}/notes").json()["notes"]] == \
        [second.json()["note"]["id"]]


def test_tasks_are_created_completed_updated_and_deleted(hl: httpx.Client) -> None:
    a = new_contact(hl, "tasks-a@example.com")
    made = conforms(hl.post(f"/contacts/{a}/tasks", json={
        "title": "Send offer", "body": "Draft in Drive", "dueDate": "2026-12-10T09:00:00Z",
        "completed": False}), TASKS, "post", 201)["task"]
    assert (made["contactId"], made["title"], made["completed"]) == (a, "Send offer", False)
    assert made["dueDate"] == "2026-12-10T09:00:00.000Z"
    listed = conforms(hl.get(f"/contacts/{a}/tasks"), TASKS, "get", 200)["tasks"]
    assert [t["id"] for t in listed] == [made["id"]]
    done = conforms(hl.put(f"/contacts/{a}/tasks/{made['id']}/completed",
                           json={"completed": True}),
                    "/contacts/{contactId}/tasks/{taskId}/completed", "put", 200)["task"]
    assert done["completed"] is True
    moved = conforms(hl.put(f"/contacts/{a}/tasks/{made['id']}",
                            json={"dueDate": "2026-12-11T09:00:00Z"}), TASK, "put", 200)["task"]
    assert moved["dueDate"] == "2026-12-11T09:00:00.000Z" and moved["completed"] is True
    assert conforms(hl.get(f"/contacts/{a}/tasks/{made['id']}"), TASK, "get", 200)["task"] == \
        moved
    assert conforms(hl.delete(f"/contacts/{a}/tasks/{made['id']}"), TASK, "delete", 200) == \
        {"succeded": True}
    assert hl.get(f"/contacts/{a}/tasks").json() == {"tasks": []}


def test_bad_bodies_are_422s_and_a_missing_contact_a_400(hl: httpx.Client) -> None:
    a = new_contact(hl, "bad-bodies@example.com")
    for path, body, message in (
            (f"/contacts/{a}/notes", {"title": "no body"}, "body should not be empty"),
            (f"/contacts/{a}/notes", {"body": "x", "colour": "red"},
             "property colour should not exist"),
            (f"/contacts/{a}/notes", {"body": "x", "pinned": "yes"},
             "pinned must be a boolean value"),
            (f"/contacts/{a}/tasks", {"title": "t", "completed": False},
             "dueDate should not be empty"),
            (f"/contacts/{a}/tasks", {"title": "t", "completed": False, "dueDate": "soon"},
             "dueDate must be a valid ISO 8601 date string")):
        r = hl.post(path, json=body)
        assert r.status_code == 422, (path, body, r.text)
        assert_openapi_conforms(r.json(), CONTACTS_SPEC, UNPROCESSABLE, "422 body")
        assert message in r.json()["message"]
    missing = hl.get("/contacts/NoSuchContact000000/notes")
    assert missing.status_code == 400
    assert_openapi_conforms(missing.json(), CONTACTS_SPEC, BAD_REQUEST, "400 body")


def test_a_deleted_contact_takes_its_notes_and_tasks(sandbox: Sandbox, hl: httpx.Client) -> None:
    a = new_contact(hl, "leaving@example.com")
    note = hl.post(f"/contacts/{a}/notes", json={"body": "bye"}).json()["note"]
    task = hl.post(f"/contacts/{a}/tasks", json={"title": "t", "completed": False,
                                                  "dueDate": "2026-12-10T09:00:00Z"}).json()
    assert hl.delete(f"/contacts/{a}").status_code == 200
    tombstones = {(e, t["id"]) for e in ("notes", "tasks")
                  for t in sandbox.admin("GET", f"/tombstones/highlevel/{e}")}
    assert {("notes", note["id"]), ("tasks", task["task"]["id"])} <= tombstones
