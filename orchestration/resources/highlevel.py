"""HighLevel (LeadConnector) API v2 client: Bearer token + `Version` header, one location."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg

from orchestration.http import ApiError, HttpClient, Pacer, RetryPolicy, parsed_json
from orchestration.rate_budget import shared_budget
from orchestration.resources.common import pause_when_spent, resolve_base
from orchestration.times import iso
from sandbox import credentials

API_VERSION = "2021-07-28"
SEARCH_PAGE_LIMIT = 500      # POST /contacts/search pageLimit maximum
OPPORTUNITY_LIMIT = 100      # GET /opportunities/search limit maximum
CONVERSATION_LIMIT = 100     # GET /conversations/search limit (default 20)
EXPORT_LIMIT = 500           # GET /conversations/messages/export limit maximum
CONVERSATIONS_VERSION = {"Version": "2021-04-15"}
# an email's headers the backup keeps (GetEmailMessageResponseDto)
EMAIL_HEADERS = ("subject", "from", "to", "cc", "bcc", "threadId", "replyToMessageId",
                 "provider")   # the API version conversations.json names
CALENDARS_VERSION = {"Version": "2021-04-15"}       # and calendars.json


class HighLevelResource(dg.ConfigurableResource):
    """HighLevel API v2 for one location. Empty `base_url` means the built-in sandbox."""

    base_url: str = ""                 # https://services.leadconnectorhq.com
    token: str = ""                    # Private Integration Token or location access token
    location_id: str = ""
    requests_per_window: int = 95      # HighLevel allows 100 per 10 s per location
    window_seconds: float = 10.0
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 30.0

    def open(self) -> HighLevelClient:
        base, sandbox = resolve_base(self.base_url, "/highlevel")
        token = credentials.HIGHLEVEL_TOKEN if sandbox else self.token
        location = credentials.HIGHLEVEL_LOCATION_ID if sandbox else self.location_id
        if not (token and location):
            raise dg.DagsterInvariantViolationError(
                "HighLevel needs HIGHLEVEL_TOKEN and HIGHLEVEL_LOCATION_ID when "
                "HIGHLEVEL_BASE_URL is set")
        return HighLevelClient(
            base, token, location,
            pacer=Pacer([(self.requests_per_window, self.window_seconds)],
                        shared=shared_budget("highlevel", base, location, token)),
            retry=RetryPolicy(max_attempts=self.max_attempts, base_delay=self.backoff_seconds,
                              max_delay=self.max_backoff_seconds), timeout=self.timeout_seconds)


class HighLevelClient:
    def __init__(self, base_url: str, token: str, location_id: str, *, pacer: Pacer,
                 retry: RetryPolicy, timeout: float):
        self.location_id = location_id
        self.http = HttpClient(
            base_url, name="highlevel", pacer=pacer, retry=retry, timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Version": API_VERSION,
                     "Accept": "application/json"},
            rate_headers=pause_when_spent("x-ratelimit-remaining",
                                          interval_ms_header="x-ratelimit-interval-milliseconds"))

    def close(self) -> None:
        self.http.close()

    @property
    def calls(self) -> int:
        return self.http.calls

    def contact_pages(self, *, updated_from: datetime | None = None,
                      updated_to: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        """Contacts via POST /contacts/search, deep-paged with `searchAfter`."""
        body: dict[str, Any] = {"locationId": self.location_id, "pageLimit": SEARCH_PAGE_LIMIT,
                                "sort": [{"field": "dateUpdated", "direction": "asc"}]}
        if updated_from is not None or updated_to is not None:
            window: dict[str, str] = {}
            if updated_from is not None:
                window["gte"] = iso(updated_from)
            if updated_to is not None:
                window["lte"] = iso(updated_to)
            body["filters"] = [{"field": "dateUpdated", "operator": "range", "value": window}]
        while True:
            page = parsed_json(self.http.request("POST", "/contacts/search", json_body=body,
                                                 idempotent=True))
            contacts = page.get("contacts") or []
            # each hit carries the cursor to continue after it: paging data, not the contact's
            after = contacts[-1].get("searchAfter") if contacts else None
            for c in contacts:
                c.pop("searchAfter", None)
            yield contacts
            if len(contacts) < SEARCH_PAGE_LIMIT or not after:
                return
            body = {**body, "searchAfter": after}

    def opportunity_pages(self) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"location_id": self.location_id, "limit": OPPORTUNITY_LIMIT}
        while True:
            page = self.http.get_json("/opportunities/search", params=params)
            items = page.get("opportunities") or []
            yield items
            meta = page.get("meta") or {}
            if not items or not meta.get("startAfterId"):
                return
            params = {**params, "startAfter": meta.get("startAfter"),
                      "startAfterId": meta.get("startAfterId")}

    def pipelines(self) -> list[dict[str, Any]]:
        return self.http.get_json("/opportunities/pipelines",
                                  params={"locationId": self.location_id}).get("pipelines", [])

    def workflows(self) -> list[dict[str, Any]]:
        return self.http.get_json("/workflows/",
                                  params={"locationId": self.location_id}).get("workflows", [])

    def custom_fields(self) -> list[dict[str, Any]]:
        return self.http.get_json(f"/locations/{self.location_id}/customFields").get(
            "customFields", [])

    def tags(self) -> list[dict[str, Any]]:
        return self.http.get_json(f"/locations/{self.location_id}/tags").get("tags", [])

    def custom_values(self) -> list[dict[str, Any]]:
        return self.http.get_json(f"/locations/{self.location_id}/customValues").get(
            "customValues", [])

    def conversation_pages(self) -> Iterator[list[dict[str, Any]]]:
        """Every conversation via GET /conversations/search, the most recently updated first,
        continued with `startAfterDate` from the last one's `sort` value. The next page starts
        at that value again (a conversation sharing it with the last one is not skipped) and
        what was already served is dropped, so each conversation is yielded once."""
        params: dict[str, Any] = {"locationId": self.location_id, "limit": CONVERSATION_LIMIT,
                                  "sort": "desc", "sortBy": "last_message_date"}
        seen: set[str] = set()
        while True:
            page = self.http.get_json("/conversations/search", params=params,
                                      headers=CONVERSATIONS_VERSION)
            items = page.get("conversations") or []
            fresh = [c for c in items if c.get("id") not in seen]
            seen.update(c.get("id") for c in fresh)
            last = (items[-1].get("sort") or [None])[0] if items else None
            for c in fresh:
                c.pop("sort", None)   # paging data, not the conversation's
            if fresh:
                yield fresh
            if len(items) < CONVERSATION_LIMIT or last is None:
                return
            # all of a page at one instant: continue strictly after it
            params = {**params, "startAfterDate": int(last) + (1 if fresh else 0)}

    def message_pages(self, *, updated_from: datetime | None = None,
                      updated_to: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        """Messages via the location-wide export (GET /conversations/messages/export), oldest
        update first, in two passes: every channel but email (the export's default), then
        `channel=Email`; the window filters the update time, both ends inclusive."""
        for channel in (None, "Email"):
            params: dict[str, Any] = {"locationId": self.location_id, "limit": EXPORT_LIMIT,
                                      "sortBy": "updatedAt", "sortOrder": "asc"}
            if channel:
                params["channel"] = channel
            if updated_from is not None:
                params["startDate"] = iso(updated_from)
            if updated_to is not None:
                params["endDate"] = iso(updated_to)
            while True:
                page = self.http.get_json("/conversations/messages/export", params=params,
                                          headers=CONVERSATIONS_VERSION)
                items = page.get("messages") or []
                if channel == "Email":
                    for message in items:
                        self._with_email_headers(message)
                yield items
                cursor = page.get("nextCursor")
                if not items or not cursor:
                    break
                params = {**params, "cursor": cursor}

    def _with_email_headers(self, message: dict[str, Any]) -> None:
        """An email's headers (subject, from, to, cc, bcc, thread) are only in
        GET /conversations/messages/email/{id}, not in the export: one call per email read,
        kept under `email` (an email gone since its page was read keeps none)."""
        try:
            email = self.http.get_json(f"/conversations/messages/email/{message['id']}",
                                       headers=CONVERSATIONS_VERSION)
        except ApiError as e:
            if e.status in (400, 404):
                return
            raise
        message["email"] = {k: email[k] for k in EMAIL_HEADERS if k in email}

    def calendars(self) -> list[dict[str, Any]]:
        """Every calendar of the location (GET /calendars/, unpaged)."""
        return self.http.get_json("/calendars/", params={"locationId": self.location_id},
                                  headers=CALENDARS_VERSION).get("calendars", [])

    def calendar_events(self, calendar_id: str, start: datetime,
                        end: datetime) -> list[dict[str, Any]]:
        """A calendar's appointments starting in [start, end] (GET /calendars/events: epoch
        ms, both ends inclusive, unpaged)."""
        return self.http.get_json("/calendars/events", headers=CALENDARS_VERSION, params={
            "locationId": self.location_id, "calendarId": calendar_id,
            "startTime": str(int(start.timestamp() * 1000)),
            "endTime": str(int(end.timestamp() * 1000))}).get("events") or []

    def appointment(self, event_id: str) -> dict[str, Any] | None:
        """One appointment whole, or None when it is gone (HighLevel answers 400, or 404)."""
        try:
            return self.http.get_json(f"/calendars/events/appointments/{event_id}",
                                      headers=CALENDARS_VERSION).get("event")
        except ApiError as e:
            if e.status in (400, 404):
                return None
            raise

    def contact_children(self, contact_id: str, kind: str) -> list[dict[str, Any]] | None:
        """Every note (kind "notes"), task ("tasks") or appointment ("appointments", replied as
        `events`) of a contact, in one unpaged call; None when the location has no such contact
        (HighLevel answers 400, or 404)."""
        key = "events" if kind == "appointments" else kind
        try:
            items = self.http.get_json(f"/contacts/{contact_id}/{kind}").get(key) or []
        except ApiError as e:
            if e.status in (400, 404):
                return None
            raise
        for item in items:
            item.setdefault("contactId", contact_id)
        return items


    # -- writes (restore) -----------------------------------------------------------------------
    # A create is not idempotent: it is resent only when the server surely did not apply it
    # (connect error, 429, 503; see orchestration/http). HighLevel refuses a second contact with
    # the same email/phone and a second opportunity of a contact in one pipeline, so a create
    # whose reply was lost is found again by the caller instead of duplicated.
    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        """One contact, or None when the location has none with this id."""
        try:
            return self.http.get_json(f"/contacts/{contact_id}").get("contact")
        except ApiError as e:
            if e.status in (400, 404):
                return None
            raise

    def contacts_added_since(self, since: str, *, first_name: str | None,
                             last_name: str | None, limit: int = 100) -> list[dict[str, Any]]:
        """Contacts added at or after `since` (ISO-8601, the vendor's clock) with this first and
        last name (case-insensitive; a missing name matches contacts without one), oldest
        first, at most `limit`: POST /contacts/search with `dateAdded` range and
        `firstNameLowerCase` / `lastNameLowerCase` filters. Read-only."""
        filters: list[dict[str, Any]] = [
            {"field": "dateAdded", "operator": "range", "value": {"gte": since}}]
        for field, value in (("firstNameLowerCase", first_name),
                             ("lastNameLowerCase", last_name)):
            text = (value or "").strip().lower()
            filters.append({"field": field, "operator": "eq", "value": text} if text
                           else {"field": field, "operator": "not_exists"})
        page = parsed_json(self.http.request(
            "POST", "/contacts/search", idempotent=True, json_body={
                "locationId": self.location_id, "pageLimit": min(limit, SEARCH_PAGE_LIMIT),
                "filters": filters, "sort": [{"field": "dateAdded", "direction": "asc"}]}))
        contacts = page.get("contacts") or []
        for c in contacts:
            c.pop("searchAfter", None)
        return contacts

    def create_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /contacts/ (tags sent here become the contact's whole tag list)."""
        return parsed_json(self.http.request(
            "POST", "/contacts/", json_body={**body, "locationId": self.location_id},
            idempotent=False))["contact"]

    def update_contact(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /contacts/{id}: the properties sent are set (null clears one); `tags`, when
        sent, REPLACE every tag of the contact."""
        return parsed_json(self.http.request("PUT", f"/contacts/{contact_id}",
                                             json_body=body, idempotent=True))["contact"]

    def delete_contact(self, contact_id: str) -> bool:
        """False when the contact was already gone (a resend after a lost reply lands here)."""
        return self._delete(f"/contacts/{contact_id}")

    def _delete(self, path: str) -> bool:
        """DELETE `path`; False when HighLevel no longer has it (it answers 400, or 404)."""
        try:
            self.http.request("DELETE", path, idempotent=True)
        except ApiError as e:
            if e.status in (400, 404):
                return False
            raise
        return True

    def add_tags(self, contact_id: str, tags: list[str]) -> list[str]:
        """Add tags (names) to a contact, keeping its others; returns its tags."""
        return parsed_json(self.http.request("POST", f"/contacts/{contact_id}/tags",
                                             json_body={"tags": tags}, idempotent=True))["tags"]

    def remove_tags(self, contact_id: str, tags: list[str]) -> list[str]:
        return parsed_json(self.http.request("DELETE", f"/contacts/{contact_id}/tags",
                                             json_body={"tags": tags}, idempotent=True))["tags"]

    def create_custom_field(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /locations/{locationId}/customFields (CreateCustomFieldsDTO: name, dataType,
        placeholder, position, model, ...; no picklist options)."""
        return parsed_json(self.http.request(
            "POST", f"/locations/{self.location_id}/customFields", json_body=body,
            idempotent=False))["customField"]

    def create_tag(self, name: str) -> dict[str, Any]:
        """POST /locations/{locationId}/tags (tagBody: name)."""
        return parsed_json(self.http.request(
            "POST", f"/locations/{self.location_id}/tags", json_body={"name": name},
            idempotent=False))["tag"]

    def create_custom_value(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /locations/{locationId}/customValues (customValuesDTO: name, value)."""
        return parsed_json(self.http.request(
            "POST", f"/locations/{self.location_id}/customValues", json_body=body,
            idempotent=False))["customValue"]

    def update_custom_value(self, value_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return parsed_json(self.http.request(
            "PUT", f"/locations/{self.location_id}/customValues/{value_id}", json_body=body,
            idempotent=True))["customValue"]

    def create_opportunity(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /opportunities/ (needs pipelineId, name, status, contactId)."""
        return parsed_json(self.http.request(
            "POST", "/opportunities/", json_body={**body, "locationId": self.location_id},
            idempotent=False))["opportunity"]

    def update_opportunity(self, opportunity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return parsed_json(self.http.request("PUT", f"/opportunities/{opportunity_id}",
                                             json_body=body, idempotent=True))["opportunity"]

    def delete_opportunity(self, opportunity_id: str) -> bool:
        return self._delete(f"/opportunities/{opportunity_id}")

    # a contact's notes and tasks (contacts.json): `kind` is "notes" or "tasks"; the reply holds
    # the record under "note" / "task"
    def create_child(self, contact_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /contacts/{contactId}/notes (NotesDTO: body required) or /tasks
        (CreateTaskParams: title, dueDate, completed required)."""
        return parsed_json(self.http.request("POST", f"/contacts/{contact_id}/{kind}",
                                             json_body=body, idempotent=False))[kind[:-1]]

    def update_child(self, contact_id: str, kind: str, child_id: str,
                     body: dict[str, Any]) -> dict[str, Any]:
        """PUT /contacts/{contactId}/notes/{id} (UpdateNoteDTO) or /tasks/{taskId}
        (UpdateTaskBody): the properties sent are set."""
        return parsed_json(self.http.request("PUT", f"/contacts/{contact_id}/{kind}/{child_id}",
                                             json_body=body, idempotent=True))[kind[:-1]]

    def delete_child(self, contact_id: str, kind: str, child_id: str) -> bool:
        """False when the note or task (or its contact) is gone already."""
        return self._delete(f"/contacts/{contact_id}/{kind}/{child_id}")

    def find_opportunity(self, contact_id: str, pipeline_id: str) -> dict[str, Any] | None:
        """The contact's opportunity in a pipeline (HighLevel allows one), if any."""
        page = self.http.get_json("/opportunities/search", params={
            "location_id": self.location_id, "contact_id": contact_id,
            "pipeline_id": pipeline_id, "limit": 1})
        items = page.get("opportunities") or []
        return items[0] if items else None
