"""HighLevel location-level lists: tags, custom fields and workflows.

GET  /locations/{locationId}/tags            {tags: [...]}
POST /locations/{locationId}/tags            {tag}           create a tag by name
GET|PUT|DELETE /locations/{locationId}/tags/{tagId}   {tag} | {tag} | {succeded}: a rename or
                                             a delete reaches every contact carrying the tag
GET  /locations/{locationId}/customFields    {customFields}  ?model=contact|opportunity|all
POST /locations/{locationId}/customFields    201 {customField}   CreateCustomFieldsDTO: no
                                             picklist options (the spec has none)
DELETE /locations/{locationId}/customFields/{id}  {succeded}  the values go with the field
GET  /workflows/?locationId=                 {workflows}     read-only, as on the real API
GET|POST /locations/{locationId}/customValues   {customValues} | 201 {customValue}
                                             customValuesDTO: name and value required; the
                                             key comes from the name, a second value with that
                                             key is a 400
GET|PUT|DELETE /locations/{locationId}/customValues/{id}   {customValue} | {customValue} |
                                             {succeded}

These entities are small (tens to hundreds per location), so they are listed whole.
"""

from __future__ import annotations

import json
import re
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
    now_iso,
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


def location_doc(store: Store, entity: str, location_id: str, doc_id: str,
                 missing: str) -> dict[str, Any]:
    """One record of the location; another location's (or none) is HighLevel's 400."""
    check_location(location_id)
    doc = store.get(SOURCE, entity, doc_id)
    if doc is None or doc.get("locationId") != location_id:
        raise HighLevelError(400, missing)
    return doc


async def get_tag(store: Store, request: Request) -> Response:
    p = request.path_params
    return JSONResponse({"tag": location_doc(store, "tags", p["locationId"], p["tagId"],
                                             "Tag not found")})


def _retag(store: Store, location_id: str, old: str, new: str | None) -> None:
    """Rename (new) or remove (None) a tag on every contact carrying it; the contacts are not
    otherwise edited (their dateUpdated stays), as with a deleted custom field's values."""
    for row in store.select(SOURCE, "contacts", "instr(json_extract(doc, '$.tags'), ?) > 0",
                            (json.dumps(old, ensure_ascii=False),)):
        tags = row.doc.get("tags") or []
        if row.doc.get("locationId") != location_id or old not in tags:
            continue
        kept = [t for t in tags if t != old]
        if new is not None and new not in kept:
            kept.insert(tags.index(old), new)
        records.save(store, SOURCE, "contacts", {**row.doc, "tags": kept})


async def update_tag(store: Store, request: Request) -> Response:
    p = request.path_params
    doc = location_doc(store, "tags", p["locationId"], p["tagId"], "Tag not found")
    body = await json_body(request, ("name",))
    names = normalize_tags([body.get("name")], "name") if body.get("name") else []
    if not names:
        raise invalid("name should not be empty", "name must be a string")
    other = _tag_id(store, p["locationId"], names[0])
    if other is not None and other != doc["id"]:
        raise HighLevelError(400, f"A tag named {names[0]!r} already exists in this location")
    with store.transaction():
        _retag(store, p["locationId"], doc["name"], names[0])
        doc = {**doc, "name": names[0]}
        records.save(store, SOURCE, "tags", doc)
    return JSONResponse({"tag": doc})


async def delete_tag(store: Store, request: Request) -> Response:
    p = request.path_params
    doc = location_doc(store, "tags", p["locationId"], p["tagId"], "Tag not found")
    with store.transaction():
        _retag(store, p["locationId"], doc["name"], None)
        store.delete(SOURCE, "tags", doc["id"], at=now_iso(store))
    return JSONResponse({"succeded": True})


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


# CreateCustomFieldsDTO (specs/highlevel/locations.json); unknown properties are refused
CREATE_FIELD = ("name", "dataType", "placeholder", "acceptedFormat", "isMultipleFile",
                "maxNumberOfFiles", "textBoxListOptions", "position", "model")
FIELD_MODELS = ("contact", "opportunity")


def field_key(model: str, name: str) -> str:
    """HighLevel derives a field's key from its name: `contact.candidate_status`."""
    return f"{model}." + "_".join(re.findall(r"[a-z0-9]+", name.lower()))


async def create_custom_field(store: Store, request: Request) -> Response:
    location_id = request.path_params["locationId"]
    check_location(location_id)
    body = await json_body(request, CREATE_FIELD)
    errors = [f"{k} should not be empty" for k in ("name", "dataType")
              if not isinstance(body.get(k), str) or not body[k].strip()]
    model = body.get("model", "contact")
    if model not in FIELD_MODELS:
        errors.append("model must be one of the following values: contact, opportunity")
    if not isinstance(body.get("position", 0), int | float):
        errors.append("position must be a number conforming to the specified constraints")
    if errors:
        raise invalid(*errors)
    name = body["name"].strip()
    key = field_key(model, name)
    if any(f.get("fieldKey") == key for f in location_docs(store, "custom_fields", location_id)):
        raise HighLevelError(400, f"A custom field with the key {key} already exists")
    field_id = records.next_highlevel_id(store, "custom_fields")
    while store.exists(SOURCE, "custom_fields", field_id):   # ids of the generated world
        field_id = records.next_highlevel_id(store, "custom_fields")
    doc = {"id": field_id, "name": name, "fieldKey": key,
           "placeholder": body.get("placeholder") or "", "dataType": body["dataType"].strip(),
           "position": body.get("position", 0), "picklistOptions": [],
           "picklistImageOptions": [], "isAllowedCustomOption": False,
           "isMultiFileAllowed": bool(body.get("isMultipleFile")),
           "maxFileLimit": body.get("maxNumberOfFiles") or 0, "locationId": location_id,
           "model": model}
    if body.get("textBoxListOptions"):
        doc["textBoxListOptions"] = body["textBoxListOptions"]
    records.save(store, SOURCE, "custom_fields", doc)
    return JSONResponse({"customField": doc}, status_code=201)


async def delete_custom_field(store: Store, request: Request) -> Response:
    """The field and every value of it go (contacts' or opportunities' by its model); the
    records holding a value are not otherwise edited."""
    location_id, field_id = request.path_params["locationId"], request.path_params["id"]
    check_location(location_id)
    doc = store.get(SOURCE, "custom_fields", field_id)
    if doc is None or doc.get("locationId") != location_id:
        raise HighLevelError(400, "Custom field not found")
    holders = "contacts" if doc.get("model", "contact") == "contact" else "opportunities"
    with store.transaction():
        for row in store.select(SOURCE, holders, "instr(json_extract(doc, '$.customFields'), ?)"
                                " > 0", (json.dumps(field_id),)):
            kept = [v for v in row.doc.get("customFields") or [] if v.get("id") != field_id]
            if len(kept) != len(row.doc.get("customFields") or []):
                records.save(store, SOURCE, holders, {**row.doc, "customFields": kept})
        store.delete(SOURCE, "custom_fields", field_id, at=now_iso(store))
    return JSONResponse({"succeded": True})


# -- custom values: named merge values (`{{ custom_values.company_name }}`) of the location ------
VALUES, NO_VALUE = "custom_values", "Custom value not found"


def value_key(name: str) -> str:
    """HighLevel derives a custom value's merge key from its name."""
    return "{{ custom_values." + "_".join(re.findall(r"[a-z0-9]+", name.lower())) + " }}"


async def _value_body(request: Request) -> tuple[str, str]:
    body = await json_body(request, ("name", "value"))
    errors = []
    for k in ("name", "value"):
        if not isinstance(body.get(k), str):
            errors += [f"{k} must be a string"]
        elif k == "name" and not body[k].strip():
            errors += [f"{k} should not be empty"]
    if errors:
        raise invalid(*errors)
    return body["name"].strip(), body["value"]


def _refuse_twin(store: Store, location_id: str, key: str, own_id: str | None) -> None:
    if any(v.get("fieldKey") == key and v["id"] != own_id
           for v in location_docs(store, VALUES, location_id)):
        raise HighLevelError(400, f"A custom value with the key {key} already exists")


async def list_values(store: Store, request: Request) -> Response:
    location_id = request.path_params["locationId"]
    check_location(location_id)
    query_params(request, ())
    return JSONResponse({"customValues": location_docs(store, VALUES, location_id)})


async def create_value(store: Store, request: Request) -> Response:
    location_id = request.path_params["locationId"]
    check_location(location_id)
    name, value = await _value_body(request)
    key = value_key(name)
    _refuse_twin(store, location_id, key, None)
    value_id = records.next_highlevel_id(store, VALUES)
    while store.exists(SOURCE, VALUES, value_id):   # ids of the generated world
        value_id = records.next_highlevel_id(store, VALUES)
    doc: dict[str, Any] = {"id": value_id, "name": name, "fieldKey": key, "value": value,
                           "locationId": location_id}
    records.save(store, SOURCE, VALUES, doc)
    return JSONResponse({"customValue": doc}, status_code=201)


async def get_value(store: Store, request: Request) -> Response:
    p = request.path_params
    return JSONResponse({"customValue": location_doc(store, VALUES, p["locationId"], p["id"],
                                                     NO_VALUE)})


async def update_value(store: Store, request: Request) -> Response:
    p = request.path_params
    doc = location_doc(store, VALUES, p["locationId"], p["id"], NO_VALUE)
    name, value = await _value_body(request)
    key = value_key(name)
    _refuse_twin(store, p["locationId"], key, doc["id"])
    doc = {**doc, "name": name, "fieldKey": key, "value": value}
    records.save(store, SOURCE, VALUES, doc)
    return JSONResponse({"customValue": doc})


async def delete_value(store: Store, request: Request) -> Response:
    p = request.path_params
    doc = location_doc(store, VALUES, p["locationId"], p["id"], NO_VALUE)
    store.delete(SOURCE, VALUES, doc["id"], at=now_iso(store))
    return JSONResponse({"succeded": True})


async def list_workflows(store: Store, request: Request) -> Response:
    location_id = query_params(request, ("locationId",)).get("locationId")
    check_location(location_id)
    return JSONResponse({"workflows": location_docs(store, "workflows", location_id or "")})


def location_routes(store: Store) -> list[Route]:
    return routes(store, [
        ("/locations/{locationId}/tags", list_tags, ["GET"]),
        ("/locations/{locationId}/tags", create_tag, ["POST"]),
        ("/locations/{locationId}/tags/{tagId}", get_tag, ["GET"]),
        ("/locations/{locationId}/tags/{tagId}", update_tag, ["PUT"]),
        ("/locations/{locationId}/tags/{tagId}", delete_tag, ["DELETE"]),
        ("/locations/{locationId}/customFields", list_custom_fields, ["GET"]),
        ("/locations/{locationId}/customFields", create_custom_field, ["POST"]),
        ("/locations/{locationId}/customFields/{id}", delete_custom_field, ["DELETE"]),
        ("/locations/{locationId}/customValues", list_values, ["GET"]),
        ("/locations/{locationId}/customValues", create_value, ["POST"]),
        ("/locations/{locationId}/customValues/{id}", get_value, ["GET"]),
        ("/locations/{locationId}/customValues/{id}", update_value, ["PUT"]),
        ("/locations/{locationId}/customValues/{id}", delete_value, ["DELETE"]),
        ("/workflows/", list_workflows, ["GET"]),
        ("/workflows", list_workflows, ["GET"]),
    ])
