"""The emulated HighLevel conversations and messages (issue 17: the sandbox first, with contract
tests), over a real socket: every reply checked against specs/highlevel/conversations.json; the
search pages newest message first with `startAfterDate`; a conversation's messages page with
`lastMessageId`; the location-wide export pages with `nextCursor`, filters its sort field with
`startDate` / `endDate` and serves emails only on `channel=Email`; bad parameters are 422s; a
deleted conversation or contact takes its messages; a body that arrived as broken bytes goes out
as bytes that are not UTF-8, and the product's HTTP layer still reads the page."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from orchestration.http import loads
from sandbox import records
from sandbox.world import messages as world_messages
from tests.conftest import Sandbox
from tests.integration.contract import assert_openapi_conforms
from tests.integration.test_sandbox_highlevel import BAD_REQUEST, HEADERS, LOCATION, reply_schema

SPEC = Path(__file__).resolve().parents[2] / "specs" / "highlevel" / "conversations.json"
CONTACTS_SPEC = SPEC.parent / "contacts.json"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SMS, EMAIL, CALL = world_messages.KINDS
RNG = random.Random(7)


def _version(request: httpx.Request) -> None:
    """Each API's documented Version header: conversations.json 2021-04-15, contacts.json
    2021-07-28 (the sandbox refuses the other one)."""
    if request.url.path.startswith("/highlevel/conversations"):
        request.headers["Version"] = "2021-04-15"


@pytest.fixture
def hl(sandbox: Sandbox):
    with httpx.Client(base_url=sandbox.url("/highlevel"), headers=HEADERS, timeout=30,
                      event_hooks={"request": [_version]}) as client:
        yield client


def conforms(r: httpx.Response, path: str, method: str, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    assert_openapi_conforms(r.json(), SPEC, reply_schema(path, method, status))
    return r.json()


def unprocessable(r: httpx.Response, words: str) -> None:
    assert r.status_code == 422, r.text
    assert any(words in m for m in r.json()["message"]), r.json()


def contact(hl: httpx.Client, n: int) -> dict:
    r = hl.post("/contacts/", json={"locationId": LOCATION, "firstName": f"Pat{n}",
                                    "email": f"conv-{n}@example.com", "phone": f"+1555010{n:04d}"})
    assert r.status_code == 201, r.text
    return r.json()["contact"]


def conversation(hl: httpx.Client, contact_id: str) -> dict:
    made = conforms(hl.post("/conversations/", json={"locationId": LOCATION,
                                                     "contactId": contact_id}),
                    "/conversations/", "post", 201)
    return made["conversation"]


def seed(sandbox: Sandbox, conv: dict, person: dict, at: datetime, *, direction="outbound",
         kind=SMS, updated: datetime | None = None) -> dict:
    """A message written into the world, as daily life writes them (times under control)."""
    doc = world_messages.message_doc(RNG, records.next_highlevel_id(sandbox.store, "messages"),
                                     conv, person, at, direction=direction, kind=kind)
    if updated is not None:
        doc["dateUpdated"] = updated.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    records.save(sandbox.store, "highlevel", "messages", doc)
    stored = sandbox.store.get("highlevel", "conversations", conv["id"])
    world_messages.follow(stored, doc)
    records.save(sandbox.store, "highlevel", "conversations", stored)
    return doc


def test_search_pages_newest_message_first(sandbox: Sandbox, hl: httpx.Client) -> None:
    people = [contact(hl, n) for n in range(7)]
    convs = [conversation(hl, p["id"]) for p in people]
    for i, (c, p) in enumerate(zip(convs, people, strict=True)):
        seed(sandbox, c, p, T0 + timedelta(hours=i), direction="inbound")
    seen, after = [], None
    while True:
        params = {"locationId": LOCATION, "limit": 3,
                  **({"startAfterDate": after} if after else {})}
        page = conforms(hl.get("/conversations/search", params=params),
                        "/conversations/search", "get")
        assert page["total"] == 7
        if not page["conversations"]:
            break
        seen += page["conversations"]
        after = page["conversations"][-1]["sort"][0]
    assert [c["id"] for c in seen] == [c["id"] for c in reversed(convs)]
    newest = seen[0]
    assert (newest["contactId"], newest["email"], newest["unreadCount"]) == \
        (people[-1]["id"], "conv-6@example.com", 1)
    assert newest["lastMessageDate"] == int((T0 + timedelta(hours=6)).timestamp() * 1000)
    one = conforms(hl.get("/conversations/search", params={"locationId": LOCATION,
                                                            "contactId": people[2]["id"]}),
                   "/conversations/search", "get")
    assert [c["id"] for c in one["conversations"]] == [convs[2]["id"]] and one["total"] == 1
    by_id = conforms(hl.get(f"/conversations/{convs[2]['id']}"),
                     "/conversations/{conversationId}", "get")
    assert (by_id["id"], by_id["type"], by_id["deleted"]) == (convs[2]["id"], 1, False)
    unprocessable(hl.get("/conversations/search", params={"locationId": LOCATION,
                                                          "limit": 101}), "limit")
    unprocessable(hl.get("/conversations/search", params={"locationId": LOCATION,
                                                          "sort": "up"}), "sort")
    unprocessable(hl.get("/conversations/search"), "locationId")
    assert hl.get("/conversations/search", params={"locationId": "other"}).status_code == 403
    again = hl.post("/conversations/", json={"locationId": LOCATION,
                                             "contactId": people[0]["id"]})
    assert again.status_code == 400 and again.json()["meta"]["conversationId"] == convs[0]["id"]


def test_a_conversations_messages_page_newest_first(sandbox: Sandbox, hl: httpx.Client) -> None:
    p = contact(hl, 1)
    c = conversation(hl, p["id"])
    made = [seed(sandbox, c, p, T0 + timedelta(minutes=i), kind=(SMS, EMAIL, CALL)[i % 3])
            for i in range(25)]
    path = "/conversations/{conversationId}/messages"
    first = conforms(hl.get(f"/conversations/{c['id']}/messages"), path, "get")
    assert len(first["messages"]) == 20 and first["nextPage"] is True
    rest = conforms(hl.get(f"/conversations/{c['id']}/messages",
                           params={"lastMessageId": first["lastMessageId"]}), path, "get")
    assert rest["nextPage"] is False
    assert [m["id"] for m in first["messages"] + rest["messages"]] == \
        [m["id"] for m in reversed(made)]
    calls = conforms(hl.get(f"/conversations/{c['id']}/messages", params={"type": "TYPE_CALL"}),
                     path, "get")["messages"]
    assert {m["messageType"] for m in calls} == {"TYPE_CALL"} and len(calls) == 8
    assert calls[0]["meta"]["callStatus"] and "body" not in calls[0]
    one = conforms(hl.get(f"/conversations/messages/{made[0]['id']}"),
                   "/conversations/messages/{id}", "get")
    assert one == {k: v for k, v in made[0].items()}
    email = conforms(hl.get(f"/conversations/messages/email/{made[1]['id']}"),
                     "/conversations/messages/email/{id}", "get")
    assert (email["body"], email["threadId"]) == (made[1]["body"], made[1]["id"])
    assert hl.get(f"/conversations/messages/email/{made[0]['id']}").status_code == 400
    missing = hl.get("/conversations/messages/nope")
    assert missing.status_code == 400
    assert_openapi_conforms(missing.json(), CONTACTS_SPEC, BAD_REQUEST, "400 body")


def test_export_windows_pages_and_channels(sandbox: Sandbox, hl: httpx.Client) -> None:
    p = contact(hl, 2)
    c = conversation(hl, p["id"])
    made = [seed(sandbox, c, p, T0 + timedelta(hours=i), kind=(SMS, EMAIL, CALL)[i % 3],
                 updated=T0 + timedelta(days=1, hours=i)) for i in range(30)]
    path = "/conversations/messages/export"
    window = {"locationId": LOCATION, "sortBy": "updatedAt", "sortOrder": "asc", "limit": 10,
              "startDate": (T0 + timedelta(days=1, hours=3)).isoformat(),
              "endDate": str(int((T0 + timedelta(days=1, hours=20)).timestamp() * 1000))}
    got, cursor = [], None
    while True:
        page = conforms(hl.get(path, params={**window, **({"cursor": cursor} if cursor else {})}),
                        path, "get")
        got += page["messages"]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    expected = [m["id"] for m in made[3:21] if m["messageType"] != "TYPE_EMAIL"]
    assert [m["id"] for m in got] == expected and page["total"] == len(expected)
    emails = conforms(hl.get(path, params={**window, "channel": "Email", "limit": 500}),
                      path, "get")
    assert [m["id"] for m in emails["messages"]] == \
        [m["id"] for m in made[3:21] if m["messageType"] == "TYPE_EMAIL"]
    assert "subject" not in emails["messages"][0]
    newest = conforms(hl.get(path, params={"locationId": LOCATION, "limit": 10}), path, "get")
    assert newest["messages"][0]["id"] == made[-1]["id"]     # createdAt, newest first
    assert made[-1]["messageType"] == "TYPE_CALL" and newest["total"] == 20   # emails left out
    unprocessable(hl.get(path, params={"locationId": LOCATION, "limit": 5}), "limit")
    unprocessable(hl.get(path, params={"locationId": LOCATION, "channel": "Fax"}), "channel")
    unprocessable(hl.get(path, params={**window, "cursor": "bm9wZQ=="}), "cursor")


def test_deletions_take_the_messages_along(sandbox: Sandbox, hl: httpx.Client) -> None:
    a, b = contact(hl, 3), contact(hl, 4)
    ca, cb = conversation(hl, a["id"]), conversation(hl, b["id"])
    for i in range(3):
        seed(sandbox, ca, a, T0 + timedelta(minutes=i))
        seed(sandbox, cb, b, T0 + timedelta(minutes=i))
    gone = conforms(hl.delete(f"/conversations/{ca['id']}"), "/conversations/{conversationId}",
                    "delete")
    assert gone == {"success": True}
    assert hl.get(f"/conversations/{ca['id']}").status_code == 400
    assert hl.delete(f"/contacts/{b['id']}").status_code == 200
    left = hl.get("/conversations/messages/export", params={"locationId": LOCATION}).json()
    assert left["messages"] == [] and left["total"] == 0
    assert sandbox.store.count("highlevel", "conversations") == 0


def test_a_body_with_broken_bytes_goes_out_as_is(sandbox: Sandbox, hl: httpx.Client) -> None:
    p = contact(hl, 5)
    c = conversation(hl, p["id"])
    broken = 'Caf\udce9 at 9? \udcff'   # Latin-1 bytes a carrier passed on as they were
    r = hl.post("/conversations/messages/inbound", content=json.dumps({
        "type": "SMS", "conversationId": c["id"], "contactId": p["id"],
        "conversationProviderId": "prov-1", "message": broken}),
        headers={"Content-Type": "application/json"})
    made = conforms(r, "/conversations/messages/inbound", "post")
    raw = hl.get(f"/conversations/messages/{made['messageId']}").content
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert loads(raw)["body"].startswith("Caf")      # the product's HTTP layer reads it
    unprocessable(hl.post("/conversations/messages/inbound", json={
        "type": "SMS", "conversationId": c["id"], "contactId": p["id"]}),
        "conversationProviderId")
    wrong = hl.get("/conversations/search", params={"locationId": LOCATION},
                   headers={"Version": "2021-07-28"})
    assert wrong.status_code == 200     # the hook sets the right one; without it:
    raw = httpx.get(hl.base_url.join("conversations/search"), params={"locationId": LOCATION},
                    headers=HEADERS)
    assert (raw.status_code, raw.json()["message"]) == (401, "version header is invalid")
