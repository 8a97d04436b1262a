"""Harvest v3 writes the reverse sync uses (contract: specs/ats/greenhouse-harvest-v3-writes.md).

    POST   /greenhouse/v3/candidate_tags              {"name"}: 201 a new tag, 200 the existing
                                                      one (name compared case-insensitively)
    POST   /greenhouse/v3/applied_candidate_tags      {"candidate_id", "candidate_tag_id"}: 201
                                                      the applied tag, 200 when already applied
    DELETE /greenhouse/v3/applied_candidate_tags/{id} 204; 404 when no such applied tag
    PATCH  /greenhouse/v3/candidates/{id}             {"custom_fields": [{"id"|"name_key",
                                                      "value"} | {..., "delete_value": true}],
                                                      and the profile's text fields}: 200 the
                                                      candidate as GET serves it

A write that changes a candidate moves its `updated_at` (tagging and untagging too: the
candidate's `tags` list changes), so an incremental backup by update time sees it; a write that
changes nothing moves nothing. The acting user is the OAuth token's `sub` (Harvest v3 has no
On-Behalf-Of header). Errors: 404 `{"message"}` for a missing record in the path, 422
`{"message", "errors": [{"field", "message"}]}` for a body the API refuses.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox import records
from sandbox.state import SandboxState
from sandbox.store import iso
from sandbox.world.ats_history import ID_BASE

SOURCE = "greenhouse"
# tags made through the API: ids above the world's fixed catalog block
NEW_TAG_ID_START = ID_BASE["candidate_tags"] + 10_000
TEXT_FIELDS = ("first_name", "last_name", "preferred_name", "company", "title")
YES = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class Invalid(Exception):
    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


class Writes:
    def __init__(self, state: SandboxState):
        self.state = state
        self.store = state.store

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v3/candidate_tags", self.create_tag, methods=["POST"]),
            Route("/v3/applied_candidate_tags", self.apply_tag, methods=["POST"]),
            Route("/v3/applied_candidate_tags/{id}", self.remove_tag, methods=["DELETE"]),
            Route("/v3/candidates/{id}", self.update_candidate, methods=["PATCH"]),
        ]

    # -- tags --------------------------------------------------------------------------------
    async def create_tag(self, request: Request) -> Response:
        try:
            body = await _body(request)
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise Invalid("name", "name is required (a non-empty string)")
            name = name.strip()
            with self.store.transaction():
                for doc in self.store.iter_docs(SOURCE, "candidate_tags"):
                    if doc["name"].lower() == name.lower():
                        return JSONResponse(doc, status_code=200)
                stamp = iso(self.store.stamp())
                doc = {"id": self.store.next_id(SOURCE, "candidate_tags",
                                                start=NEW_TAG_ID_START),
                       "created_at": stamp, "updated_at": stamp, "name": name}
                records.save(self.store, SOURCE, "candidate_tags", doc)
            return JSONResponse(doc, status_code=201)
        except Invalid as e:
            return _refused(e)

    async def apply_tag(self, request: Request) -> Response:
        try:
            body = await _body(request)
            cid = _int(body, "candidate_id")
            tid = _int(body, "candidate_tag_id")
            with self.store.transaction():
                cand = self.store.get(SOURCE, "candidates", cid)
                tag = self.store.get(SOURCE, "candidate_tags", tid)
                if cand is None:
                    raise Invalid("candidate_id", f"no candidate with id {cid}")
                if tag is None:
                    raise Invalid("candidate_tag_id", f"no candidate tag with id {tid}")
                for row in self.store.select(SOURCE, "applied_candidate_tags", "parent = ?",
                                             (str(cid),)):
                    if row.doc.get("candidate_tag_id") == tid:
                        return JSONResponse(row.doc, status_code=200)
                stamp = iso(self.store.stamp())
                doc = {"id": self.store.next_id(SOURCE, "applied_candidate_tags",
                                                start=ID_BASE["applied_candidate_tags"]),
                       "created_at": stamp, "updated_at": stamp, "candidate_tag_id": tid,
                       "candidate_id": cid}
                records.save(self.store, SOURCE, "applied_candidate_tags", doc)
                cand["tags"] = sorted({*cand.get("tags", []), tag["name"]})
                cand["updated_at"] = stamp
                records.save(self.store, SOURCE, "candidates", cand)
            return JSONResponse(doc, status_code=201)
        except Invalid as e:
            return _refused(e)

    async def remove_tag(self, request: Request) -> Response:
        id_ = request.path_params["id"]
        with self.store.transaction():
            applied = self.store.get(SOURCE, "applied_candidate_tags", id_) \
                if id_.isdigit() else None
            if applied is None:
                return JSONResponse({"message": f"Resource not found: no applied_candidate_tags "
                                                f"record with id {id_}"}, status_code=404)
            stamp = self.store.stamp()
            self.store.delete(SOURCE, "applied_candidate_tags", id_, at=stamp)
            cand = self.store.get(SOURCE, "candidates", applied["candidate_id"])
            tag = self.store.get(SOURCE, "candidate_tags", applied["candidate_tag_id"])
            if cand is not None and tag is not None and tag["name"] in cand.get("tags", []):
                cand["tags"] = [t for t in cand["tags"] if t != tag["name"]]
                cand["updated_at"] = iso(stamp)
                records.save(self.store, SOURCE, "candidates", cand)
        return Response(status_code=204)

    # -- candidates --------------------------------------------------------------------------
    async def update_candidate(self, request: Request) -> Response:
        id_ = request.path_params["id"]
        try:
            body = await _body(request)
            unknown = sorted(set(body) - {"custom_fields", *TEXT_FIELDS})
            if unknown:
                raise Invalid(unknown[0], f"unknown or read-only candidate attribute; "
                                          f"writable: custom_fields, {', '.join(TEXT_FIELDS)}")
            with self.store.transaction():
                cand = self.store.get(SOURCE, "candidates", id_) if id_.isdigit() else None
                if cand is None:
                    return JSONResponse({"message": f"Resource not found: no candidates record "
                                                    f"with id {id_}"}, status_code=404)
                before = json.dumps(cand, sort_keys=True)
                for key in TEXT_FIELDS:
                    if key in body:
                        if body[key] is not None and not isinstance(body[key], str):
                            raise Invalid(key, f"{key} must be a string or null")
                        cand[key] = body[key]
                if "custom_fields" in body:
                    cand["custom_fields"] = self._custom(cand.get("custom_fields") or {},
                                                         body["custom_fields"])
                if json.dumps(cand, sort_keys=True) != before:
                    cand["updated_at"] = iso(self.store.stamp())
                    records.save(self.store, SOURCE, "candidates", cand)
            return JSONResponse(cand, status_code=200)
        except Invalid as e:
            return _refused(e)

    def _custom(self, have: dict[str, Any], items: Any) -> dict[str, Any]:
        """Candidate custom field values after a PATCH's `custom_fields` items (each names its
        field by `id` or `name_key`; `delete_value: true` clears it)."""
        if not isinstance(items, list):
            raise Invalid("custom_fields", "custom_fields must be an array of objects")
        defs = [d for d in self.store.iter_docs(SOURCE, "custom_fields")
                if d.get("field_type") == "candidate"]
        out = dict(have)
        for i, item in enumerate(items):
            where = f"custom_fields[{i}]"
            if not isinstance(item, dict):
                raise Invalid(where, "each custom field item must be an object")
            found = [d for d in defs if ("id" in item and d["id"] == item["id"])
                     or ("name_key" in item and d["name_key"] == item["name_key"])]
            if not found:
                raise Invalid(where, "no candidate custom field with that id or name_key")
            field = found[0]
            key = field["name_key"]
            if item.get("delete_value") in (True, "true"):
                out.pop(key, None)
                continue
            if "value" not in item:
                raise Invalid(where, "value is required (or delete_value: true)")
            out[key] = {"name": field["name"], "type": field["value_type"],
                        "value": _typed(where, field["value_type"], item["value"])}
        return out


def _typed(where: str, value_type: str, value: Any) -> Any:
    if value is None:
        return None
    if value_type == "yes_no":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in YES:
            return YES[value.strip().lower()]
        raise Invalid(where, "a yes_no field takes true or false")
    if value_type in ("number", "currency") and not isinstance(value, int | float):
        raise Invalid(where, f"a {value_type} field takes a number")
    if value_type in ("short_text", "long_text", "url", "date") and not isinstance(value, str):
        raise Invalid(where, f"a {value_type} field takes a string")
    return value


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Invalid("body", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Invalid("body", "the request body must be a JSON object")
    return body


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(key, f"{key} is required (an integer)")
    return value


def _refused(e: Invalid) -> Response:
    return JSONResponse({"message": f"Invalid {e.field}: {e.message}",
                         "errors": [{"field": e.field, "message": e.message}]},
                        status_code=e.status)
