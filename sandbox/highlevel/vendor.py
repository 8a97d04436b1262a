"""The HighLevel (LeadConnector) API v2 emulator, mounted at /highlevel.

Real base: https://services.leadconnectorhq.com. Every call needs `Version: 2021-07-28` and
`Authorization: Bearer <token>`: the sandbox's Private Integration Token
(credentials.HIGHLEVEL_TOKEN), or a HighLevel access token kept in the `tokens` table. The token
opens one location (credentials.HIGHLEVEL_LOCATION_ID); naming another answers 403.

Rate limit, per app and location as HighLevel documents: 100 requests per 10 s burst and
200,000 a day, reported on every reply in X-RateLimit-* headers. Over the limit: 429 with the
headers and no Retry-After (HighLevel does not document one).

Endpoints live in highlevel/contacts.py, notes.py (a contact's notes and tasks), conversations.py
(conversations and messages), calendars.py (calendars and appointments), search.py,
opportunities.py and location.py; this module is the gate-facing part (auth, limits, error shapes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import credentials
from sandbox.highlevel.calendars import calendar_routes
from sandbox.highlevel.common import LOCATION_ID, error_response
from sandbox.highlevel.contacts import contact_routes
from sandbox.highlevel.conversations import CONVERSATIONS_VERSION, conversation_routes
from sandbox.highlevel.location import location_routes
from sandbox.highlevel.notes import note_routes
from sandbox.highlevel.opportunities import opportunity_routes
from sandbox.highlevel.search import search_routes
from sandbox.ratelimit import Limiter, Verdict, Window
from sandbox.state import SandboxState
from sandbox.store import Store

BURST = Window(100, 10.0, "burst")
DAILY = Window(200_000, 86_400.0, "daily")
API_VERSION = credentials.HIGHLEVEL_API_VERSION

# Partial indexes the HighLevel listings page on (queries name source and entity as literals so
# SQLite can use them): contacts by dateAdded / dateUpdated, upsert's phone match, and
# opportunities by createdAt.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS hl_contacts_added ON records "
    "(json_extract(doc, '$.dateAdded'), id) WHERE source = 'highlevel' AND entity = 'contacts'",
    "CREATE INDEX IF NOT EXISTS hl_contacts_updated ON records (updated_at, id) "
    "WHERE source = 'highlevel' AND entity = 'contacts'",
    "CREATE INDEX IF NOT EXISTS hl_contacts_phone ON records (json_extract(doc, '$.phone')) "
    "WHERE source = 'highlevel' AND entity = 'contacts'",
    "CREATE INDEX IF NOT EXISTS hl_opportunities_created ON records "
    "(json_extract(doc, '$.createdAt'), id) "
    "WHERE source = 'highlevel' AND entity = 'opportunities'",
)


def ensure_indexes(store: Store) -> None:
    with store.transaction():
        for sql in INDEXES:
            store.conn.execute(sql)


@dataclass
class LimitVerdict(Verdict):
    """A verdict of the HighLevel limiter: both remainders, for the two headers."""

    burst_remaining: int = 0
    daily_remaining: int = 0


class HighLevelLimiter(Limiter):
    """Burst and daily limits counted apart, so every reply can report both remainders."""

    def __init__(self) -> None:
        super().__init__([BURST, DAILY])
        self._burst = Limiter([BURST])
        self._day = Limiter([DAILY])
        self.daily_left: dict[str, int] = {}

    def hit(self, key: str, now: float | None = None) -> LimitVerdict:
        self._burst.enabled = self._day.enabled = self.enabled
        burst = self._burst.hit(key, now)
        day_left = self.daily_left.get(key, DAILY.limit)
        if not burst.allowed:
            return LimitVerdict(False, BURST, 0, burst.reset_seconds, burst.used, 0, day_left)
        day = self._day.hit(key, now)
        self.daily_left[key] = day.remaining
        window, spent = (BURST, burst) if day.allowed else (DAILY, day)
        return LimitVerdict(day.allowed, window, spent.remaining, spent.reset_seconds,
                            spent.used, burst.remaining, day.remaining)

    def reset(self) -> None:
        super().reset()
        self._burst.reset()
        self._day.reset()
        self.daily_left.clear()


class HighLevelVendor:
    name = "highlevel"
    public_paths: tuple[str, ...] = ()

    def __init__(self, state: SandboxState):
        self.state = state
        self.store = state.store
        self.limiter = HighLevelLimiter()
        ensure_indexes(self.store)

    def routes(self) -> list[BaseRoute]:
        store = self.store
        return [*search_routes(store), *calendar_routes(store), *contact_routes(store),
                *note_routes(store),
                *conversation_routes(store),
                *opportunity_routes(store),
                *location_routes(store),
                Route("/{path:path}", self._not_found,
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]

    async def _not_found(self, request: Request) -> Response:
        # NestJS's answer for a path (or a method) it has no route for
        path = request.url.path.removeprefix(f"/{self.name}")
        return error_response(404, f"Cannot {request.method} {path}")

    # -- authentication ---------------------------------------------------------------------
    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, error_response(401, "Invalid JWT")
        if token != credentials.HIGHLEVEL_TOKEN and not self._access_token_valid(token):
            return None, self._unknown_token(token)
        version = request.headers.get("version", "").strip()
        if not version:
            return None, error_response(401, "version header was not found.")
        path = request.url.path.split("/highlevel", 1)[-1]
        newer = path.startswith(("/conversations", "/calendars"))
        if version != (CONVERSATIONS_VERSION if newer else API_VERSION):
            # each API's documented version: conversations.json and calendars.json 2021-04-15,
            # the rest 2021-07-28
            return None, error_response(401, "version header is invalid")
        return f"location:{LOCATION_ID}", None

    def _access_token_valid(self, token: str) -> bool:
        row = self.store.conn.execute(
            "SELECT expires_at, revoked FROM tokens WHERE token = ? AND source = ? "
            "AND kind = 'access'", (token, self.name)).fetchone()
        return row is not None and not row[1] and row[0] > time.time()

    def _unknown_token(self, token: str) -> Response:
        # OAuth access tokens are JWTs; anything else was meant as a Private Integration Token
        if token.count(".") == 2:
            return self.expired_token()
        return error_response(401, "Invalid Private Integration token")

    def expired_token(self) -> Response:
        return error_response(401, "Invalid JWT")

    # -- rate limits ------------------------------------------------------------------------
    def limiter_for(self, principal: str) -> Limiter:
        return self.limiter

    def reset_limits(self) -> None:
        self.limiter.reset()

    def limit_headers(self, verdict: Verdict) -> dict[str, str]:
        if isinstance(verdict, LimitVerdict):
            burst_left, day_left = verdict.burst_remaining, verdict.daily_remaining
        else:  # an injected 429: nothing was counted
            burst_left = 0
            day_left = self.limiter.daily_left.get(f"location:{LOCATION_ID}", DAILY.limit)
        return {
            "X-RateLimit-Max": str(BURST.limit),
            "X-RateLimit-Remaining": str(max(0, burst_left)),
            "X-RateLimit-Interval-Milliseconds": str(int(BURST.seconds * 1000)),
            "X-RateLimit-Limit-Daily": str(DAILY.limit),
            "X-RateLimit-Daily-Remaining": str(max(0, day_left)),
        }

    def too_many_requests(self, verdict: Verdict, retry_after: float | None) -> Response:
        headers = self.limit_headers(verdict)
        if retry_after is not None and not isinstance(verdict, LimitVerdict):
            # only an injected fault that asks for Retry-After sends one; HighLevel does not
            headers["Retry-After"] = str(math.ceil(retry_after))
        return error_response(429, "Too Many Requests", headers=headers)

    def error(self, status: int, message: str) -> Response:
        return error_response(status, message)


def create(state: SandboxState) -> HighLevelVendor:
    return HighLevelVendor(state)
