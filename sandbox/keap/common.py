"""What every part of the emulated Keap v2 API shares: its error body, id allocation, JSON replies.

Keap v2 errors follow the spec's `Error` schema: `{"code": 400, "message": ..., "status": "Bad
Request", "details": [{"domain": ..., "resource": ...}]}`; the sandbox names the offending field or
parameter in `details[].resource` so a client can tell which input was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.store import Store

SOURCE = "keap"
PREFIX = "/crm/rest/v2"  # real base https://api.keap.com/crm/rest/v2; sandbox /keap/crm/rest/v2

Handler = Callable[..., Awaitable[Response]]


class KeapError(Exception):
    """A request Keap refuses; becomes an `Error` body with the given HTTP status."""

    def __init__(self, status: int, message: str, resource: str | None = None,
                 domain: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.resource = resource
        self.domain = domain


def bad_request(message: str, resource: str | None = None, domain: str = "request") -> KeapError:
    return KeapError(400, message, resource, domain)


def not_found(what: str, id_: str) -> KeapError:
    return KeapError(404, f"{what} with id {id_} not found", id_, what.lower())


def error_body(status: int, message: str, details: list[dict[str, str]] | None = None
               ) -> dict[str, Any]:
    return {"code": status, "message": message, "status": _phrase(status),
            "details": details or []}


def error_response(status: int, message: str, details: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, details), status_code=status,
                        headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def handler(fn: Handler) -> Handler:
    """Turn a KeapError raised anywhere below a route into Keap's error reply."""

    @wraps(fn)
    async def wrapped(*args: Any) -> Response:  # (request) or (self, request)
        try:
            return await fn(*args)
        except KeapError as e:
            details = ([{"domain": e.domain or "request", "resource": e.resource}]
                       if e.resource else [])
            return error_response(e.status, e.message, details)

    return wrapped


class KeapJSON(JSONResponse):
    """Keap's JSON replies. Text holding a lone surrogate (a vendor's broken record: JSON can
    carry "\\udc80", UTF-8 cannot) goes out escaped, as a JSON encoder that escapes non-ASCII
    writes it; everything else is UTF-8 as before."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode()


def json_reply(body: Any, status: int = 200) -> Response:
    return KeapJSON(body, status_code=status)


async def json_object(request: Request) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    raw = await request.body()
    if not raw.strip():
        raise bad_request("request body is required", "body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as e:
        raise bad_request(f"request body is not valid JSON: {e}", "body") from e
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", "body")
    return body


def new_id(store: Store, entity: str) -> str:
    """A fresh integer id for a Keap entity, never one a live or deleted record holds.

    The counter is the fast path; worlds written without it (fixtures, generators that assign
    their own ids) are caught by the existence check, which moves the counter past them.
    """
    with store.transaction():
        n = store.next_id(SOURCE, entity)
        if not _taken(store, entity, n):
            return str(n)
        top = store.conn.execute(
            "SELECT max(m) FROM (SELECT max(seq) AS m FROM records WHERE source = ? "
            "AND entity = ? UNION ALL SELECT max(CAST(id AS INTEGER)) FROM tombstones "
            "WHERE source = ? AND entity = ?)", (SOURCE, entity, SOURCE, entity)).fetchone()[0]
        n = max(int(top or 0), n) + 1
        store.set_meta(f"next_id:{SOURCE}:{entity}", str(n + 1))
        return str(n)


def _taken(store: Store, entity: str, n: int) -> bool:
    return store.exists(SOURCE, entity, n) or store.conn.execute(
        "SELECT 1 FROM tombstones WHERE source = ? AND entity = ? AND id = ?",
        (SOURCE, entity, str(n))).fetchone() is not None


def query_list(request: Request, name: str) -> list[str]:
    """A list-valued query parameter sent either comma-joined or repeated."""
    out: list[str] = []
    for value in request.query_params.getlist(name):
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out
