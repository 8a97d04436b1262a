"""The emulated Keap v2 notes, tasks, emails, opportunities and companies, used as a client
would: real HTTP to a sandbox server process, every reply checked against the spec's schemas
(closed: no invented fields)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx

from sandbox import records
from sandbox.world import keap_history
from tests.conftest import Sandbox
from tests.integration.test_sandbox_keap import (  # noqa: F401  (fixture)
    all_pages,
    conforms,
    error_of,
    keap,
    new_contact,
)

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _note(keap: httpx.Client, contact: str, **body: object) -> dict:  # noqa: F811
    r = keap.post(f"/contacts/{contact}/notes", json={"user_id": "7", "title": "Call", **body})
    assert r.status_code == 201, r.text
    conforms(r.json(), "Note")
    return r.json()


def test_notes_per_contact_and_for_all_with_time_filters(keap: httpx.Client) -> None:  # noqa: F811
    ann = new_contact(keap, given_name="Ann")["id"]
    bob = new_contact(keap, given_name="Bob",
                      email_addresses=[{"email": "bob@example.com", "field": "EMAIL1"}])["id"]
    mine = [_note(keap, ann, text=f"note {i}", type="Call") for i in range(5)]
    other = _note(keap, bob, text="Bob's note")
    listed, pages = all_pages(keap, f"/contacts/{ann}/notes", "notes", page_size=2)
    assert [n["id"] for n in listed] == [n["id"] for n in mine] and pages == 3
    r = keap.get(f"/contacts/{ann}/notes", params={"page_size": 2})
    conforms(r.json(), "ListNotesResponse")
    everything, _ = all_pages(keap, "/notes", "notes", order_by="update_time asc")
    assert [n["id"] for n in everything] == [n["id"] for n in [*mine, other]]
    # since_time / until_time read the update time; an edit moves a note into a later window
    edited = keap.patch(f"/contacts/{ann}/notes/{mine[0]['id']}",
                        params={"update_mask": "text"}, json={"user_id": "8", "text": "edited"})
    assert edited.status_code == 200, edited.text
    conforms(edited.json(), "UpdateNoteResponse")
    assert edited.json()["text"] == "edited" and edited.json()["update_time"] > other[
        "update_time"]
    since = other["update_time"]
    later, _ = all_pages(keap, "/notes", "notes", filter=f"since_time=={since}",
                         order_by="update_time")
    assert [n["id"] for n in later] == [other["id"], mine[0]["id"]]
    until, _ = all_pages(keap, "/notes", "notes", filter=f"until_time=={mine[1]['update_time']}")
    assert [n["id"] for n in until] == [mine[1]["id"]]   # mine[0] was edited since
    got = keap.get(f"/contacts/{ann}/notes/{mine[1]['id']}")
    conforms(got.json(), "GetNoteResponse")
    assert got.json() == mine[1]
    # another contact's note, a missing contact, bad bodies, bad filters
    error_of(keap.get(f"/contacts/{bob}/notes/{mine[1]['id']}"), 404)
    error_of(keap.get("/contacts/999999/notes"), 404)
    error_of(keap.post(f"/contacts/{ann}/notes", json={"title": "no user"}), 400)
    error_of(keap.post(f"/contacts/{ann}/notes", json={"user_id": "7"}), 400)
    error_of(keap.post(f"/contacts/{ann}/notes", json={"user_id": "7", "type": "Chat"}), 400)
    error_of(keap.get("/notes", params={"filter": "since_time==2026-01-01"}), 400)
    error_of(keap.get("/notes", params={"filter": "colour==red"}), 400)
    error_of(keap.get("/notes", params={"page_size": 1001}), 400)
    assert keap.get("/notes", params={"filter": f"id>{mine[3]['id']}"}).json()["notes"][0][
        "id"] == mine[4]["id"]
    assert keap.delete(f"/contacts/{ann}/notes/{mine[4]['id']}").status_code == 204
    error_of(keap.get(f"/contacts/{ann}/notes/{mine[4]['id']}"), 404)


def test_tasks_create_complete_filter_delete(keap: httpx.Client) -> None:  # noqa: F811
    ann = new_contact(keap)["id"]
    made = []
    for i in range(3):
        r = keap.post("/tasks", json={"assigned_to_user_id": "8", "contact_id": ann,
                                      "title": f"Follow up {i}", "priority": "ESSENTIAL",
                                      "due_time": "2026-02-01T10:00:00.000Z"})
        assert r.status_code == 201, r.text
        conforms(r.json(), "Task")
        made.append(r.json())
    done = keap.patch(f"/tasks/{made[0]['id']}", params={"update_mask": "completed"},
                      json={"completed": True})
    assert done.status_code == 200, done.text
    conforms(done.json(), "UpdateTaskResponse")
    assert done.json()["completed"] and done.json()["completion_time"]
    listed, pages = all_pages(keap, "/tasks", "tasks", filter=f"contact_id=={ann}", page_size=2)
    assert len(listed) == 3 and pages == 2
    conforms(keap.get("/tasks").json(), "ListTasksResponse")
    open_, _ = all_pages(keap, "/tasks", "tasks", filter="is_completed==false")
    assert {t["id"] for t in open_} == {made[1]["id"], made[2]["id"]}
    since, _ = all_pages(keap, "/tasks", "tasks", order_by="update_time desc",
                         filter=f"since_time=={made[2]['modification_time']}")
    assert [t["id"] for t in since] == [made[0]["id"], made[2]["id"]]
    conforms(keap.get(f"/tasks/{made[1]['id']}").json(), "Task")
    error_of(keap.post("/tasks", json={"title": "nobody's"}), 400)
    error_of(keap.post("/tasks", json={"assigned_to_user_id": "8", "priority": "URGENT"}), 400)
    error_of(keap.get("/tasks", params={"order_by": "title"}), 400)
    assert keap.delete(f"/tasks/{made[1]['id']}").status_code == 204
    error_of(keap.get(f"/tasks/{made[1]['id']}"), 404)


def test_a_task_and_a_note_are_written_back_whole(keap: httpx.Client) -> None:  # noqa: F811
    """What a restore writes: every CreateTaskRequest property (the reminder and the completion
    too) is kept as sent; a PATCH sets exactly the `update_mask` properties; a note moves to
    another contact and is pinned through its own PATCH; a reminder off the spec's list is a
    400 naming the property."""
    ann, bob = new_contact(keap)["id"], new_contact(keap)["id"]
    body = {"assigned_to_user_id": "9", "contact_id": ann, "title": "Send offer",
            "description": "Draft in Drive", "type": "CALL", "priority": "CRITICAL",
            "completed": True, "completion_time": "2025-12-01T10:00:00.000Z",
            "due_time": "2025-12-02T10:00:00.000Z", "remind_time_mins": 60, "accepted": True}
    r = keap.post("/tasks", json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    # the spec declares remind_time_mins an integer (int32) whose enum lists strings ('5',
    # '10', ...): no value satisfies both; the sandbox sends the integer the type names
    conforms({k: v for k, v in made.items() if k != "remind_time_mins"}, "Task")
    assert {k: made[k] for k in body} == body
    r = keap.patch(f"/tasks/{made['id']}", params={
        "update_mask": "completion_time,due_time,remind_time_mins,contact_id"}, json={
        "completion_time": "2025-12-03T10:00:00.000Z", "due_time": "2025-12-04T10:00:00.000Z",
        "remind_time_mins": 1440, "contact_id": bob, "title": "not in the mask"})
    assert r.status_code == 200, r.text
    conforms({k: v for k, v in r.json().items() if k != "remind_time_mins"},
             "UpdateTaskResponse")
    assert (r.json()["completion_time"], r.json()["due_time"], r.json()["remind_time_mins"],
            r.json()["contact_id"], r.json()["title"]) == (
        "2025-12-03T10:00:00.000Z", "2025-12-04T10:00:00.000Z", 1440, bob, "Send offer")
    for bad in (7, "60", True):
        error_of(keap.post("/tasks", json={**body, "remind_time_mins": bad}), 400)
    e = keap.patch(f"/tasks/{made['id']}", params={"update_mask": "remind_time_mins"},
                   json={"remind_time_mins": 45})
    assert e.status_code == 400 and "remind_time_mins" in e.text
    note = _note(keap, ann, text="Called", type="Call")
    moved = keap.patch(f"/contacts/{ann}/notes/{note['id']}",
                       params={"update_mask": "contact_id,is_pinned"},
                       json={"user_id": "7", "contact_id": bob, "is_pinned": True})
    assert moved.status_code == 200, moved.text
    conforms(moved.json(), "UpdateNoteResponse")
    assert moved.json()["contact_id"] == bob and moved.json()["pinned_at"]
    assert [n["id"] for n in keap.get(f"/contacts/{bob}/notes").json()["notes"]] == [note["id"]]
    assert keap.get(f"/contacts/{ann}/notes").json()["notes"] == []


def test_emails_list_without_content_and_read_one_with_it(keap: httpx.Client,  # noqa: F811
                                                           sandbox: Sandbox) -> None:
    ann = new_contact(keap)["id"]
    body = {"sent_to_address": "new@example.com", "contact_id": ann, "subject": "Hello",
            "plain_content": base64.b64encode(b"Hi Ann").decode(),
            "sent_time": "2026-01-05T10:00:00.000Z"}
    r = keap.post("/emails", json=body)
    assert r.status_code == 201, r.text
    conforms(r.json(), "EmailSentWithContent")
    later = keap.post("/emails", json={**body, "sent_time": "2026-01-06T10:00:00.000Z"}).json()
    page = keap.get("/emails", params={"filter": f"contact_id=={ann}"}).json()
    conforms(page, "ListEmailsSentResponse")
    assert [e["id"] for e in page["emails"]] == [r.json()["id"], later["id"]]
    assert all("plain_content" not in e for e in page["emails"])
    window, _ = all_pages(keap, "/emails", "emails", order_by="created_time desc",
                          filter="start_created_time==2026-01-06T00:00:00.000Z;"
                                 "end_created_time==2026-01-06T23:59:59.999Z")
    assert [e["id"] for e in window] == [later["id"]]
    got = keap.get(f"/emails/{later['id']}").json()
    conforms(got, "EmailSentWithContent")
    assert base64.b64decode(got["plain_content"]) == b"Hi Ann"
    error_of(keap.post("/emails", json={"subject": "nowhere"}), 400)
    error_of(keap.post("/emails", json={**body, "plain_content": "not base64!"}), 400)
    error_of(keap.get("/emails", params={"order_by": "sent_time"}), 400)
    # a broken record as a vendor may hold one: a body that is not UTF-8 and a subject with a
    # lone surrogate; the reply is still JSON (the surrogate escaped), the body's bytes intact
    broken = {**got, "subject": "caf\udc80", "plain_content": base64.b64encode(
        b"caf\x80 \xff").decode()}
    records.save(sandbox.store, "keap", "emails", broken)
    raw = keap.get(f"/emails/{later['id']}")
    assert b"caf\\udc80" in raw.content
    assert json.loads(raw.content)["subject"] == "caf\udc80"
    assert base64.b64decode(raw.json()["plain_content"]) == b"caf\x80 \xff"
    assert keap.delete(f"/emails/{later['id']}").status_code == 204
    error_of(keap.get(f"/emails/{later['id']}"), 404)


def test_opportunities_and_companies(keap: httpx.Client, sandbox: Sandbox) -> None:  # noqa: F811
    import random

    ann = new_contact(keap)
    rng = random.Random(1)
    opps = [keap_history.opportunity_doc(rng, 10 + i, ann, T0) for i in range(3)]
    for i, opp in enumerate(opps):
        opp["last_updated_time"] = f"2026-01-0{5 + i}T10:00:00.000Z"
    records.save_many(sandbox.store, "keap", "opportunities", opps)
    records.save_many(sandbox.store, "keap", "companies", keap_history.company_docs(1, T0))
    page = keap.get("/opportunities", params={"order_by": "update_time desc",
                                              "page_size": 2}).json()
    conforms(page, "ListOpportunitiesResponse")
    assert [o["id"] for o in page["opportunities"]] == ["12", "11"] and page["next_page_token"]
    assert "custom_fields" not in page["opportunities"][0]
    one = keap.get("/opportunities/10", params={"fields": "custom_fields"}).json()
    conforms(one, "RestV2Opportunity")
    assert one["custom_fields"] == []
    error_of(keap.get("/opportunities", params={"filter": "since_time==2026-01-01T00:00:00.000Z"}),
             400)
    error_of(keap.get("/opportunities", params={"filter": "contact_city==Chandler"}), 400)
    companies, pages = all_pages(keap, "/companies", "companies", page_size=3)
    assert len(companies) == len(keap_history.COMPANIES) and pages == 3
    conforms(keap.get("/companies").json(), "ListCompaniesResponse")
    assert "update_time" not in companies[0] and companies[0]["website"]
    full = keap.get("/companies", params={"fields": "update_time,address,notes",
                                          "filter": "name==acme*"}).json()["companies"]
    assert [c["company_name"] for c in full] == ["Acme Staffing"] and full[0]["update_time"]
    conforms(keap.get(f"/companies/{full[0]['id']}").json(), "Company")
    error_of(keap.get("/companies/99999"), 404)


def test_a_deleted_contact_takes_its_history_along(keap: httpx.Client) -> None:  # noqa: F811
    ann = new_contact(keap)["id"]
    note = _note(keap, ann, text="x")
    task = keap.post("/tasks", json={"assigned_to_user_id": "8", "contact_id": ann}).json()
    email = keap.post("/emails", json={"sent_to_address": "new@example.com",
                                       "contact_id": ann}).json()
    assert keap.delete(f"/contacts/{ann}").status_code == 204
    assert keap.get("/notes").json()["notes"] == []
    error_of(keap.get(f"/tasks/{task['id']}"), 404)
    error_of(keap.get(f"/emails/{email['id']}"), 404)
    assert note["id"] not in {n["id"] for n in keap.get("/notes").json()["notes"]}


def test_opportunity_stages_in_pipeline_order(keap: httpx.Client,  # noqa: F811
                                              sandbox: Sandbox) -> None:
    records.save_many(sandbox.store, "keap", "opportunity_stages",
                      keap_history.opportunity_stage_docs(T0))
    page = keap.get("/opportunities/stages", params={"order_by": "stage_order desc"}).json()
    conforms(page, "ListOpportunityStagesResponse")
    assert [s["name"] for s in page["stages"]] == [s[1] for s in reversed(keap_history.STAGES)]
    stages, pages = all_pages(keap, "/opportunities/stages", "stages", page_size=2)
    assert [s["id"] for s in stages] == ["1", "2", "3", "4", "5"] and pages == 3
    named = keap.get("/opportunities/stages",
                     params={"filter": "opportunity_stage_name==Inter*"}).json()["stages"]
    assert [s["name"] for s in named] == ["Interviewing"]
    later = keap.get("/opportunities/stages",
                     params={"filter": "opportunity_stage_id>3"}).json()["stages"]
    assert [s["id"] for s in later] == ["4", "5"]
    error_of(keap.get("/opportunities/stages", params={"filter": "probability==10"}), 400)
