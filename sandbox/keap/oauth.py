"""Keap's OAuth2 token endpoint (real: POST https://api.infusionsoft.com/token, form-encoded).

    grant_type=authorization_code&code=...      -> a new access/refresh pair
    grant_type=refresh_token&refresh_token=...  -> a NEW pair; the old refresh token is revoked

Client credentials come in the form (client_id, client_secret) or as HTTP Basic. Errors are RFC
6749 bodies (`error`, `error_description`). The sandbox's authorization code
(credentials.KEAP_AUTHORIZATION_CODE) can be exchanged again and again, so that every test and
demo can start a fresh grant without a browser.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox import credentials
from sandbox.keap.common import SOURCE
from sandbox.state import SandboxState

TOKEN_PATH = "/token"
CLIENTS = {credentials.KEAP_CLIENT_ID: credentials.KEAP_CLIENT_SECRET}
REFRESH_TTL_SECONDS = 45 * 86400  # Keap: refresh tokens live about 45 days
TENANT = "sandbox"
SCOPE = f"full|{TENANT}.infusionsoft.com"


class OAuth:
    def __init__(self, state: SandboxState):
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [Route(TOKEN_PATH, self.token, methods=["POST"])]

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                              keep_blank_values=True))
        client_id = _client(request, form)
        if client_id is None:
            return _oauth_error(401, "invalid_client",
                                "Invalid client credentials: send client_id and client_secret "
                                "in the form or as HTTP Basic")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if not hmac.compare_digest(form.get("code", ""), credentials.KEAP_AUTHORIZATION_CODE):
                return _oauth_error(400, "invalid_grant", "Invalid authorization code")
        elif grant == "refresh_token":
            if not self._revoke_refresh(form.get("refresh_token", ""), client_id):
                return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        else:
            return _oauth_error(400, "unsupported_grant_type",
                                "grant_type must be authorization_code or refresh_token, got "
                                f"{grant!r}")
        return JSONResponse(self._issue(client_id),
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def client_for(self, access_token: str) -> tuple[str | None, bool]:
        """(client id, expired) for a Bearer token; (None, False) when it is unknown."""
        row = self.state.store.conn.execute(
            "SELECT client, expires_at, revoked FROM tokens "
            "WHERE token = ? AND source = ? AND kind = 'access'", (access_token, SOURCE),
        ).fetchone()
        if row is None or row[2]:
            return None, False
        return row[0], row[1] <= time.time()

    def _issue(self, client_id: str) -> dict[str, Any]:
        ttl = self.state.token_ttl_seconds
        now = time.time()
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        store = self.state.store
        with store.transaction():
            store.conn.executemany(
                "INSERT INTO tokens (token, source, kind, client, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(access, SOURCE, "access", client_id, now + ttl),
                 (refresh, SOURCE, "refresh", client_id, now + REFRESH_TTL_SECONDS)])
        return {"access_token": access, "token_type": "bearer", "expires_in": int(ttl),
                "refresh_token": refresh, "scope": SCOPE}

    def _revoke_refresh(self, token: str, client_id: str) -> bool:
        """Use up a refresh token: True if it was live and this client's."""
        store = self.state.store
        with store.transaction():
            n = store.conn.execute(
                "UPDATE tokens SET revoked = 1 WHERE token = ? AND source = ? "
                "AND kind = 'refresh' AND client = ? AND revoked = 0 AND expires_at > ?",
                (token, SOURCE, client_id, time.time())).rowcount
        return n == 1


def _client(request: Request, form: dict[str, str]) -> str | None:
    """The authenticated client id, from HTTP Basic or the form; None if they do not check."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
    expected = CLIENTS.get(client_id)
    if expected is None or not hmac.compare_digest(expected, secret):
        return None
    return client_id


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store"})
