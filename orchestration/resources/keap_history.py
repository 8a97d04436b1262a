"""Keap REST v2 reads of a contact's history: notes, tasks, logged emails, opportunities and
companies (mixed into KeapClient, orchestration/resources/keap.py), and the writes a restore makes
to notes and tasks (create, update with `update_mask`, delete).

How each list is read for an incremental backup, from what the spec offers:
- notes (`GET /rest/v2/notes`, every contact's), tasks and companies: `filter=since_time==A;
  until_time==B` (the update time: the companies list says so, notes and tasks do not say
  which time), `order_by=update_time` (companies: by id; they have no update-time order);
- emails: only `start_created_time` / `end_created_time` and `order_by=created_time`; the list
  carries no body, so each email is read once more by id (`GET /rest/v2/emails/{id}`: base64
  `plain_content` / `html_content`), one call per email;
- opportunities: no time filter at all; listed newest update first (`order_by=update_time
  desc`) and read until the first one older than the window; their stages (the pipeline's
  steps) are listed whole.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from orchestration.http import ApiError, HttpClient, paginate_page_token, parsed_json
from orchestration.times import iso, parse_ts

V2 = "/rest/v2"
# notes, tasks and opportunities carry their custom fields only when asked (`fields`)
# companies leave these out unless asked for (listCompanies: `fields`)
COMPANY_FIELDS = ("address", "custom_fields", "email_address", "fax_number", "phone_number",
                  "website", "notes", "update_time", "create_time")


def _window(since: str, until: str, updated_from: datetime | None,
            updated_to: datetime | None) -> list[str]:
    return ([f"{since}=={iso(updated_from)}"] if updated_from is not None else []) + (
        [f"{until}=={iso(updated_to)}"] if updated_to is not None else [])


def decoded(content: Any) -> str | None:
    """An email body as text: base64, then UTF-8; bytes that are not UTF-8 are kept as lone
    surrogates (`surrogateescape`: the backup names the record in its manifest's
    `repaired_text`, and the original bytes stay in the base64 field)."""
    if not isinstance(content, str):
        return None
    try:
        raw = base64.b64decode(content, validate=False)
    except ValueError:
        return None
    return raw.decode("utf-8", "surrogateescape")


class KeapHistoryReads:
    http: HttpClient
    page_size: int

    def _delete(self, path: str) -> bool:     # KeapClient's: False when it is gone already
        raise NotImplementedError

    def _listing(self, path: str, key: str, filters: list[str], order_by: str | None,
                 **extra: Any) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"page_size": self.page_size, **extra}
        if filters:
            params["filter"] = ";".join(filters)
        if order_by:
            params["order_by"] = order_by
        yield from paginate_page_token(self.http, f"{V2}/{path}", params, items_key=key)

    def note_pages(self, updated_from: datetime | None = None,
                   updated_to: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        return self._listing("notes", "notes", _window("since_time", "until_time", updated_from,
                                                       updated_to), "update_time asc",
                             fields="custom_fields")

    def task_pages(self, updated_from: datetime | None = None,
                   updated_to: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        return self._listing("tasks", "tasks", _window("since_time", "until_time", updated_from,
                                                       updated_to), "update_time asc",
                             fields="custom_fields")

    def company_pages(self, updated_from: datetime | None = None,
                      updated_to: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        return self._listing("companies", "companies",
                             _window("since_time", "until_time", updated_from, updated_to),
                             "id asc", fields=",".join(COMPANY_FIELDS))

    def email_pages(self, created_from: datetime | None = None,
                    created_to: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        """Logged emails without their bodies (the list has none)."""
        return self._listing("emails", "emails", _window(
            "start_created_time", "end_created_time", created_from, created_to),
            "created_time asc")

    def email(self, email_id: str) -> dict[str, Any] | None:
        """One email with its body, plus `plain_text` / `html_text` decoded from the base64
        the API returns; None when Keap no longer has it."""
        try:
            doc = self.http.get_json(f"{V2}/emails/{email_id}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        for field, text in (("plain_content", "plain_text"), ("html_content", "html_text")):
            value = decoded(doc.get(field))
            if value is not None:
                doc[text] = value
        return doc

    def opportunity_pages(self, updated_from: datetime | None = None,
                          updated_to: datetime | None = None
                          ) -> Iterator[list[dict[str, Any]]]:
        """Every opportunity (oldest first), or those updated in the window: the list has no
        time filter, so it is read newest update first and stops at the first older one."""
        if updated_from is None and updated_to is None:
            yield from self._listing("opportunities", "opportunities", [], "created_time asc",
                                     fields="custom_fields")
            return
        for page in self._listing("opportunities", "opportunities", [], "update_time desc",
                                  fields="custom_fields"):
            kept, older = [], False
            for opp in page:
                t = parse_ts(opp["last_updated_time"]) if opp.get("last_updated_time") else None
                if t is not None and updated_from is not None and t < updated_from:
                    older = True
                    break
                if t is None or updated_to is None or t <= updated_to:
                    kept.append(opp)
            yield kept
            if older:
                return

    def opportunity_stage_pages(self) -> Iterator[list[dict[str, Any]]]:
        """Every opportunity stage (`GET /rest/v2/opportunities/stages`, replied under
        `stages`), in pipeline order: a few, read whole every day."""
        return self._listing("opportunities/stages", "stages", [], "stage_order asc")

    # -- one contact's notes and tasks, and the restore's writes --------------------------------
    # A create is not idempotent: it is resent only when the server surely did not apply it
    # (connect error, 429, 503; orchestration/http); a restore finds a lost one itself.
    def contact_notes(self, contact_id: str) -> list[dict[str, Any]] | None:
        """Every note of a contact (listNotes, with custom fields); None when Keap has no such
        contact."""
        try:
            return [n for page in self._listing(f"contacts/{contact_id}/notes", "notes", [], None,
                                                fields="custom_fields") for n in page]
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def contact_tasks(self, contact_id: str) -> list[dict[str, Any]]:
        """Every task of a contact (listTasks `filter=contact_id==`, with custom fields)."""
        return [t for page in self._listing("tasks", "tasks", [f"contact_id=={contact_id}"],
                                            None, fields="custom_fields") for t in page]

    def create_note(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """createNote (CreateNoteRequest: `user_id` required, `title` or `type`)."""
        return parsed_json(self.http.request("POST", f"{V2}/contacts/{contact_id}/notes",
                                             json_body=body, idempotent=False))

    def update_note(self, contact_id: str, note_id: str, body: dict[str, Any],
                    update_mask: list[str]) -> dict[str, Any]:
        """updateNote: PATCH the properties in `update_mask` (`user_id` is required anyway)."""
        return parsed_json(self.http.request(
            "PATCH", f"{V2}/contacts/{contact_id}/notes/{note_id}",
            params={"update_mask": ",".join(update_mask)}, json_body=body, idempotent=True))

    def delete_note(self, contact_id: str, note_id: str) -> bool:
        """False when the note (or its contact) is gone already."""
        return self._delete(f"{V2}/contacts/{contact_id}/notes/{note_id}")

    def create_task(self, body: dict[str, Any]) -> dict[str, Any]:
        """createTask (CreateTaskRequest: `assigned_to_user_id` required)."""
        return parsed_json(self.http.request("POST", f"{V2}/tasks", json_body=body,
                                             idempotent=False))

    def update_task(self, task_id: str, body: dict[str, Any],
                    update_mask: list[str]) -> dict[str, Any]:
        return parsed_json(self.http.request(
            "PATCH", f"{V2}/tasks/{task_id}", params={"update_mask": ",".join(update_mask)},
            json_body=body, idempotent=True))

    def delete_task(self, task_id: str) -> bool:
        return self._delete(f"{V2}/tasks/{task_id}")
