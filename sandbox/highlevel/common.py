"""What the HighLevel emulator's endpoint modules share: errors in HighLevel's body shapes, request
parsing with its strict DTO validation, location checks, timestamps and next-page URLs.

HighLevel is a NestJS service: bodies and query strings are validated against DTOs that forbid
unknown properties, and validation failures come back as 422 with every violated constraint in
a `message` list. Other errors are `{"statusCode", "message"}` (common-schemas.json).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import credentials
from sandbox.store import Store, iso, parse_ts

SOURCE = "highlevel"
LOCATION_ID = credentials.HIGHLEVEL_LOCATION_ID
NO_ACCESS = "The token does not have access to this location."


class HighLevelError(Exception):
    """An error reply; raised anywhere in a handler, answered by `endpoint`."""

    def __init__(self, status: int, message: str | list[str], *,
                 meta: Mapping[str, Any] | None = None):
        super().__init__(message if isinstance(message, str) else "; ".join(message))
        self.status = status
        self.message = message
        self.meta = meta

    def response(self) -> Response:
        return error_response(self.status, self.message, meta=self.meta)


def error_response(status: int, message: str | list[str], *,
                   meta: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if status == 422:
        # class-validator failures: a list of messages plus the NestJS error name
        body["message"] = [message] if isinstance(message, str) else list(message)
        body["error"] = "Unprocessable Entity"
    if meta:
        body["meta"] = dict(meta)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def invalid(*messages: str) -> HighLevelError:
    return HighLevelError(422, list(messages))


Handler = Callable[[Store, Request], Awaitable[Response]]


def endpoint(store: Store, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            return await handler(store, request)
        except HighLevelError as e:
            return e.response()
    return run


def routes(store: Store, table: Iterable[tuple[str, Handler, list[str]]]) -> list[Route]:
    return [Route(path, endpoint(store, handler), methods=methods)
            for path, handler, methods in table]


# -- request parsing --------------------------------------------------------------------------

async def json_body(request: Request, allowed: Iterable[str]) -> dict[str, Any]:
    """The JSON object body; unknown properties are refused as HighLevel's DTOs do."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as e:
        raise HighLevelError(400, f"Unexpected token in JSON at position {e.pos}") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    forbid_unknown(body, allowed)
    return body


def query_params(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    params = dict(request.query_params)
    forbid_unknown(params, allowed)
    return params


def forbid_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    known = set(allowed)
    extra = [f"property {k} should not exist" for k in data if k not in known]
    if extra:
        raise invalid(*extra)


def check_location(location_id: Any, name: str = "locationId") -> None:
    """Every call names the location; the sandbox token opens exactly one."""
    if location_id in (None, ""):
        raise invalid(f"{name} should not be empty", f"{name} must be a string")
    if not isinstance(location_id, str):
        raise invalid(f"{name} must be a string")
    if location_id != LOCATION_ID:
        raise HighLevelError(403, NO_ACCESS)


def int_param(value: Any, name: str, *, default: int | None = None, minimum: int = 1,
              maximum: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise invalid(f"{name} must be a number conforming to the specified constraints")
        return default
    number = _as_int(value)
    if number is None:
        raise invalid(f"{name} must be a number conforming to the specified constraints")
    if number < minimum:
        raise invalid(f"{name} must not be less than {minimum}")
    if maximum is not None and number > maximum:
        raise invalid(f"{name} must not be greater than {maximum}")
    return number


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def str_fields(body: Mapping[str, Any], names: Iterable[str]) -> None:
    """Type-check optional string properties (null allowed: it clears the value)."""
    bad = [f"{n} must be a string" for n in names
           if n in body and body[n] is not None and not isinstance(body[n], str)]
    if bad:
        raise invalid(*bad)


# -- time and paging --------------------------------------------------------------------------

def now_iso(store: Store) -> str:
    """A fresh write time: each API write moves the simulated clock 1 ms."""
    return iso(store.stamp())


def millis(text: str | None) -> int:
    return int(parse_ts(text).timestamp() * 1000) if text else 0


def from_millis(value: Any, name: str) -> str:
    """Canonical ISO text for an epoch-milliseconds cursor value."""
    try:
        ms = int(str(value))
    except (TypeError, ValueError):
        raise invalid(f"{name} must be a number (epoch milliseconds)") from None
    return iso(datetime.fromtimestamp(ms / 1000, UTC))


def after_key(expr: str, value: str, key_id: str, direction: str = "ASC") -> tuple[str, list]:
    """Keyset condition "after (value, id)" in the sort direction, written so SQLite uses the
    sort index for it (a row-value comparison on an expression index is not a range). Put it
    before other conditions: SQLite takes the first bound it meets on each side of the range."""
    op = ">" if direction == "ASC" else "<"
    return f"{expr} {op}= ? AND ({expr} {op} ? OR id {op} ?)", [value, value, key_id]


def next_page_url(request: Request, params: Mapping[str, Any]) -> str:
    """The same endpoint with new query parameters, as an absolute URL a client can follow."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return str(request.url.replace(query=query))
