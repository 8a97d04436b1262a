"""Keap REST v2 client: API key (PAT/SAK) or OAuth with rotating refresh tokens.

Every OAuth refresh returns a NEW access/refresh pair and kills the old refresh token, so the new
pair is written to disk (atomically, under a file lock shared by all processes) before it is
used: a crash between refresh and save would otherwise lock us out of the account.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.http import (
    ApiError,
    HttpClient,
    MalformedResponseError,
    Pacer,
    RetryPolicy,
    concurrent_pages,
    paginate_page_token,
    parsed_json,
)
from orchestration.rate_budget import SharedBudget, shared_budget
from orchestration.resources.common import pause_when_spent, resolve_base, state_dir
from orchestration.resources.keap_history import KeapHistoryReads
from orchestration.times import iso
from sandbox import credentials

# Keap's published limits: PAT/SAK 10/s, 240/min, 30,000/day; OAuth 1,500/min; spike 25/s.
DEFAULT_CONTACT_FIELDS = ("id", "given_name", "family_name", "middle_name", "prefix", "suffix",
                          "email_addresses", "phone_numbers", "addresses", "company", "owner_id",
                          "create_time", "update_time")
PAT_WINDOWS = [(9, 1.0), (230, 60.0)]
OAUTH_WINDOWS = [(20, 1.0), (1400, 60.0)]


class KeapResource(dg.ConfigurableResource):
    """Keap REST v2. Empty `base_url` means the built-in sandbox (with its API key)."""

    base_url: str = ""                 # e.g. https://api.keap.com/crm
    token_url: str = ""                # e.g. https://api.infusionsoft.com/token
    api_key: str = ""                  # Personal Access Token / Service Account Key
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""            # the first refresh token; later ones are kept on disk
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 30.0
    page_size: int = 1000
    requests_per_second: int = 0       # 0: Keap's published limit for the auth kind, less a margin
    requests_per_minute: int = 0
    concurrency: int = 0               # parallel id-range slices; 0: 1 for API keys, 4 for OAuth

    def _retry(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, base_delay=self.backoff_seconds,
                           max_delay=self.max_backoff_seconds)

    def _windows(self, oauth: bool) -> list[tuple[int, float]]:
        per_s, per_min = (OAUTH_WINDOWS if oauth else PAT_WINDOWS)
        return [(self.requests_per_second or per_s[0], 1.0),
                (self.requests_per_minute or per_min[0], 60.0)]

    def open(self) -> KeapClient:
        base, sandbox = resolve_base(self.base_url, "/keap")
        if sandbox:
            return KeapClient(f"{base}/crm", api_key=credentials.KEAP_API_KEY,
                              windows=self._windows(False), retry=self._retry(),
                              budget=shared_budget("keap", base, credentials.KEAP_API_KEY),
                              concurrency=self.concurrency or 1,
                              timeout=self.timeout_seconds, page_size=self.page_size)
        if self.api_key:
            return KeapClient(base, api_key=self.api_key, windows=self._windows(False),
                              retry=self._retry(), concurrency=self.concurrency or 1,
                              budget=shared_budget("keap", base, self.api_key),
                              timeout=self.timeout_seconds, page_size=self.page_size)
        if not (self.client_id and self.client_secret):
            raise dg.DagsterInvariantViolationError(
                "Keap needs KEAP_API_KEY, or KEAP_CLIENT_ID + KEAP_CLIENT_SECRET + "
                "KEAP_REFRESH_TOKEN, when KEAP_BASE_URL is set")
        oauth = RotatingOAuth(self.token_url or "https://api.infusionsoft.com/token",
                              self.client_id, self.client_secret, self.refresh_token,
                              state_dir() / "keap_oauth.json")
        return KeapClient(base, oauth=oauth, windows=self._windows(True), retry=self._retry(),
                          concurrency=self.concurrency or 4,
                          budget=shared_budget("keap", base, self.client_id),
                          timeout=self.timeout_seconds, page_size=self.page_size)


class RotatingOAuth:
    """OAuth2 refresh-token rotation with the current pair persisted in `path` (0600)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str,
                 first_refresh_token: str, path: Path):
        self.token_url, self.client_id, self.client_secret = token_url, client_id, client_secret
        self.first_refresh_token = first_refresh_token
        self.path = path
        self._lock = threading.Lock()
        self.calls = 0

    def _load(self) -> dict[str, Any]:
        if self.path.exists():
            return json.loads(self.path.read_text())
        if not self.first_refresh_token:
            raise ApiError("keap: no OAuth refresh token: set KEAP_REFRESH_TOKEN once",
                           method="POST", url=self.token_url)
        return {"refresh_token": self.first_refresh_token, "access_token": "", "expires_at": 0}

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def headers(self, force: bool) -> dict[str, str]:
        with self._lock, open(self.path.with_suffix(".lock"), "a") as lockf:
            # one refresher across processes: a second refresh with the same token would fail
            fcntl.flock(lockf, fcntl.LOCK_EX)
            state = self._load()
            if force or not state["access_token"] or time.time() > state["expires_at"] - 300:
                state = self._refresh(state["refresh_token"])
                self._save(state)
            return {"Authorization": f"Bearer {state['access_token']}"}

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        # not idempotent: a refresh the server applied but whose reply was lost has already
        # rotated the token, so it is resent only when the server surely did not apply it
        http = HttpClient("", name="keap-oauth", retry=RetryPolicy(max_attempts=5))
        try:
            resp = http.request("POST", self.token_url, idempotent=False,
                                auth=(self.client_id, self.client_secret),
                                data={"grant_type": "refresh_token",
                                      "refresh_token": refresh_token})
        except ApiError as e:
            raise ApiError(f"keap: token refresh failed ({e}); if the refresh token was used or "
                           "revoked, authorize again and set KEAP_REFRESH_TOKEN",
                           method="POST", url=self.token_url, status=e.status) from e
        finally:
            self.calls += http.calls
            http.close()
        body = resp.json()
        return {"access_token": body["access_token"], "refresh_token": body["refresh_token"],
                "expires_at": time.time() + float(body.get("expires_in", 86400))}


class KeapClient(KeapHistoryReads):
    """Contacts, tags, custom fields, hooks; notes, tasks, emails, opportunities and companies
    are read by KeapHistoryReads (orchestration/resources/keap_history.py)."""

    def __init__(self, base_url: str, *, api_key: str = "", oauth: RotatingOAuth | None = None,
                 windows: list[tuple[int, float]] | None = None, retry: RetryPolicy,
                 timeout: float, page_size: int = 1000, concurrency: int = 1,
                 budget: SharedBudget | None = None):
        self.oauth = oauth
        self.page_size = page_size
        self.concurrency = concurrency
        self._all_fields: list[str] | None = None
        headers = {"X-Keap-API-Key": api_key} if api_key else {}
        self.http = HttpClient(
            base_url, name="keap", headers=headers,
            auth=oauth.headers if oauth else None,
            pacer=Pacer(windows or (OAUTH_WINDOWS if oauth else PAT_WINDOWS), shared=budget),
            retry=retry,
            timeout=timeout,
            rate_headers=pause_when_spent("x-keap-product-throttle-available"))

    def close(self) -> None:
        self.http.close()

    @property
    def calls(self) -> int:
        return self.http.calls + (self.oauth.calls if self.oauth else 0)

    # -- reads ----------------------------------------------------------------------------------
    def all_contact_fields(self) -> list[str]:
        """Every contact property: the defaults plus what the model lists as optional (tags,
        custom fields, ...), which Keap only returns when asked for by name."""
        if self._all_fields is None:
            optional = self.contact_model().get("optional_properties") or []
            self._all_fields = sorted(set(DEFAULT_CONTACT_FIELDS) | set(optional))
        return self._all_fields

    def contact_pages(self, *, updated_from: datetime | None = None,
                      updated_to: datetime | None = None, fields: list[str] | None = None,
                      concurrency: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Contacts, page by page. With concurrency > 1 the id range is cut into that many
        slices listed in parallel (Keap filters on `contact_id` ranges), all under one pacer."""
        filters = []
        if updated_from is not None:
            filters.append(f"start_update_time=={iso(updated_from)}")
        if updated_to is not None:
            filters.append(f"end_update_time=={iso(updated_to)}")
        fields_param = ",".join(fields or self.all_contact_fields())
        workers = concurrency if concurrency is not None else self.concurrency
        if workers <= 1:
            yield from self._contact_listing(filters, fields_param)
            return
        top = self._max_contact_id(filters)
        if top is None:
            return
        edges = [top * k // workers for k in range(workers + 1)]
        slices = [self._contact_listing(filters + [f"contact_id>{lo}", f"contact_id<={hi}"],
                                        fields_param)
                  for lo, hi in zip(edges, edges[1:], strict=False) if hi > lo]
        yield from concurrent_pages(slices, workers)

    def _contact_listing(self, filters: list[str], fields: str) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"page_size": self.page_size, "order_by": "id asc",
                                  "fields": fields}
        if filters:
            params["filter"] = ";".join(filters)
        yield from paginate_page_token(self.http, "/rest/v2/contacts", params,
                                       items_key="contacts")

    def _max_contact_id(self, filters: list[str]) -> int | None:
        params: dict[str, Any] = {"page_size": 1, "order_by": "id desc", "fields": "id"}
        if filters:
            params["filter"] = ";".join(filters)
        contacts = self.http.get_json("/rest/v2/contacts", params=params).get("contacts") or []
        return int(contacts[0]["id"]) if contacts else None

    def tag_pages(self) -> Iterator[list[dict[str, Any]]]:
        yield from paginate_page_token(self.http, "/rest/v2/tags", {"page_size": 1000},
                                       items_key="tags")

    def tag_category_pages(self) -> Iterator[list[dict[str, Any]]]:
        yield from paginate_page_token(self.http, "/rest/v2/tags/categories",
                                       {"page_size": 1000}, items_key="tag_categories")

    def contact_model(self) -> dict[str, Any]:
        return self.http.get_json("/rest/v2/contacts/model")


    # -- writes (sync push, restore) --------------------------------------------------------------
    # Which writes are safe to resend decides how failures are retried (see orchestration/http):
    # an upsert with duplicate_option=Email, a PATCH, applyTags/removeTags and DELETE are
    # idempotent in effect; a plain create and creating a tag, tag category or custom field are
    # not, so on an ambiguous failure (no complete reply) they are looked up by name first.
    CONTACTS = "/rest/v2/contacts"

    def upsert_contact(self, body: dict[str, Any], duplicate_option: str = "Email",
                       fields: list[str] | None = None) -> tuple[dict[str, Any], bool]:
        """Create the contact, or update the oldest one matching under `duplicate_option`.
        Returns (contact, created). Safe to resend: a resend finds the contact the first
        attempt made. Arrays sent replace Keap's arrays whole: send them complete."""
        params: dict[str, Any] = {"duplicate_option": duplicate_option}
        if fields:
            params["fields"] = ",".join(fields)
        resp = self.http.request("POST", self.CONTACTS, params=params, json_body=body,
                                 idempotent=True)
        return parsed_json(resp), resp.status_code == 201

    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a contact without a duplicate check (always a new contact). Not idempotent:
        resent only when the server surely did not apply it (connect error, 429, 503)."""
        return parsed_json(self.http.request("POST", self.CONTACTS, json_body=body,
                                             idempotent=False))

    def update_contact(self, contact_id: str | int, body: dict[str, Any],
                       update_mask: list[str] | None = None) -> dict[str, Any]:
        """PATCH the fields named in `update_mask` (all fields of `body` when None)."""
        mask = list(update_mask) if update_mask is not None else list(body)
        params = {"update_mask": ",".join(mask)} if mask else None
        return parsed_json(self.http.request("PATCH", f"{self.CONTACTS}/{int(contact_id)}",
                                             params=params, json_body=body, idempotent=True))

    def delete_contact(self, contact_id: str | int) -> bool:
        """Delete a contact. False when Keap does not have it (already deleted: a resend after a
        lost reply lands here too, so 'gone' is the outcome either way)."""
        return self._delete(f"{self.CONTACTS}/{int(contact_id)}")

    def get_contact(self, contact_id: str | int,
                    fields: list[str] | None = None) -> dict[str, Any] | None:
        """One contact (default fields, or the ones named), or None when Keap has none."""
        params = {"fields": ",".join(fields)} if fields else None
        try:
            return self.http.get_json(f"{self.CONTACTS}/{int(contact_id)}", params=params)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def apply_tags(self, tag_id: str | int, contact_ids: list[str | int],
                   batch: int = 1000) -> dict[str, str]:
        """Apply one tag to many contacts, ≤ `batch` ids a call. Returns Keap's result per
        contact id (SUCCESS, DUPLICATE = already had it, CONTACT_NOT_FOUND)."""
        results: dict[str, str] = {}
        ids = [str(i) for i in dict.fromkeys(str(c) for c in contact_ids)]
        for chunk in _chunks(ids, batch):
            body = parsed_json(self.http.request(
                "POST", f"/rest/v2/tags/{int(tag_id)}/contacts:applyTags",
                json_body={"contact_ids": chunk}, idempotent=True))
            results.update({str(k): str(v) for k, v in (body.get("results") or {}).items()})
        return results

    def remove_tags(self, tag_id: str | int, contact_ids: list[str | int],
                    batch: int = 1000) -> None:
        """Remove one tag from many contacts, ≤ `batch` ids a call (idempotent)."""
        ids = [str(i) for i in dict.fromkeys(str(c) for c in contact_ids)]
        for chunk in _chunks(ids, batch):
            self.http.request("POST", f"/rest/v2/tags/{int(tag_id)}/contacts:removeTags",
                              json_body={"contact_ids": chunk}, idempotent=True,
                              expect_json=False)

    def find_tag(self, name: str, category_id: str | int | None = None
                 ) -> dict[str, Any] | None:
        """The tag with this name (case-insensitive) in that category (None: any), if any."""
        want = name.strip().lower()
        for page in self.tag_pages():
            for tag in page:
                if str(tag.get("name", "")).strip().lower() != want:
                    continue
                cat = (tag.get("category") or {}).get("id")
                if category_id is None or str(cat or "") == str(category_id):
                    return tag
        return None

    def find_tag_category(self, name: str) -> dict[str, Any] | None:
        want = name.strip().lower()
        for page in self.tag_category_pages():
            for category in page:
                if str(category.get("name", "")).strip().lower() == want:
                    return category
        return None

    def find_custom_field(self, label: str) -> dict[str, Any] | None:
        want = label.strip().lower()
        for field in self.contact_model().get("custom_fields") or []:
            if str(field.get("label", "")).strip().lower() == want:
                return field
        return None

    def create_tag(self, name: str, category_id: str | int | None = None,
                   description: str | None = None) -> dict[str, Any]:
        """Create a tag (in a category). Not idempotent: after an ambiguous failure, or when Keap
        says the name exists, the tag is looked up by name instead of created twice."""
        body: dict[str, Any] = {"name": name}
        if category_id is not None:
            body["category"] = {"id": str(category_id)}
        if description:
            body["description"] = description
        return self._create_once("POST", "/rest/v2/tags", body,
                                 lambda: self.find_tag(name, category_id), f"tag {name!r}")

    def create_tag_category(self, name: str, description: str | None = None) -> dict[str, Any]:
        """Create a tag category, or return the one of that name (see create_tag)."""
        body = {"name": name, **({"description": description} if description else {})}
        return self._create_once("POST", "/rest/v2/tags/categories", body,
                                 lambda: self.find_tag_category(name),
                                 f"tag category {name!r}")

    def create_custom_field(self, label: str, field_type: str = "TEXT",
                            options: list[str] | None = None,
                            group_id: str | None = None) -> dict[str, Any]:
        """Create a contact custom field, or return the one with this label (see create_tag)."""
        body: dict[str, Any] = {"label": label, "field_type": field_type}
        if options:
            body["options"] = [{"label": o} for o in options]
        if group_id:
            body["group_id"] = str(group_id)
        return self._create_once("POST", f"{self.CONTACTS}/model/customFields", body,
                                 lambda: self.find_custom_field(label),
                                 f"custom field {label!r}")

    def _create_once(self, method: str, path: str, body: dict[str, Any],
                     lookup: Any, what: str, attempts: int = 4) -> dict[str, Any]:
        last: ApiError | None = None
        for _ in range(attempts):
            try:
                return parsed_json(self.http.request(method, path, json_body=body,
                                                     idempotent=False))
            except ApiError as e:
                last = e
                # 400 "already exists", or no clear answer: it may exist now; look before retrying
                ambiguous = e.retryable or isinstance(e, MalformedResponseError)
                if not (ambiguous or e.status == 400):
                    raise
                found = lookup()
                if found is not None:
                    return found
                if e.status == 400:
                    raise ApiError(f"keap: could not create {what}: {e}", method=method,
                                   url=path, status=400, body=e.body) from e
        assert last is not None
        raise last


    # -- REST hooks (v1: Keap v2 has no hooks API) -------------------------------------------------
    # Keap POSTs an `X-Hook-Secret` to the hook URL when a hook is created or verified; the
    # receiver (orchestration/webhooks) must answer 200 echoing it, which makes the hook Verified.
    HOOKS = "/rest/v1/hooks"

    def hook_event_keys(self) -> list[str]:
        """The event keys a hook can subscribe to (contact.add, contactGroup.applied, ...)."""
        return [str(k) for k in self.http.get_json(f"{self.HOOKS}/event_keys") or []]

    def list_hooks(self) -> list[dict[str, Any]]:
        """Every hook subscription: {key, eventKey, hookUrl, status (Unverified|Verified|
        Inactive)}."""
        return list(self.http.get_json(self.HOOKS) or [])

    def get_hook(self, key: str) -> dict[str, Any] | None:
        """One hook subscription, or None when Keap has none with this key."""
        try:
            return self.http.get_json(f"{self.HOOKS}/{key}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def create_hook(self, event_key: str, hook_url: str) -> dict[str, Any]:
        """Subscribe `hook_url` to `event_key`; Keap verifies it during the call. Not
        idempotent: after an ambiguous failure the subscription is looked up (same event key
        and URL) instead of created twice."""
        def existing() -> dict[str, Any] | None:
            return next((h for h in self.list_hooks() if h.get("eventKey") == event_key
                         and h.get("hookUrl") == hook_url), None)

        return self._create_once("POST", self.HOOKS,
                                 {"eventKey": event_key, "hookUrl": hook_url}, existing,
                                 f"hook {event_key!r}")

    def verify_hook(self, key: str) -> dict[str, Any]:
        """Ask Keap to verify (or reactivate) a hook now; returns the hook with its status."""
        return parsed_json(self.http.request("POST", f"{self.HOOKS}/{key}/verify",
                                             idempotent=True))

    def delete_hook(self, key: str) -> bool:
        """Delete a hook subscription; False when Keap had none with this key."""
        return self._delete(f"{self.HOOKS}/{key}")

    def _delete(self, path: str) -> bool:
        """DELETE `path`; False on a 404 (already gone: the outcome a resend wanted anyway)."""
        try:
            self.http.request("DELETE", path, idempotent=True, expect_json=False)
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        return True


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    size = max(1, int(size))
    for i in range(0, len(items), size):
        yield items[i:i + size]
