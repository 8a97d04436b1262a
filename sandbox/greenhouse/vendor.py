"""The emulated Greenhouse Harvest v3 API, mounted at `/greenhouse`.

    POST /greenhouse/auth/token          OAuth client credentials (real: auth.greenhouse.io/token)
    GET  /greenhouse/v3/<entity>         list: bare JSON array, newest id first, Link rel="next"
    GET  /greenhouse/v3/<entity>/<id>    one record
    POST|PATCH|DELETE ...                the writes the reverse sync uses (greenhouse/writes.py)

Entities: candidates, applications, jobs, job_interview_stages, application_stages, offers,
interviews, rejection_reasons, rejection_details, users, departments, offices, sources,
scorecards, notes, attachments, applied_candidate_tags, candidate_tags, custom_fields,
close_reasons, job_posts. List parameters, filters and cursors are in greenhouse/lists.py. An
attachment's `url` points at this server's file route (greenhouse/files.py). Errors are
`{"message": ...}` like Harvest's, plus `errors` (field and message) on 422; the token endpoint
answers RFC 6749 errors (`error`, `error_description`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox import credentials
from sandbox.greenhouse import files
from sandbox.greenhouse.lists import (
    ENTITIES,
    QueryError,
    fetch_page,
    get_doc,
    parse_query,
)
from sandbox.greenhouse.writes import Writes
from sandbox.ratelimit import Limiter, Verdict, Window
from sandbox.state import SandboxState

NAME = "greenhouse"
TOKEN_PATH = "/auth/token"
# Harvest answers with the cap in X-RateLimit-Limit; 50 per 10 s is the long-documented default
RATE_LIMIT = 50
RATE_WINDOW_SECONDS = 10.0
CLIENTS = {credentials.GREENHOUSE_CLIENT_ID: credentials.GREENHOUSE_CLIENT_SECRET}
EXPIRED = "The access token has expired; request a new one from the token endpoint."


class Greenhouse:
    name = NAME
    public_paths = (TOKEN_PATH,)

    def __init__(self, state: SandboxState):
        self.state = state
        self.limiter = Limiter([Window(RATE_LIMIT, RATE_WINDOW_SECONDS, "harvest")])
        self._signing_key = secrets.token_bytes(32)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route("/v3/{entity}", self.list_records, methods=["GET"]),
            Route("/v3/{entity}/{id}", self.get_record, methods=["GET"]),
            *Writes(self.state).routes(),
        ]

    # -- OAuth -------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        client = _basic_client(request.headers.get("authorization", ""))
        if client is None or not hmac.compare_digest(CLIENTS.get(client[0], ""), client[1]):
            return _oauth_error(401, "invalid_client",
                                "client authentication failed: send HTTP Basic "
                                "client_id:client_secret of a Harvest V3 (OAuth) credential")
        form = dict(parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type",
                                "grant_type must be client_credentials, got "
                                f"{form.get('grant_type')!r}")
        sub = form.get("sub", "")
        if not sub.isdigit():
            return _oauth_error(400, "invalid_request",
                                "sub must be the numeric user_id of the Greenhouse user the "
                                f"integration acts as, got {sub!r}")
        return JSONResponse(self._issue(client[0], int(sub)),
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _issue(self, client_id: str, sub: int) -> dict[str, Any]:
        ttl = self.state.token_ttl_seconds
        now = time.time()
        token = self._jwt({"iss": "https://auth.greenhouse.io", "sub": str(sub),
                           "client_id": client_id, "iat": int(now),
                           "exp": int(now + ttl), "jti": secrets.token_hex(8)})
        store = self.state.store
        with store.transaction():
            store.conn.execute(
                "INSERT INTO tokens (token, source, kind, client, expires_at, extra) "
                "VALUES (?, ?, 'access', ?, ?, ?)",
                (token, NAME, client_id, now + ttl, json.dumps({"sub": sub})))
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl)}

    def _jwt(self, claims: dict[str, Any]) -> str:
        # v3 access tokens are JWTs; the sandbox signs its own so clients can read `exp`
        head = _b64({"alg": "HS256", "typ": "JWT"})
        body = _b64(claims)
        sig = hmac.new(self._signing_key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"

    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, self._unauthorized(
                "Missing access token: Harvest v3 needs `Authorization: Bearer <access_token>` "
                "from the token endpoint.", "invalid_request")
        row = self.state.store.conn.execute(
            "SELECT client, expires_at, revoked FROM tokens "
            "WHERE token = ? AND source = ? AND kind = 'access'", (token.strip(), NAME),
        ).fetchone()
        if row is None or row[2]:
            return None, self._unauthorized("Invalid access token.", "invalid_token")
        if row[1] <= time.time():
            return None, self.expired_token()
        return row[0], None

    def expired_token(self) -> Response:
        return self._unauthorized(EXPIRED, "invalid_token")

    def _unauthorized(self, message: str, code: str) -> Response:
        return JSONResponse({"message": message}, status_code=401, headers={
            "WWW-Authenticate": f'Bearer error="{code}", error_description="{message}"'})

    # -- rate limits -------------------------------------------------------------------------
    def limiter_for(self, principal: str) -> Limiter:
        return self.limiter

    def reset_limits(self) -> None:
        self.limiter.reset()

    def limit_headers(self, verdict: Verdict) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(verdict.window.limit),
            "X-RateLimit-Remaining": str(max(0, verdict.remaining)),
            # epoch seconds at which one more request fits in the window
            "X-RateLimit-Reset": str(math.ceil(time.time() + verdict.reset_seconds)),
        }

    def too_many_requests(self, verdict: Verdict, retry_after: float | None) -> Response:
        headers = self.limit_headers(verdict)
        headers["X-RateLimit-Remaining"] = "0"
        if retry_after is not None:
            headers["Retry-After"] = str(math.ceil(retry_after))
        return JSONResponse(
            {"message": f"Rate limit exceeded: at most {verdict.window.limit} requests per "
                        f"{verdict.window.seconds:g} seconds. Retry after the Retry-After "
                        "seconds."},
            status_code=429, headers=headers)

    def error(self, status: int, message: str) -> Response:
        return JSONResponse({"message": message}, status_code=status)

    # -- records -----------------------------------------------------------------------------
    async def list_records(self, request: Request) -> Response:
        entity = request.path_params["entity"]
        if entity not in ENTITIES:
            return self._no_such_entity(entity)
        try:
            query = parse_query(entity, request.query_params.multi_items())
        except QueryError as e:
            return _unprocessable(e)
        page = fetch_page(self.state.store, query)
        headers = {}
        if page.next_cursor:
            url = request.url.replace(query=f"cursor={page.next_cursor}")
            headers["Link"] = f'<{url}>; rel="next"'
        body = "[" + ",".join(page.docs) + "]"
        if entity == "attachments":
            body = files.with_origin(body, request)
        return Response(body, media_type="application/json", headers=headers)

    async def get_record(self, request: Request) -> Response:
        entity, id_ = request.path_params["entity"], request.path_params["id"]
        if entity not in ENTITIES:
            return self._no_such_entity(entity)
        doc = get_doc(self.state.store, entity, id_) if id_.isdigit() else None
        if doc is None:
            return self.error(404, f"Resource not found: no {entity} record with id {id_}")
        if entity == "attachments":
            doc = files.with_origin(doc, request)
        return Response(doc, media_type="application/json")

    def _no_such_entity(self, entity: str) -> Response:
        return self.error(404, f"Not found: /v3/{entity} is not a Harvest v3 resource the "
                               f"sandbox serves; known: {', '.join(ENTITIES)}")


def create(state: SandboxState) -> Greenhouse:
    return Greenhouse(state)


def _basic_client(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, secret) if sep else None


def _oauth_error(status: int, code: str, description: str) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="greenhouse"'} if status == 401 else {}
    return JSONResponse({"error": code, "error_description": description},
                        status_code=status, headers=headers)


def _unprocessable(e: QueryError) -> Response:
    return JSONResponse({"message": f"Invalid query parameter {e.field}: {e.message}",
                         "errors": [{"field": e.field, "message": e.message}]}, status_code=422)


def _b64(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
