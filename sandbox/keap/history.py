"""Keap v2 notes, tasks, emails, opportunities and companies: a contact's history.

    GET    /crm/rest/v2/contacts/{contact_id}/notes            listNotes (one contact's)
    POST   /crm/rest/v2/contacts/{contact_id}/notes            createNote
    GET    /crm/rest/v2/contacts/{contact_id}/notes/{note_id}  getNote (PATCH, DELETE too)
    GET    /crm/rest/v2/notes                                  listAllNotes
    GET    /crm/rest/v2/tasks                                  listTasks; POST createTask
    GET    /crm/rest/v2/tasks/{task_id}                        getTask (PATCH, DELETE too)
    GET    /crm/rest/v2/emails                                 listEmails (no content); POST
                                                               createEmail (a logged email)
    GET    /crm/rest/v2/emails/{id}                            getEmail (with content); DELETE
    GET    /crm/rest/v2/opportunities[/{opportunity_id}]       list, get
    GET    /crm/rest/v2/opportunities/stages                   listOpportunityStages
    GET    /crm/rest/v2/companies[/{company_id}]               list, get

Lists page as every Keap v2 list does (keap/lists.py: page_size <= 1000, next_page_token); which
filters and orders each list takes is in keap/listings.py. An email's body is base64
(`plain_content`, `html_content`) and only `GET /emails/{id}` carries it, as in the spec. Every
write takes a fresh time from the simulated clock; a deleted contact takes its notes, tasks,
emails and opportunities along (`cascade_contact`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import records
from sandbox.keap.common import (
    PREFIX,
    SOURCE,
    bad_request,
    handler,
    json_object,
    json_reply,
    new_id,
    not_found,
    query_list,
)
from sandbox.keap.listings import (
    COMPANIES,
    EMAILS,
    NOTES,
    OPPORTUNITIES,
    OPPORTUNITY_STAGES,
    TASKS,
    Listing,
)
from sandbox.keap.lists import fetch, paging, parse_filter, parse_order
from sandbox.store import Store, iso

CHILDREN = ("notes", "tasks", "emails", "opportunities")
NOTE_TYPES = ("Appointment", "Call", "Email", "Fax", "Letter", "Other")
NOTE_MASK = ("contact_id", "title", "text", "type", "user_id", "is_pinned", "custom_fields")
TASK_FIELDS = ("title", "description", "type", "priority", "completed", "completion_time",
               "due_time", "remind_time_mins", "assigned_to_user_id", "contact_id",
               "opportunity_id", "accepted", "custom_fields")
TASK_MASK = ("id", *TASK_FIELDS, "last_updated_by_user_id")
# CreateTaskRequest / CreateUpdateTaskRequest: minutes before the due time, one of these
REMIND_MINUTES = (5, 10, 15, 30, 60, 120, 240, 480, 1440, 2880)
EMAIL_FIELDS = ("subject", "headers", "contact_id", "sent_to_address", "sent_to_cc_address_list",
                "sent_to_bcc_address_list", "sent_from_address", "sent_from_reply_address",
                "sent_time", "received_time", "opened_time", "clicked_time", "plain_content",
                "html_content", "original_provider", "original_provider_id",
                "provider_source_id")
PROVIDERS = ("UNKNOWN", "INFUSIONSOFT", "MICROSOFT", "GOOGLE")
PRIORITIES = ("CRITICAL", "ESSENTIAL", "NONESSENTIAL")
# the Keap users notes embed (BasicUser): the contacts' owners of the sandbox app
USERS = {"7": ("Dana", "Reyes"), "8": ("Sam", "Okafor"), "9": ("Lee", "Park"),
         "12": ("Ira", "Novak")}


def basic_user(uid: str) -> dict[str, Any]:
    first, last = USERS.get(uid, ("Keap", "User"))
    return {"id": uid, "given_name": first, "family_name": last,
            "email_address": f"{first.lower()}.{last.lower()}@sandbox-keap.example"}


def cascade_contact(store: Store, contact_id: str, at: str | datetime) -> None:
    """A deleted Keap contact takes its notes, tasks, emails and opportunities along."""
    for entity in CHILDREN:
        where = ("json_extract(doc, '$.contact.id') = ?" if entity == "opportunities"
                 else "parent = ?")
        for row in store.select(SOURCE, entity, where, (str(contact_id),)):
            store.delete(SOURCE, entity, row.id, at=at)


class History:
    def __init__(self, store: Store):
        self.store = store

    def routes(self) -> list[BaseRoute]:
        notes = f"{PREFIX}/contacts/{{contact_id}}/notes"
        routes = [
            Route(notes, self.list_contact_notes, methods=["GET"]),
            Route(notes, self.create_note, methods=["POST"]),
            Route(f"{notes}/{{note_id}}", self.get_note, methods=["GET"]),
            Route(f"{notes}/{{note_id}}", self.update_note, methods=["PATCH"]),
            Route(f"{notes}/{{note_id}}", self.delete_note, methods=["DELETE"]),
            Route(f"{PREFIX}/tasks", self.create_task, methods=["POST"]),
            Route(f"{PREFIX}/tasks/{{id}}", self.update_task, methods=["PATCH"]),
            Route(f"{PREFIX}/emails", self.create_email, methods=["POST"]),
        ]
        # the stages before `opportunities/{id}`, which would take "stages" for an id
        for path, listing, what in (("opportunities/stages", OPPORTUNITY_STAGES, None),
                                    ("notes", NOTES, None), ("tasks", TASKS, "Task"),
                                    ("emails", EMAILS, "Email"),
                                    ("opportunities", OPPORTUNITIES, "Opportunity"),
                                    ("companies", COMPANIES, "Company")):
            routes.append(Route(f"{PREFIX}/{path}", self._lister(listing), methods=["GET"]))
            if what is not None:
                routes += [Route(f"{PREFIX}/{path}/{{id}}", self._getter(listing, what),
                                 methods=["GET"])]
            if path in ("tasks", "emails"):
                routes.append(Route(f"{PREFIX}/{path}/{{id}}", self._deleter(listing, what),
                                    methods=["DELETE"]))
        return routes

    # -- lists and reads -----------------------------------------------------------------------
    def _list(self, request: Request, listing: Listing, scope: str,
              contact_id: str | None = None) -> Response:
        args = paging(request, scope)
        where = listing.where(parse_filter(args.filter))
        if contact_id is not None:
            where.add("parent = ?", contact_id)
        page = fetch(self.store, scope, listing.entity, where,
                     parse_order(args.order_by, listing.orders), args)
        return json_reply({listing.key or listing.entity: [listing.project(d, request,
                                                                           listed=True)
                                            for d, _ in page.rows],
                           "next_page_token": page.next_token})

    def _lister(self, listing: Listing):
        @handler
        async def list_(request: Request) -> Response:
            return self._list(request, listing, listing.entity)
        return list_

    def _getter(self, listing: Listing, what: str):
        @handler
        async def get(request: Request) -> Response:
            doc = self._doc(listing.entity, what, request.path_params["id"])
            return json_reply(listing.project(doc, request, listed=False))
        return get

    def _deleter(self, listing: Listing, what: str):
        @handler
        async def delete(request: Request) -> Response:
            doc = self._doc(listing.entity, what, request.path_params["id"])
            self.store.delete(SOURCE, listing.entity, doc["id"], at=self.store.stamp())
            return Response(status_code=204)
        return delete

    def _doc(self, entity: str, what: str, id_: str) -> dict[str, Any]:
        doc = self.store.get(SOURCE, entity, id_) if id_.isdigit() else None
        if doc is None:
            raise not_found(what, id_)
        return doc

    def _contact(self, id_: Any, resource: str = "contact_id") -> str:
        id_ = str(id_)
        if not id_.isdigit() or not self.store.exists(SOURCE, "contacts", id_):
            raise not_found("Contact", id_) if resource == "path" else bad_request(
                f"Contact {id_} does not exist", resource, "contact")
        return id_

    def _note(self, request: Request) -> dict[str, Any]:
        contact = self._contact(request.path_params["contact_id"], "path")
        doc = self._doc("notes", "Note", request.path_params["note_id"])
        if doc.get("contact_id") != contact:
            raise not_found("Note", request.path_params["note_id"])
        return doc

    # -- notes ---------------------------------------------------------------------------------
    @handler
    async def list_contact_notes(self, request: Request) -> Response:
        contact = self._contact(request.path_params["contact_id"], "path")
        return self._list(request, NOTES, f"notes:{contact}", contact)

    @handler
    async def get_note(self, request: Request) -> Response:
        return json_reply(NOTES.project(self._note(request), request, listed=False))

    @handler
    async def create_note(self, request: Request) -> Response:
        contact = self._contact(request.path_params["contact_id"], "path")
        body = await json_object(request)
        doc = {"id": new_id(self.store, "notes"), "contact_id": contact, "custom_fields": []}
        now = iso(self.store.stamp())
        doc.update(create_time=now)
        self._note_fields(doc, body, list(NOTE_MASK), now)
        records.save(self.store, SOURCE, "notes", doc)
        return json_reply(NOTES.project(doc, request, listed=False), 201)

    @handler
    async def update_note(self, request: Request) -> Response:
        doc = self._note(request)
        body = await json_object(request)
        mask = query_list(request, "update_mask") or [k for k in NOTE_MASK if k in body]
        self._note_fields(doc, body, mask, iso(self.store.stamp()))
        records.save(self.store, SOURCE, "notes", doc)
        return json_reply(NOTES.project(doc, request, listed=False))

    @handler
    async def delete_note(self, request: Request) -> Response:
        doc = self._note(request)
        self.store.delete(SOURCE, "notes", doc["id"], at=self.store.stamp())
        return Response(status_code=204)

    def _note_fields(self, doc: dict[str, Any], body: dict[str, Any], mask: list[str],
                     now: str) -> None:
        """A note's writable fields from a CreateNoteRequest / UpdateNoteRequest body."""
        bad = [m for m in mask if m not in NOTE_MASK]
        if bad:
            raise bad_request(f"Invalid update_mask field {bad[0]!r}", "update_mask")
        user = body.get("user_id")
        if not str(user or "").isdigit():
            raise bad_request("user_id is required: the id of the user writing the note",
                              "user_id", "note")
        if not (body.get("title") or body.get("type") or doc.get("title") or doc.get("type")):
            raise bad_request("A value for either title or type is required", "title", "note")
        if body.get("type") is not None and body["type"] not in NOTE_TYPES:
            raise bad_request(f"type must be one of {', '.join(NOTE_TYPES)}", "type", "note")
        for key in ("title", "text", "type", "custom_fields"):
            if key in mask and key in body:
                doc[key] = body[key]
        if "contact_id" in mask and body.get("contact_id") is not None:
            doc["contact_id"] = self._contact(body["contact_id"])
        if "is_pinned" in mask and "is_pinned" in body:
            if body["is_pinned"]:
                doc.setdefault("pinned_at", now)
            else:
                doc.pop("pinned_at", None)
        doc.setdefault("created_by_user_id", str(user))
        doc.setdefault("assigned_to_user", basic_user(str(user)))
        doc.update(last_updated_by_user_id=str(user), update_time=now)

    # -- tasks ---------------------------------------------------------------------------------
    @handler
    async def create_task(self, request: Request) -> Response:
        body = await json_object(request)
        if not str(body.get("assigned_to_user_id") or "").isdigit():
            raise bad_request("assigned_to_user_id is required", "assigned_to_user_id", "task")
        now = iso(self.store.stamp())
        doc = {"id": new_id(self.store, "tasks"), "completed": False, "accepted": False,
               "custom_fields": [], "create_time": now,
               "created_by_user_id": str(body["assigned_to_user_id"])}
        self._task_fields(doc, body, list(TASK_FIELDS), now)
        records.save(self.store, SOURCE, "tasks", doc)
        return json_reply(TASKS.project(doc, request, listed=False), 201)

    @handler
    async def update_task(self, request: Request) -> Response:
        doc = self._doc("tasks", "Task", request.path_params["id"])
        body = await json_object(request)
        mask = query_list(request, "update_mask") or [k for k in TASK_FIELDS if k in body]
        bad = [m for m in mask if m not in TASK_MASK]
        if bad:
            raise bad_request(f"Invalid update_mask field {bad[0]!r}", "update_mask")
        self._task_fields(doc, body, mask, iso(self.store.stamp()))
        records.save(self.store, SOURCE, "tasks", doc)
        return json_reply(TASKS.project(doc, request, listed=False))

    def _task_fields(self, doc: dict[str, Any], body: dict[str, Any], mask: list[str],
                     now: str) -> None:
        if body.get("priority") is not None and body["priority"] not in PRIORITIES:
            raise bad_request(f"priority must be one of {', '.join(PRIORITIES)}", "priority",
                              "task")
        remind = body.get("remind_time_mins")
        if remind is not None and (isinstance(remind, bool) or remind not in REMIND_MINUTES):
            raise bad_request("remind_time_mins must be one of "
                              f"{', '.join(map(str, REMIND_MINUTES))}", "remind_time_mins",
                              "task")
        for key in TASK_FIELDS:
            if key in mask and key in body and body[key] is not None:
                doc[key] = (self._contact(body[key]) if key == "contact_id"
                            else str(body[key]) if key.endswith("_id") else body[key])
        if doc.get("completed") and "completion_time" not in doc:
            doc["completion_time"] = now
        doc.update(modification_time=now,
                   last_updated_by_user_id=str(doc.get("assigned_to_user_id", "")))

    # -- emails --------------------------------------------------------------------------------
    @handler
    async def create_email(self, request: Request) -> Response:
        body = await json_object(request)
        if not str(body.get("sent_to_address") or "").strip():
            raise bad_request("sent_to_address is required", "sent_to_address", "email")
        for key in ("plain_content", "html_content"):
            if body.get(key) is not None:
                try:
                    base64.b64decode(str(body[key]), validate=True)
                except (binascii.Error, ValueError):
                    raise bad_request(f"{key} must be base64 encoded", key, "email") from None
        if body.get("original_provider", "UNKNOWN") not in PROVIDERS:
            raise bad_request(f"original_provider must be one of {', '.join(PROVIDERS)}",
                              "original_provider", "email")
        eid = new_id(self.store, "emails")
        doc: dict[str, Any] = {"id": eid, "original_provider": "UNKNOWN",
                               "original_provider_id": f"sandbox{int(eid):024x}"}
        doc.update({k: body[k] for k in EMAIL_FIELDS if body.get(k) is not None})
        if "contact_id" in doc:
            doc["contact_id"] = self._contact(doc["contact_id"])
        records.save(self.store, SOURCE, "emails", doc)
        return json_reply(doc, 201)
