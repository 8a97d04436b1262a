"""Keap v2 contacts.

    GET    /crm/rest/v2/contacts                 filter, order_by, page_size, page_token, fields
    POST   /crm/rest/v2/contacts                 create; ?duplicate_option=Email|EmailAndName|
                                                 EmailAndNameAndCompany updates a match instead
    GET    /crm/rest/v2/contacts/{contact_id}    fields
    PATCH  /crm/rest/v2/contacts/{contact_id}    update_mask, fields
    DELETE /crm/rest/v2/contacts/{contact_id}

Arrays sent on create or update replace the stored array whole (an empty array clears it), arrays
not sent are left alone: Keap v2's documented, awkward behaviour. Every write takes a fresh
`update_time` from the simulated clock.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox import records
from sandbox.keap import fields as keap_fields
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
from sandbox.keap.contact_body import ARRAYS, contact_fields
from sandbox.keap.history import cascade_contact
from sandbox.keap.lists import (
    TOP,
    Clause,
    Where,
    fetch,
    filter_time,
    id_list,
    only_equals,
    paging,
    parse_filter,
    parse_order,
    text_match,
)
from sandbox.store import Store, iso

ENTITY = "contacts"
ALL_FIELDS = (
    "addresses", "anniversary_date", "birth_date", "company", "contact_type", "create_time",
    "custom_fields", "email_addresses", "family_name", "fax_numbers", "given_name", "id",
    "job_title", "leadsource_id", "links", "middle_name", "notes", "origin", "owner_id",
    "phone_numbers", "preferred_locale", "preferred_name", "prefix", "referral_code",
    "score_value", "social_accounts", "source_type", "spouse_name", "suffix", "tag_ids",
    "time_zone", "update_time", "utm_parameters", "website", "account_id", "assistant_name",
    "assistant_phone", "billing_information", "created_by", "groups", "last_updated_by",
)
# What a contact carries without `fields`; the rest must be asked for (listed by /contacts/model
# as optional_properties). Modelled on v1, whose docs name custom_fields, job_title and the lead
# source as not sent by default.
DEFAULT_FIELDS = ("id", "given_name", "family_name", "middle_name", "prefix", "suffix",
                  "email_addresses", "phone_numbers", "addresses", "company", "owner_id",
                  "create_time", "update_time")
OPTIONAL_PROPERTIES = tuple(f for f in ALL_FIELDS if f not in DEFAULT_FIELDS)
CREATE_TIME = "ifnull(json_extract(doc, '$.create_time'), '')"
CREATE_TIME_INDEX = "keap_contacts_create_time"
ORDERS: dict[str, str | None] = {"id": None, "update_time": "updated_at",
                                 "create_time": CREATE_TIME, "email": "ifnull(email, '')"}
# documented filter fields the sandbox does not emulate: refused by name, not ignored
UNSUPPORTED = ("phone_number", "phone_fields", "city", "state", "website", "lead_source_name",
               *(f"{kind}_address_{part}" for kind in ("billing", "shipping", "other")
                 for part in ("line1", "locality", "region", "postal_code", "country_code")))
DUPLICATE_OPTIONS = ("Email", "EmailAndName", "EmailAndNameAndCompany")
# spec: "Contact must contain at least one item in email_addresses, phone_numbers, or addresses"
REACHABLE_BY = ("email_addresses", "phone_numbers", "addresses")


def ensure_indexes(store: Store) -> None:
    """Let `order_by=create_time` page through a million contacts with an index, like id does."""
    store.conn.execute(
        f"CREATE INDEX IF NOT EXISTS {CREATE_TIME_INDEX} ON records ({CREATE_TIME}, seq) "
        f"WHERE source = '{SOURCE}' AND entity = '{ENTITY}'")


class Contacts:
    def __init__(self, store: Store):
        self.store = store

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/contacts", self.list_contacts, methods=["GET"]),
            Route(f"{PREFIX}/contacts", self.create_contact, methods=["POST"]),
            Route(f"{PREFIX}/contacts/{{contact_id}}", self.get_contact, methods=["GET"]),
            Route(f"{PREFIX}/contacts/{{contact_id}}", self.update_contact, methods=["PATCH"]),
            Route(f"{PREFIX}/contacts/{{contact_id}}", self.delete_contact, methods=["DELETE"]),
        ]

    @handler
    async def list_contacts(self, request: Request) -> Response:
        fields = requested_fields(request)
        page_args = paging(request, ENTITY)
        where = Where()
        for clause in parse_filter(page_args.filter):
            self._filter(where, clause)
        order = parse_order(page_args.order_by, ORDERS, {"create_time": CREATE_TIME_INDEX})
        page = fetch(self.store, ENTITY, ENTITY, where, order, page_args)
        return json_reply({"contacts": [project(doc, fields) for doc, _ in page.rows],
                           "next_page_token": page.next_token})

    @handler
    async def get_contact(self, request: Request) -> Response:
        fields = requested_fields(request)
        return json_reply(project(self._contact(request.path_params["contact_id"]), fields))

    @handler
    async def create_contact(self, request: Request) -> Response:
        fields = requested_fields(request)
        option = request.query_params.get("duplicate_option")
        if option is not None and option not in DUPLICATE_OPTIONS:
            raise bad_request(f"duplicate_option must be one of {', '.join(DUPLICATE_OPTIONS)},"
                              f" got {option!r}", "duplicate_option")
        body = await json_object(request)
        # one transaction: no other writer slips a duplicate in between the check and the write
        with self.store.transaction():
            match = self._duplicate(option, body) if option else None
            doc = self._write(match, body, None)
        return json_reply(project(doc, fields), 201 if match is None else 200)

    @handler
    async def update_contact(self, request: Request) -> Response:
        fields = requested_fields(request)
        mask = query_list(request, "update_mask")
        unknown = [m for m in mask if m not in ALL_FIELDS]
        if unknown:
            raise bad_request(f"Invalid update_mask field {unknown[0]!r}", "update_mask")
        body = await json_object(request)
        with self.store.transaction():  # read-modify-write of one contact, atomically
            contact = self._contact(request.path_params["contact_id"])
            doc = self._write(contact, body, mask or None)
        return json_reply(project(doc, fields))

    @handler
    async def delete_contact(self, request: Request) -> Response:
        contact = self._contact(request.path_params["contact_id"])
        at = self.store.stamp()
        with self.store.transaction():   # its notes, tasks, emails and opportunities go along
            cascade_contact(self.store, contact["id"], at)
            self.store.delete(SOURCE, ENTITY, contact["id"], at=at)
        return Response(status_code=204)

    # -- helpers -------------------------------------------------------------------------------
    def _contact(self, id_: str) -> dict[str, Any]:
        doc = self.store.get(SOURCE, ENTITY, id_) if id_.isdigit() else None
        if doc is None:
            raise not_found("Contact", id_)
        return doc

    def _write(self, existing: dict[str, Any] | None, body: dict[str, Any],
               mask: list[str] | None) -> dict[str, Any]:
        """Create (existing None) or update a contact from a request body; the stored doc."""
        now = iso(self.store.stamp())
        changes = contact_fields(self.store, body, existing, now)
        if mask is not None:
            changes = {k: v for k, v in changes.items() if k in mask}
        if existing is None and not any(changes.get(k) for k in REACHABLE_BY):
            raise bad_request("Contact must contain at least one item in email_addresses, "
                              "phone_numbers, or addresses", "email_addresses", "contact")
        if existing is None:
            doc: dict[str, Any] = {"id": new_id(self.store, ENTITY), "source_type": "API",
                                   **{k: [] for k in ARRAYS}, "tag_ids": [],
                                   "create_time": now}
        else:
            doc = dict(existing)
        for key, value in changes.items():
            if value is None:
                doc.pop(key, None)
                if key in ARRAYS:
                    doc[key] = []
            else:
                doc[key] = value
        doc["update_time"] = now
        records.save(self.store, SOURCE, ENTITY, doc)
        return doc

    def _duplicate(self, option: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The oldest contact matching the body under a duplicate_option, if any."""
        email = _primary_email(body)
        if email is None:
            return None
        ids = sorted(self.store.find_by_key(SOURCE, ENTITY, "email", email), key=int)
        for id_ in ids:
            doc = self.store.get(SOURCE, ENTITY, id_)
            if doc is None:
                continue
            if option != "Email" and not _same_name(doc, body):
                continue
            if option == "EmailAndNameAndCompany" and not _same_company(doc, body):
                continue
            return doc
        return None

    def _filter(self, where: Where, clause: Clause) -> None:
        name = clause.field
        if name == "email":
            only_equals(clause)
            value = clause.value.strip().lower()
            sub = ("id IN (SELECT id FROM lookup WHERE source = 'keap' AND entity = 'contacts' "
                   "AND kind = 'email' AND key {})")
            if value.endswith("*"):
                where.add(sub.format(">= ? AND key < ?"), value[:-1], value[:-1] + TOP)
            else:
                where.add(sub.format("= ?"), value)
            where.selective = where.selective or len(value) > 1
        elif name in ("given_name", "family_name", "middle_name"):
            text_match(where, f"json_extract(doc, '$.{name}')", clause)
        elif name in ("ids", "contact_ids"):
            ids = [str(int(v)) for v in id_list(clause)]
            where.add(f"id IN ({', '.join('?' * len(ids))})", *ids)
            where.selective = True
        elif name == "contact_id":
            if not clause.value.isdigit():
                raise bad_request(f"contact_id must be a number, got {clause.value!r}", name)
            where.add(f"seq {'=' if clause.op == '==' else clause.op} ?", int(clause.value))
        elif name in ("start_update_time", "end_update_time"):
            only_equals(clause)
            where.add(f"updated_at {'>=' if name.startswith('start') else '<='} ?",
                      filter_time(clause))
        elif name == "company_id":
            only_equals(clause)
            where.add("CAST(json_extract(doc, '$.company.id') AS TEXT) = ?", clause.value)
        elif name in UNSUPPORTED:
            raise bad_request(f"filter field {name} is valid on Keap but not emulated by the "
                              "sandbox", name, "filter")
        else:
            self._custom_field_filter(where, clause)

    def _custom_field_filter(self, where: Where, clause: Clause) -> None:
        definition = keap_fields.by_field_name(self.store, clause.field)
        if definition is None:
            raise bad_request(f"Invalid filter field: {clause.field}", clause.field, "filter")
        content = "json_extract(cf.value, '$.content')"
        inner = Where()
        inner.add("CAST(json_extract(cf.value, '$.id') AS TEXT) = ?", str(definition["id"]))
        kind = definition.get("field_type")
        op = "=" if clause.op == "==" else clause.op
        if clause.op == "==" and kind not in keap_fields.NUMERIC | {"DATE", "DATE_TIME"}:
            text_match(inner, content, clause)
        elif kind in keap_fields.NUMERIC:
            try:
                number = float(clause.value)
            except ValueError:
                raise bad_request(f"{clause.field} is numeric: {clause.value!r} is not a "
                                  "number", clause.field, "filter") from None
            inner.add(f"CAST({content} AS REAL) {op} ?", number)
        elif kind == "DATE":  # a date-only value against the date part of the filter time
            inner.add(f"{content} {op} ?", filter_time(clause)[:10])
        elif kind == "DATE_TIME":
            inner.add(f"strftime('%Y-%m-%dT%H:%M:%fZ', {content}) {op} ?", filter_time(clause))
        else:
            raise bad_request(f"filter field {clause.field} ({kind}) supports only ==",
                              clause.field, "filter")
        where.add("EXISTS (SELECT 1 FROM json_each(doc, '$.custom_fields') AS cf WHERE "
                  + " AND ".join(inner.sql) + ")", *inner.params)


def requested_fields(request: Request) -> tuple[str, ...]:
    fields = query_list(request, "fields")
    unknown = [f for f in fields if f not in ALL_FIELDS]
    if unknown:
        raise bad_request(f"Invalid fields value {unknown[0]!r}: available fields are "
                          f"{','.join(ALL_FIELDS)}", "fields")
    # the id always comes back: a record a client cannot name is of no use to it
    return ("id", *fields) if fields else DEFAULT_FIELDS


def project(doc: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: doc[k] for k in fields if k in doc}


def _primary_email(body: dict[str, Any]) -> str | None:
    """The address a duplicate check looks for: EMAIL1, else the first one sent."""
    items = [e for e in body.get("email_addresses") or []
             if isinstance(e, dict) and isinstance(e.get("email"), str) and e["email"].strip()]
    items.sort(key=lambda e: e.get("field") != "EMAIL1")
    return items[0]["email"].strip().lower() if items else None


def _norm(value: Any) -> str:
    return str(value or "").strip().lower()


def _same_name(doc: dict[str, Any], body: dict[str, Any]) -> bool:
    return all(_norm(doc.get(k)) == _norm(body.get(k)) for k in ("given_name", "family_name"))


def _same_company(doc: dict[str, Any], body: dict[str, Any]) -> bool:
    mine, theirs = doc.get("company") or {}, body.get("company") or {}
    if mine.get("id") and theirs.get("id"):
        return str(mine["id"]) == str(theirs["id"])
    return _norm(mine.get("company_name")) == _norm(theirs.get("company_name"))
