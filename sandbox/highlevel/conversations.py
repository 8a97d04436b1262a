"""HighLevel conversations and messages (conversations.json).

POST   /conversations/                             201 {success, conversation}  one per contact
GET    /conversations/search                       {conversations, total}   newest message first
GET    /conversations/{conversationId}             {conversation}  (GetConversationByIdResponse)
DELETE /conversations/{conversationId}             {success: true}          messages go with it
GET    /conversations/{conversationId}/messages    {lastMessageId, nextPage, messages}
GET    /conversations/messages/export              {messages, nextCursor, total}
GET    /conversations/messages/{id}                one message (GetMessageResponseDto)
GET    /conversations/messages/email/{id}          one email with its headers
POST   /conversations/messages/inbound             add an inbound message to a conversation

Paging as the spec says: the search continues with `startAfterDate` = the `sort` value of the
last conversation served (epoch ms of its `dateUpdated`, which moves with each new message);
a conversation's messages with `lastMessageId` (newest first, 20 a page by default); the
location-wide export with an opaque `nextCursor` (10-500 a page), sorted by `createdAt` or
`updatedAt`, `startDate` / `endDate` (ISO-8601 or epoch ms, both inclusive) filtering the sorted
field. Without `channel` the export serves every message but emails (the spec's words);
`channel=Email` serves the emails.

Conversations hold `dateAdded`, `dateUpdated` and `lastMessageDate` as ISO text in the world and
are served as epoch ms (as HighLevel does), with the contact's current name, email and phone.
An email's headers (subject, from, to) are part of the stored message and served only by the
email endpoint. Text is served as stored: a body whose bytes were not UTF-8 when they arrived
(kept as lone surrogates) goes out as bytes that are not valid UTF-8 either, as a carrier's broken
encoding would reach a client (see `_raw_json`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox import records
from sandbox.highlevel.common import (
    SOURCE,
    HighLevelError,
    check_location,
    int_param,
    invalid,
    json_body,
    now_iso,
    query_params,
    routes,
)
from sandbox.store import Store, iso, parse_ts

CONVERSATIONS_VERSION = "2021-04-15"   # the Version header conversations.json requires
SEARCH_PARAMS = ("locationId", "contactId", "assignedTo", "followers", "mentions", "query",
                 "sort", "startAfterDate", "id", "limit", "lastMessageType", "lastMessageAction",
                 "lastMessageDirection", "status", "sortBy", "sortScoreProfile", "scoreProfile",
                 "scoreProfileMin", "scoreProfileMax", "startDate", "endDate")
EXPORT_PARAMS = ("locationId", "limit", "cursor", "sortBy", "sortOrder", "conversationId",
                 "contactId", "channel", "startDate", "endDate")
CHANNELS = {"Call": "TYPE_CALL", "SMS": "TYPE_SMS", "Email": "TYPE_EMAIL",
            "WhatsApp": "TYPE_WHATSAPP", "Instagram": "TYPE_INSTAGRAM",
            "Facebook": "TYPE_FACEBOOK"}
EMAIL_HEADERS = ("subject", "from", "to", "cc", "bcc", "threadId", "provider")
INBOUND_TYPES = {"SMS": ("TYPE_SMS", 2), "Email": ("TYPE_EMAIL", 3)}
CONVERSATION_TYPES = {"TYPE_PHONE": 1, "TYPE_EMAIL": 2}


# -- rendering ----------------------------------------------------------------------------------
def _raw_json(body: Any, status: int = 200) -> Response:
    """JSON as HighLevel sends it; text holding lone surrogates (what arrived as bytes that
    were not UTF-8) goes out encoded as it is: bytes that are not valid UTF-8."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(data.encode("utf-8", "surrogatepass"), status_code=status,
                    media_type="application/json")


def _ms(text: str | None) -> int | None:
    return int(parse_ts(text).timestamp() * 1000) if text else None


def served_conversation(store: Store, doc: dict[str, Any]) -> dict[str, Any]:
    contact = store.get(SOURCE, "contacts", doc["contactId"]) or {}
    name = " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p)
    out = {**doc, "fullName": name, "contactName": name or contact.get("companyName") or "",
           "email": contact.get("email") or "", "phone": contact.get("phone") or ""}
    for k in ("dateAdded", "dateUpdated", "lastMessageDate"):
        out[k] = _ms(doc.get(k))
    out["sort"] = [out["dateUpdated"]]   # what `startAfterDate` continues from
    return out


def served_message(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in EMAIL_HEADERS}


# -- lookups ------------------------------------------------------------------------------------
def _conversation(store: Store, conversation_id: str) -> dict[str, Any]:
    doc = store.get(SOURCE, "conversations", conversation_id)
    if doc is None:
        raise HighLevelError(400, f"Conversation with id {conversation_id} not found")
    return doc


def _message(store: Store, message_id: str) -> dict[str, Any]:
    doc = store.get(SOURCE, "messages", message_id)
    if doc is None:
        raise HighLevelError(400, f"Message with id {message_id} not found")
    return doc


def _date_param(value: str | None, name: str) -> str | None:
    """ISO-8601 text or epoch milliseconds -> canonical ISO text."""
    if value in (None, ""):
        return None
    try:
        if value.strip().lstrip("-").isdigit():
            return iso(datetime.fromtimestamp(int(value) / 1000, UTC))
        return iso(parse_ts(value))
    except (ValueError, OverflowError):
        raise invalid(f"{name} must be a valid ISO 8601 date string or epoch milliseconds"
                      ) from None


def _choice(value: str | None, name: str, allowed: tuple[str, ...], default: str) -> str:
    if value in (None, ""):
        return default
    if value not in allowed:
        raise invalid(f"{name} must be one of the following values: {', '.join(allowed)}")
    return value


# -- conversations ------------------------------------------------------------------------------
async def search(store: Store, request: Request) -> Response:
    q = query_params(request, SEARCH_PARAMS)
    check_location(q.get("locationId"))
    limit = int_param(q.get("limit"), "limit", default=20, maximum=100)
    sort = _choice(q.get("sort"), "sort", ("asc", "desc"), "desc")
    _choice(q.get("sortBy"), "sortBy", ("last_manual_message_date", "last_message_date",
                                         "score_profile", "overdue_at", "due_at"),
            "last_message_date")
    where, params = ["1"], []
    for param, path in (("contactId", "$.contactId"), ("id", "$.id"),
                        ("lastMessageType", "$.lastMessageType"),
                        ("lastMessageDirection", "$.lastMessageDirection")):
        if q.get(param):
            where.append(f"json_extract(doc, '{path}') = ?")
            params.append(q[param])
    if q.get("assignedTo"):
        users = q["assignedTo"].split(",")
        where.append(f"json_extract(doc, '$.assignedTo') IN ({','.join('?' * len(users))})")
        params += users
    status = _choice(q.get("status"), "status", ("all", "read", "unread", "starred", "recents"),
                     "all")
    if status in ("read", "unread"):
        where.append("json_extract(doc, '$.unreadCount') " + ("= 0" if status == "read" else "> 0"))
    for param, op in (("startDate", ">="), ("endDate", "<=")):
        if q.get(param):
            where.append(f"json_extract(doc, '$.dateAdded') {op} ?")
            params.append(_date_param(q[param], param))
    total = store.count(SOURCE, "conversations", " AND ".join(where), params)
    # the sandbox moves `dateUpdated` only with a new message (1 ms after it): sorting by it
    # is sorting by the last message, and the `updated_at` index serves the sort
    if q.get("startAfterDate") not in (None, ""):
        after = _date_param(str(q["startAfterDate"]), "startAfterDate")
        where.append("updated_at < ?" if sort == "desc" else "updated_at > ?")
        params.append(after)
    direction = "DESC" if sort == "desc" else "ASC"
    rows = store.select(SOURCE, "conversations", " AND ".join(where), params,
                        order=f"updated_at {direction}, id {direction}", limit=limit)
    return _raw_json({"conversations": [served_conversation(store, r.doc) for r in rows],
                      "total": total})


async def create_conversation(store: Store, request: Request) -> Response:
    body = await json_body(request, ("locationId", "contactId"))
    check_location(body.get("locationId"))
    if not body.get("contactId"):
        raise invalid("contactId should not be empty", "contactId must be a string")
    contact = store.get(SOURCE, "contacts", body["contactId"])
    if contact is None:
        raise HighLevelError(400, f"Contact with id {body['contactId']} not found")
    existing = store.select(SOURCE, "conversations", "parent = ?", (contact["id"],), limit=1)
    if existing:
        raise HighLevelError(400, "Conversation already exists",
                             meta={"conversationId": existing[0].id})
    stamp = now_iso(store)
    doc = {"id": records.next_highlevel_id(store, "conversations"), "contactId": contact["id"],
           "locationId": body["locationId"], "type": "TYPE_PHONE", "unreadCount": 0,
           "dateAdded": stamp, "dateUpdated": stamp, "lastMessageDate": stamp,
           "lastMessageBody": "", "lastMessageType": "TYPE_SMS",
           "lastMessageDirection": "outbound"}
    records.save(store, SOURCE, "conversations", doc)
    keep = ("id", "dateUpdated", "dateAdded", "contactId", "locationId", "lastMessageDate")
    return _raw_json({"success": True, "conversation": {**{k: doc[k] for k in keep},
                                                        "deleted": False}}, 201)


async def get_conversation(store: Store, request: Request) -> Response:
    doc = _conversation(store, request.path_params["conversationId"])
    out = {"id": doc["id"], "contactId": doc["contactId"], "locationId": doc["locationId"],
           "deleted": False, "inbox": True, "type": CONVERSATION_TYPES.get(doc.get("type"), 1),
           "unreadCount": doc.get("unreadCount", 0), "starred": False}
    if doc.get("assignedTo"):
        out["assignedTo"] = doc["assignedTo"]
    return _raw_json(out)


async def delete_conversation_route(store: Store, request: Request) -> Response:
    doc = _conversation(store, request.path_params["conversationId"])
    delete_conversation(store, doc["id"], now_iso(store))
    return _raw_json({"success": True})


def delete_conversation(store: Store, conversation_id: str, at: datetime | str) -> None:
    """A conversation and its messages."""
    with store.transaction():
        for row in store.select(SOURCE, "messages", "parent = ?", (conversation_id,)):
            store.delete(SOURCE, "messages", row.id, at=at)
        store.delete(SOURCE, "conversations", conversation_id, at=at)


def delete_for_contact(store: Store, contact_id: str, at: datetime | str) -> None:
    """A deleted contact's conversations and messages go with it."""
    for row in store.select(SOURCE, "conversations", "parent = ?", (contact_id,)):
        delete_conversation(store, row.id, at)


# -- messages -----------------------------------------------------------------------------------
async def conversation_messages(store: Store, request: Request) -> Response:
    q = query_params(request, ("lastMessageId", "limit", "type"))
    conversation = _conversation(store, request.path_params["conversationId"])
    limit = int_param(q.get("limit"), "limit", default=20, maximum=100)
    where, params = ["parent = ?"], [conversation["id"]]
    if q.get("type"):
        types = q["type"].split(",")
        where.append(f"json_extract(doc, '$.messageType') IN ({','.join('?' * len(types))})")
        params += types
    if q.get("lastMessageId"):
        last = _message(store, q["lastMessageId"])
        where.append("(json_extract(doc, '$.dateAdded') < ? OR "
                     "(json_extract(doc, '$.dateAdded') = ? AND id < ?))")
        params += [last["dateAdded"], last["dateAdded"], last["id"]]
    rows = store.select(SOURCE, "messages", " AND ".join(where), params,
                        order="json_extract(doc, '$.dateAdded') DESC, id DESC", limit=limit + 1)
    page = [served_message(r.doc) for r in rows[:limit]]
    return _raw_json({"lastMessageId": page[-1]["id"] if page else "",
                      "nextPage": len(rows) > limit, "messages": page})


async def get_message(store: Store, request: Request) -> Response:
    return _raw_json(served_message(_message(store, request.path_params["id"])))


async def get_email(store: Store, request: Request) -> Response:
    doc = _message(store, request.path_params["id"])
    if doc.get("messageType") != "TYPE_EMAIL":
        raise HighLevelError(400, f"Message with id {doc['id']} is not an email")
    return _raw_json(served_email(doc))


def served_email(doc: dict[str, Any]) -> dict[str, Any]:
    """An email message as GET /conversations/messages/email/{id} serves it (its headers)."""
    keep = ("id", "locationId", "contactId", "conversationId", "dateAdded", "body",
            "direction", "status", "contentType", "attachments", "source", *EMAIL_HEADERS)
    email = {k: doc[k] for k in keep if k in doc}
    email.setdefault("threadId", doc["id"])
    email.setdefault("body", "")
    email.setdefault("from", "")
    email.setdefault("to", [])
    return email


def _cursor(value: str, key: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode()))
        assert data["k"] == key
        return str(data["v"]), str(data["id"])
    except (ValueError, KeyError, TypeError, AssertionError, binascii.Error):
        raise invalid("cursor is not a cursor this query returned") from None


async def export(store: Store, request: Request) -> Response:
    q = query_params(request, EXPORT_PARAMS)
    check_location(q.get("locationId"))
    limit = int_param(q.get("limit"), "limit", default=100, minimum=10, maximum=500)
    sort_by = _choice(q.get("sortBy"), "sortBy", ("createdAt", "updatedAt"), "createdAt")
    order = _choice(q.get("sortOrder"), "sortOrder", ("asc", "desc"), "desc")
    expr = "updated_at" if sort_by == "updatedAt" else "json_extract(doc, '$.dateAdded')"
    where, params = ["1"], []
    channel = q.get("channel")
    if channel:
        if channel not in CHANNELS:
            raise invalid("channel must be one of the following values: " + ", ".join(CHANNELS))
        where.append("json_extract(doc, '$.messageType') = ?")
        params.append(CHANNELS[channel])
    else:
        where.append("json_extract(doc, '$.messageType') != 'TYPE_EMAIL'")
    for param in ("conversationId", "contactId"):
        if q.get(param):
            where.append(f"json_extract(doc, '$.{param}') = ?")
            params.append(q[param])
    for param, op in (("startDate", ">="), ("endDate", "<=")):
        if value := _date_param(q.get(param), param):
            where.append(f"{expr} {op} ?")
            params.append(value)
    total = store.count(SOURCE, "messages", " AND ".join(where), params)
    key = json.dumps([sort_by, order, sorted((k, v) for k, v in q.items() if k != "cursor")])
    if q.get("cursor"):
        value, last_id = _cursor(q["cursor"], key)
        op = ">" if order == "asc" else "<"
        where.append(f"({expr} {op} ? OR ({expr} = ? AND id {op} ?))")
        params += [value, value, last_id]
    direction = order.upper()
    rows = store.select(SOURCE, "messages", " AND ".join(where), params,
                        order=f"{expr} {direction}, id {direction}", limit=limit + 1)
    page = rows[:limit]
    cursor = None
    if len(rows) > limit:
        last = page[-1]
        value = last.updated_at if sort_by == "updatedAt" else last.doc["dateAdded"]
        cursor = base64.urlsafe_b64encode(json.dumps(
            {"k": key, "v": value, "id": last.id}).encode()).decode()
    # the spec's description says null on the last page, its schema a string: left out there
    return _raw_json({"messages": [served_message(r.doc) for r in page], "total": total,
                      **({"nextCursor": cursor} if cursor else {})})


async def inbound(store: Store, request: Request) -> Response:
    """An inbound message a conversation provider hands over (SMS or email here)."""
    body = await json_body(request, (
        "type", "attachments", "message", "conversationId", "contactId",
        "conversationProviderId", "html", "subject", "emailFrom", "emailTo", "emailCc",
        "emailBcc", "emailMessageId", "altId", "direction", "date", "call"))
    missing = [f"{k} should not be empty" for k in ("type", "conversationId", "contactId",
                                                    "conversationProviderId")
               if not body.get(k)]
    if missing:
        raise invalid(*missing)
    if body["type"] not in INBOUND_TYPES:
        raise invalid(f"type must be one of the following values: {', '.join(INBOUND_TYPES)}")
    conversation = _conversation(store, body["conversationId"])
    if conversation["contactId"] != body["contactId"]:
        raise HighLevelError(400, "The conversation does not belong to this contact")
    message_type, type_no = INBOUND_TYPES[body["type"]]
    stamp = now_iso(store)
    at = iso(parse_ts(body["date"])) if body.get("date") else stamp
    doc: dict[str, Any] = {
        "id": records.next_highlevel_id(store, "messages"), "type": type_no,
        "messageType": message_type, "locationId": conversation["locationId"],
        "contactId": conversation["contactId"], "conversationId": conversation["id"],
        "dateAdded": at, "dateUpdated": stamp, "direction": "inbound", "status": "delivered",
        "contentType": "text/html" if body.get("html") else "text/plain",
        "body": body.get("html") or body.get("message") or "",
        "attachments": list(body.get("attachments") or []), "source": "api",
        "conversationProviderId": body["conversationProviderId"]}
    if message_type == "TYPE_EMAIL":
        doc.update({"subject": body.get("subject") or "", "from": body.get("emailFrom") or "",
                    "to": [body["emailTo"]] if body.get("emailTo") else [],
                    "threadId": doc["id"]})
    conversation.update({"lastMessageDate": at, "dateUpdated": stamp,
                         "lastMessageBody": doc["body"], "lastMessageType": message_type,
                         "lastMessageDirection": "inbound",
                         "unreadCount": conversation.get("unreadCount", 0) + 1})
    with store.transaction():
        # a lone surrogate (broken bytes) is kept: the store escapes such a doc (store.doc_text)
        records.save(store, SOURCE, "messages", doc)
        records.save(store, SOURCE, "conversations", conversation)
    return _raw_json({"success": True, "conversationId": conversation["id"],
                      "messageId": doc["id"], "message": "Message received",
                      "contactId": conversation["contactId"], "dateAdded": at})


def conversation_routes(store: Store) -> list:
    return routes(store, [
        ("/conversations/", create_conversation, ["POST"]),
        ("/conversations/search", search, ["GET"]),
        ("/conversations/messages/export", export, ["GET"]),
        ("/conversations/messages/inbound", inbound, ["POST"]),
        ("/conversations/messages/email/{id}", get_email, ["GET"]),
        ("/conversations/messages/{id}", get_message, ["GET"]),
        ("/conversations/{conversationId}/messages", conversation_messages, ["GET"]),
        ("/conversations/{conversationId}", get_conversation, ["GET"]),
        ("/conversations/{conversationId}", delete_conversation_route, ["DELETE"]),
    ])
