"""The emulated Keap REST API v2, mounted at `/keap`.

    POST /keap/token                      OAuth2 tokens (real: api.infusionsoft.com/token)
    /keap/crm/rest/v2/contacts...         contacts, upsert, custom field model (real:
                                          api.keap.com/crm/rest/v2/...)
    /keap/crm/rest/v2/tags...             tags, categories, applyTags / removeTags
    /keap/crm/rest/v2/notes, tasks, emails, opportunities, companies ... a contact's history
    /keap/crm/rest/v1/hooks...            REST hooks (v1 still owns them; keap/hooks.py)

Auth: `X-Keap-API-Key: <Personal Access Token>` or `Authorization: Bearer <OAuth access token>`.
Limits are Keap's published ones, enforced per key or per OAuth client: a PAT gets 10/s,
240/min and 30,000/day; an OAuth client 1,500/min and 150,000/day; both a 25/s spike arrest.
Every reply carries the `x-keap-product-quota-*` (day) and `x-keap-product-throttle-*` (minute)
headers; a 429 comes without Retry-After, because Keap does not promise one.

The endpoints live in contacts.py, tags.py, fields.py, history.py (notes, tasks, emails,
opportunities, companies), hooks.py and oauth.py.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from sandbox import credentials
from sandbox.keap.common import error_response
from sandbox.keap.contacts import OPTIONAL_PROPERTIES, Contacts, ensure_indexes
from sandbox.keap.fields import CustomFields
from sandbox.keap.history import History
from sandbox.keap.hooks import KeapHooks
from sandbox.keap.oauth import TENANT, TOKEN_PATH, OAuth
from sandbox.keap.tags import Tags
from sandbox.ratelimit import Limiter, Verdict, Window
from sandbox.state import SandboxState

NAME = "keap"
SPIKE = Window(25, 1.0, "spike")
PAT_WINDOWS = [Window(10, 1.0, "second"), SPIKE, Window(240, 60.0, "minute"),
               Window(30_000, 86_400.0, "day")]
OAUTH_WINDOWS = [SPIKE, Window(1_500, 60.0, "minute"), Window(150_000, 86_400.0, "day")]
# the body Keap's gateway sends with a 429 (as reported by users; `code` is a string there)
THROTTLED = {"code": "429", "message": "Quota Exceeded", "status": "Request Throttled",
             "details": None}


@dataclass
class KeapVerdict(Verdict):
    """A verdict plus the minute and day counters Keap reports in its headers."""

    usage: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (limit, used)


class KeapLimiter(Limiter):
    def hit(self, key: str, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        verdict = super().hit(key, now)
        return KeapVerdict(**vars(verdict), usage=self._usage(key, now))

    def _usage(self, key: str, now: float) -> dict[str, tuple[int, int]]:
        out = {}
        log = self._log.get(key, [])
        for w in self.windows:
            out[w.name] = (w.limit, sum(1 for t in log if t > now - w.seconds))
        today = int(time.time() // 86400)
        for w in self.daily:
            day, used = self._days.get(key + w.name, (today, 0))
            out[w.name] = (w.limit, used if day == today else 0)
        return out


class Keap:
    name = NAME
    public_paths = (TOKEN_PATH,)

    def __init__(self, state: SandboxState):
        self.state = state
        self.oauth = OAuth(state)
        self.pat_limiter = KeapLimiter(PAT_WINDOWS)
        self.oauth_limiter = KeapLimiter(OAUTH_WINDOWS)
        ensure_indexes(state.store)

    def routes(self) -> list[BaseRoute]:
        store = self.state.store
        # the model routes go before /contacts/{contact_id}, which would swallow "model"
        return [*self.oauth.routes(),
                *CustomFields(store, OPTIONAL_PROPERTIES).routes(),
                *Tags(store).routes(),
                *Contacts(store).routes(),
                *History(store).routes(),
                *KeapHooks(self.state).routes()]

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        key = request.headers.get("x-keap-api-key")
        if key is not None:
            if hmac.compare_digest(key.strip(), credentials.KEAP_API_KEY):
                return "pat:sandbox", None  # one key; the principal names no secret
            return None, self._unauthorized("Invalid API key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, self._unauthorized(
                "Missing credentials: send X-Keap-API-Key (Personal Access Token or Service "
                "Account Key) or Authorization: Bearer <OAuth access token>")
        client, expired = self.oauth.client_for(token.strip())
        if client is None:
            return None, self._unauthorized("Invalid Access Token")
        if expired:
            return None, self.expired_token()
        return "oauth:" + client, None

    def expired_token(self) -> Response:
        return self._unauthorized("Access Token expired: refresh it at the token endpoint")

    def _unauthorized(self, message: str) -> Response:
        return error_response(401, message,
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    # -- rate limits ---------------------------------------------------------------------------
    def limiter_for(self, principal: str) -> Limiter:
        return self.oauth_limiter if principal.startswith("oauth:") else self.pat_limiter

    def reset_limits(self) -> None:
        self.pat_limiter.reset()
        self.oauth_limiter.reset()

    def limit_headers(self, verdict: Verdict) -> dict[str, str]:
        headers = {"x-keap-tenant-id": TENANT}
        if not isinstance(verdict, KeapVerdict) or not verdict.usage:
            return headers
        for prefix, name, unit in (("quota", "day", "day"), ("throttle", "minute", "minute")):
            limit, used = verdict.usage[name]
            headers |= {f"x-keap-product-{prefix}-limit": str(limit),
                        f"x-keap-product-{prefix}-time-unit": unit,
                        f"x-keap-product-{prefix}-interval": "1",
                        f"x-keap-product-{prefix}-available": str(max(0, limit - used)),
                        f"x-keap-product-{prefix}-used": str(used)}
        # the day quota drains at 00:00 UTC; Keap sends that instant in epoch milliseconds
        midnight = (int(time.time() // 86400) + 1) * 86400
        headers["x-keap-product-quota-expiry-time"] = str(midnight * 1000)
        return headers

    def too_many_requests(self, verdict: Verdict, retry_after: float | None) -> Response:
        headers = self.limit_headers(verdict)
        # A real throttle (KeapVerdict) never promises a retry time; an injected 429 fault may.
        if not isinstance(verdict, KeapVerdict) and retry_after is not None:
            headers["Retry-After"] = str(max(0, round(retry_after)))
        return JSONResponse(THROTTLED, status_code=429, headers=headers)

    def error(self, status: int, message: str) -> Response:
        return error_response(status, message)


def create(state: SandboxState) -> Keap:
    return Keap(state)
