"""HighLevel location-level lists: tags, custom fields and workflows.

GET  /locations/{locationId}/tags            {tags: [...]}
POST /locations/{locationId}/tags            {tag}           create a tag by name
GET  /locations/{locationId}/customFields    {customFields}  ?model=contact|opportunity|all
GET  /workflows/?locationId=                 {workflows}     read-only, as on the real API

These entities are small (tens to hundreds per location), so they are listed whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import records
from sandbox.highlevel.common import (
    SOURCE,
    HighLevelError,
    check_location,
    invalid,
    json_body,
    query_params,
    routes,
)
from sandbox.store import Store


def normalize_tags(value: Any, name: str = "tags") -> list[str]:
    """HighLevel keeps tags as trimmed lower-case names, each once, in the order given."""
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid(f"{name} must be an array of strings")
    out: list[str] = []
    for tag in value:
        clean = tag.strip().lower()
        if clean and clean not in out:
            out.append(clean)
    return out


def ensure_tags(store: Store, location_id: str, names: Iterable[str]) -> None:
    """Tags put on a contact exist as location tags too: create the missing ones."""
    for name in names:
        if _tag_id(store, location_id, name) is None:
            doc = {"id": records.next_highlevel_id(store, "tags"), "name": name,
                   "locationId": location_id}
            records.save(store, SOURCE, "tags", doc)


def _tag_id(store: Store, location_id: str, name: str) -> str | None:
    row = store.conn.execute(
        "SELECT id FROM records WHERE source = 'highlevel' AND entity = 'tags' "
        "AND json_extract(doc, '$.locationId') = ? AND lower(json_extract(doc, '$.name')) = ? "
        "LIMIT 1", (location_id, name.lower())).fetchone()
    return row[0] if row else None


def location_docs(store: Store, entity: str, location_id: str,
                  order: str = "json_extract(doc, '$.name'), id") -> list[dict[str, Any]]:
    cur = store.conn.execute(
        "SELECT doc FROM records WHERE source = 'highlevel' AND entity = ? "
        f"AND json_extract(doc, '$.locationId') = ? ORDER BY {order}", (entity, location_id))
    return [json.loads(doc) for (doc,) in cur]


async def list_tags(store: Store, request: Request) -> Response:
    location_id = request.path_params["locationId"]
    check_location(location_id)
    query_params(request, ())
    return JSONResponse({"tags": location_docs(store, "tags", location_id)})


async def create_tag(store: Store, request: Request) -> Response:
    location_id = request.path_params["locationId"]
    check_location(location_id)
    body = await json_body(request, ("name",))
    names = normalize_tags([body.get("name")], "name") if body.get("name") else []
    if not names:
        raise invalid("name should not be empty", "name must be a string")
    if _tag_id(store, location_id, names[0]) is not None:
        raise HighLevelError(400, f"A tag named {names[0]!r} already exists in this location")
    ensure_tags(store, location_id, names)
    tag_id = _tag_id(store, location_id, names[0])
    return JSONResponse({"tag": store.get(SOURCE, "tags", tag_id or "")})


async def list_custom_fields(store: Store, request: Request) -> Response:
    location_id = request.path_params["locationId"]
    check_location(location_id)
    model = query_params(request, ("model",)).get("model") or "all"
    if model not in ("contact", "opportunity", "all"):
        raise invalid("model must be one of the following values: contact, opportunity, all")
    fields = location_docs(store, "custom_fields", location_id,
                           order="json_extract(doc, '$.position'), id")
    if model != "all":
        # a field without a model is a contact field, as on the real API
        fields = [f for f in fields if f.get("model", "contact") == model]
    return JSONResponse({"customFields": fields})


async def list_workflows(store: Store, request: Request) -> Response:
    location_id = query_params(request, ("locationId",)).get("locationId")
    check_location(location_id)
    return JSONResponse({"workflows": location_docs(store, "workflows", location_id or "")})


def location_routes(store: Store) -> list[Route]:
    return routes(store, [
        ("/locations/{locationId}/tags", list_tags, ["GET"]),
        ("/locations/{locationId}/tags", create_tag, ["POST"]),
        ("/locations/{locationId}/customFields", list_custom_fields, ["GET"]),
        ("/workflows/", list_workflows, ["GET"]),
        ("/workflows", list_workflows, ["GET"]),
    ])
