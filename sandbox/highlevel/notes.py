"""HighLevel contact notes and tasks (contacts.json, `/contacts/{contactId}/notes|tasks`).

GET    /contacts/{contactId}/notes               {notes: [note]}        every note, newest first
POST   /contacts/{contactId}/notes               201 {note}             body required
GET    /contacts/{contactId}/notes/{id}          {note}
PUT    /contacts/{contactId}/notes/{id}          {note}
DELETE /contacts/{contactId}/notes/{id}          {succeded: true}   (sic)
GET    /contacts/{contactId}/tasks               {tasks: [task]}
POST   /contacts/{contactId}/tasks               201 {task}             title, dueDate, completed
GET    /contacts/{contactId}/tasks/{taskId}      {task}
PUT    /contacts/{contactId}/tasks/{taskId}      {task}
PUT    /contacts/{contactId}/tasks/{taskId}/completed   {task}          completed required
DELETE /contacts/{contactId}/tasks/{taskId}      {succeded: true}

The lists are not paged (the spec has no paging parameters for them): one call returns all of a
contact's notes or tasks. A note carries `dateAdded` only (an edit keeps it); a task carries no
time at all: HighLevel's schemas, so a backup cannot list "changed since" and reads them per
contact. A note or task of a contact that does not exist, or of another contact, is a 400 in
HighLevel's shape; a deleted contact's notes and tasks go with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import records
from sandbox.highlevel.common import SOURCE, HighLevelError, invalid, json_body, now_iso, routes
from sandbox.highlevel.contacts import get_contact
from sandbox.store import Store, parse_ts

NOTE_FIELDS = ("userId", "body", "title", "color", "pinned")
TASK_FIELDS = ("title", "body", "dueDate", "completed", "assignedTo")
MAX_BODY = 5_000_000   # characters; a longer note is refused rather than stored cut


def _children(store: Store, entity: str, contact_id: str) -> list[dict[str, Any]]:
    return [r.doc for r in store.select(SOURCE, entity, "parent = ?", (contact_id,),
                                        order="seq DESC")]


def _child(store: Store, entity: str, contact_id: str, child_id: str) -> dict[str, Any]:
    get_contact(store, contact_id)
    doc = store.get(SOURCE, entity, child_id)
    if doc is None or doc.get("contactId") != contact_id:
        raise HighLevelError(400, f"{entity[:-1].capitalize()} with id {child_id} not found")
    return doc


def _check(body: dict[str, Any], strings: tuple[str, ...], booleans: tuple[str, ...]) -> None:
    bad = [f"{k} must be a string" for k in strings
           if k in body and not isinstance(body[k], str)]
    bad += [f"{k} must be a boolean value" for k in booleans
            if k in body and not isinstance(body[k], bool)]
    if bad:
        raise invalid(*bad)


def _due(value: Any) -> str:
    try:
        return parse_ts(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (TypeError, ValueError):
        raise invalid("dueDate must be a valid ISO 8601 date string") from None


# -- bodies -----------------------------------------------------------------------------------

def _note_body(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    _check(body, ("userId", "body", "title", "color"), ("pinned",))
    if create and not (body.get("body") or "").strip():
        raise invalid("body should not be empty", "body must be a string")
    if len(body.get("body") or "") > MAX_BODY:
        raise invalid(f"body must be shorter than or equal to {MAX_BODY} characters")
    return body


def _task_body(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    _check(body, ("title", "body", "assignedTo", "dueDate"), ("completed",))
    if create:
        missing = [f"{k} should not be empty" for k in ("title", "dueDate", "completed")
                   if body.get(k) in (None, "")]
        if missing:
            raise invalid(*missing)
    if "dueDate" in body:
        body = {**body, "dueDate": _due(body["dueDate"])}
    return body


@dataclass(frozen=True)
class Kind:
    """One kind of a contact's child records: its entity, reply key, path parameter, the
    properties its body may carry and how they are checked."""

    entity: str
    key: str
    param: str
    fields: tuple[str, ...]
    check: Callable[..., dict[str, Any]]
    stamp: bool          # `dateAdded` set on create (notes; tasks have no time)


NOTES = Kind("notes", "note", "id", NOTE_FIELDS, _note_body, True)
TASKS = Kind("tasks", "task", "taskId", TASK_FIELDS, _task_body, False)


def _handlers(kind: Kind) -> dict[str, Any]:
    async def listing(store: Store, request: Request) -> Response:
        contact_id = request.path_params["contactId"]
        get_contact(store, contact_id)
        return JSONResponse({kind.entity: _children(store, kind.entity, contact_id)})

    async def create(store: Store, request: Request) -> Response:
        contact_id = request.path_params["contactId"]
        get_contact(store, contact_id)
        body = kind.check(await json_body(request, kind.fields), create=True)
        doc = {"id": records.next_highlevel_id(store, kind.entity), "contactId": contact_id}
        stamp = now_iso(store)   # every write moves the clock, as for contacts
        doc.update({"dateAdded": stamp} if kind.stamp else {})
        doc.update(body)
        records.save(store, SOURCE, kind.entity, doc)
        return JSONResponse({kind.key: doc}, status_code=201)

    def target(store: Store, request: Request) -> dict[str, Any]:
        p = request.path_params
        return _child(store, kind.entity, p["contactId"], p[kind.param])

    async def read(store: Store, request: Request) -> Response:
        return JSONResponse({kind.key: target(store, request)})

    async def update(store: Store, request: Request) -> Response:
        doc = target(store, request)
        doc.update(kind.check(await json_body(request, kind.fields), create=False))
        now_iso(store)
        records.save(store, SOURCE, kind.entity, doc)
        return JSONResponse({kind.key: doc})

    async def delete(store: Store, request: Request) -> Response:
        doc = target(store, request)
        store.delete(SOURCE, kind.entity, doc["id"], at=now_iso(store))
        return JSONResponse({"succeded": True})

    return {"list": listing, "create": create, "read": read, "update": update, "delete": delete}


async def complete_task(store: Store, request: Request) -> Response:
    p = request.path_params
    doc = _child(store, "tasks", p["contactId"], p["taskId"])
    body = await json_body(request, ("completed",))
    if not isinstance(body.get("completed"), bool):
        raise invalid("completed must be a boolean value")
    doc["completed"] = body["completed"]
    now_iso(store)
    records.save(store, SOURCE, "tasks", doc)
    return JSONResponse({"task": doc})


def note_routes(store: Store) -> list[Route]:
    table = []
    for kind in (NOTES, TASKS):
        h, many = _handlers(kind), f"/contacts/{{contactId}}/{kind.entity}"
        one = f"{many}/{{{kind.param}}}"
        if kind is TASKS:   # before `one`: "completed" is not a task id
            table.append((f"{one}/completed", complete_task, ["PUT"]))
        table += [(many, h["list"], ["GET"]), (many, h["create"], ["POST"]),
                  (one, h["read"], ["GET"]), (one, h["update"], ["PUT"]),
                  (one, h["delete"], ["DELETE"])]
    return routes(store, table)
