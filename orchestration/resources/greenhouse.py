"""Greenhouse Harvest v3 client: OAuth client credentials, Link-header cursor pagination, and the
few writes the reverse sync makes (candidate tags, candidate custom fields; the contract and its
sources: specs/ats/greenhouse-harvest-v3-writes.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg

from orchestration.http import ApiError, HttpClient, Pacer, RetryPolicy, paginate_link_header
from orchestration.rate_budget import shared_budget
from orchestration.resources.common import pause_when_spent, resolve_base
from orchestration.times import iso
from sandbox import credentials

ENTITIES = ("candidates", "applications", "jobs", "job_interview_stages", "application_stages",
            "offers", "interviews", "rejection_reasons", "rejection_details", "users",
            "departments", "offices", "sources", "scorecards", "notes", "attachments",
            "applied_candidate_tags", "candidate_tags", "custom_fields", "close_reasons",
            "job_posts")
# attachment downloads: pre-signed storage links, outside Harvest's rate limit and token
FILE_ATTEMPTS = 3
FILE_BACKOFF_SECONDS = 0.5


class GreenhouseResource(dg.ConfigurableResource):
    """Greenhouse Harvest v3. Empty `base_url` means the built-in sandbox."""

    base_url: str = ""
    token_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    user_id: int = 0
    requests_per_window: int = 45      # Greenhouse allows 50 per 10 s window; keep a margin
    window_seconds: float = 10.0
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 30.0
    page_size: int = 500

    def open(self) -> GreenhouseClient:
        base, sandbox = resolve_base(self.base_url, "/greenhouse")
        token_url = self.token_url or (f"{base}/auth/token" if sandbox
                                       else "https://auth.greenhouse.io/token")
        if sandbox:
            cid, secret, sub = (credentials.GREENHOUSE_CLIENT_ID,
                                credentials.GREENHOUSE_CLIENT_SECRET,
                                credentials.GREENHOUSE_USER_ID)
        else:
            if not (self.client_id and self.client_secret and self.user_id):
                raise dg.DagsterInvariantViolationError(
                    "Greenhouse needs GREENHOUSE_CLIENT_ID, GREENHOUSE_CLIENT_SECRET and "
                    "GREENHOUSE_USER_ID when GREENHOUSE_BASE_URL is set")
            cid, secret, sub = self.client_id, self.client_secret, self.user_id
        return GreenhouseClient(
            base, token_url, cid, secret, sub,
            pacer=Pacer([(self.requests_per_window, self.window_seconds)],
                        shared=shared_budget("greenhouse", base, cid)),
            retry=RetryPolicy(max_attempts=self.max_attempts, base_delay=self.backoff_seconds,
                              max_delay=self.max_backoff_seconds),
            timeout=self.timeout_seconds, page_size=self.page_size, sandbox=sandbox)


class GreenhouseClient:
    def __init__(self, base_url: str, token_url: str, client_id: str, client_secret: str,
                 user_id: int, *, pacer: Pacer, retry: RetryPolicy, timeout: float,
                 page_size: int = 500, sandbox: bool = False):
        self.token_url = token_url
        self._basic = (client_id, client_secret)
        self._sub = user_id
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.page_size = page_size
        self.sandbox = sandbox
        self.http = HttpClient(
            base_url, name="greenhouse", auth=self._auth, pacer=pacer, retry=retry,
            timeout=timeout,
            rate_headers=pause_when_spent("x-ratelimit-remaining", "x-ratelimit-reset"))
        # one attempt per request: `download` retries itself, so no URL (its path holds the
        # file's name, often the candidate's) reaches a log line
        self.files = HttpClient("", name="greenhouse-files", retry=RetryPolicy(max_attempts=1),
                                timeout=timeout)

    def close(self) -> None:
        self.http.close()
        self.files.close()

    def download(self, url: str) -> bytes:
        """An attachment's file from its link (no bearer token: the link is pre-signed);
        transient failures are retried, anything else raises ApiError."""
        for attempt in range(1, FILE_ATTEMPTS + 1):
            try:
                return self.files.request("GET", url, authenticate=False,
                                          expect_json=False).content
            except ApiError as e:
                if not e.retryable or attempt == FILE_ATTEMPTS:
                    raise
            time.sleep(FILE_BACKOFF_SECONDS * attempt)
        raise AssertionError("unreachable")

    @property
    def calls(self) -> int:
        return self.http.calls

    def _auth(self, force: bool) -> dict[str, str]:
        with self._lock:
            if force or not self._token or time.time() > self._expires - 60:
                self._fetch_token()
            return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> None:
        # through the same retry loop (a token call can hit a 503 too); asking again for a
        # client-credentials token is harmless, so it counts as idempotent
        try:
            resp = self.http.request(
                "POST", self.token_url, authenticate=False, idempotent=True, auth=self._basic,
                data={"grant_type": "client_credentials", "sub": str(self._sub)})
        except ApiError as e:
            if e.status in (400, 401):
                raise ApiError("greenhouse: token request refused; check GREENHOUSE_CLIENT_ID, "
                               "GREENHOUSE_CLIENT_SECRET and GREENHOUSE_USER_ID",
                               method="POST", url=self.token_url, status=e.status) from e
            raise
        body = resp.json()
        self._token = body["access_token"]
        self._expires = time.time() + float(body.get("expires_in", 3600))

    def pages(self, entity: str, *, updated_from: datetime | None = None,
              updated_to: datetime | None = None,
              extra: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every record of an entity, page by page, optionally within an update-time window."""
        if entity not in ENTITIES:
            raise ValueError(f"unknown Greenhouse entity {entity!r}; known: {', '.join(ENTITIES)}")
        params: list[tuple[str, Any]] = [("per_page", self.page_size)]
        if updated_from is not None:
            params.append(("updated_at", f"gte|{iso(updated_from)}"))
        if updated_to is not None:
            params.append(("updated_at", f"lte|{iso(updated_to)}"))
        params += list((extra or {}).items())
        yield from paginate_link_header(self.http, f"/v3/{entity}", params)


    # -- writes (the reverse sync) ------------------------------------------------------------
    # Each is safe to resend: creating a tag that exists or applying a tag already applied
    # answers the existing record (200), a PATCH sets the same values again, and a DELETE of an
    # applied tag already gone is a 404 taken as done. So the HTTP layer may retry all of them.
    def create_candidate_tag(self, name: str) -> dict[str, Any]:
        """The organization's candidate tag of that name (created when missing)."""
        return self.http.request("POST", "/v3/candidate_tags", json_body={"name": name},
                                 idempotent=True).json()

    def apply_candidate_tag(self, candidate_id: int, tag_id: int) -> dict[str, Any]:
        """Put a tag on a candidate; the applied tag (id, candidate_id, candidate_tag_id)."""
        return self.http.request(
            "POST", "/v3/applied_candidate_tags", idempotent=True,
            json_body={"candidate_id": int(candidate_id), "candidate_tag_id": int(tag_id)}
        ).json()

    def applied_tags(self, candidate_id: int, tag_id: int) -> list[dict[str, Any]]:
        """The applied-tag rows of one tag on one candidate (none, or one)."""
        params = [("per_page", self.page_size), ("candidate_id", int(candidate_id)),
                  ("candidate_tag_id", int(tag_id))]
        return [r for page in paginate_link_header(self.http, "/v3/applied_candidate_tags",
                                                   params) for r in page]

    def remove_applied_tag(self, applied_id: int) -> None:
        """Take an applied tag off its candidate (already gone: nothing to do)."""
        self.http.request("DELETE", f"/v3/applied_candidate_tags/{int(applied_id)}",
                          expect_json=False, ok=lambda s: 200 <= s < 300 or s == 404)

    def update_candidate(self, candidate_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH a candidate (e.g. `{"custom_fields": [{"name_key": k, "value": v}]}`); the
        candidate as Greenhouse holds it afterwards."""
        return self.http.request("PATCH", f"/v3/candidates/{int(candidate_id)}",
                                 json_body=body, idempotent=True).json()
