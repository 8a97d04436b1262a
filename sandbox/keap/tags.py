"""Keap v2 tags, tag categories and tags on contacts.

    GET  /crm/rest/v2/tags                            filter name, description, category_id,
                                                      tag_ids, since_/until_ create/update time
    POST /crm/rest/v2/tags
    GET  /crm/rest/v2/tags/{tag_id}
    GET  /crm/rest/v2/tags/categories                 filter name, description, since_/until_
    POST /crm/rest/v2/tags/categories
    GET  /crm/rest/v2/tags/categories/{tag_category_id}
    POST /crm/rest/v2/tags/{tag_id}/contacts:applyTags   {"contact_ids": [...]} -> per-contact
                                                         results (SUCCESS, DUPLICATE,
                                                         CONTACT_NOT_FOUND)
    POST /crm/rest/v2/tags/{tag_id}/contacts:removeTags  -> 204, as the spec says
    GET  /crm/rest/v2/tags/{tag_id}/contacts          contacts holding the tag (TaggedContact)
    GET  /crm/rest/v2/contacts/{contact_id}/tags      tags on a contact (AppliedTag)

A contact's tags are its `tag_ids`. When a tag was applied is kept in the `lookup` table (kind
`tag_applied`, key `<tag_id>|<time>`); for tags a world was generated with, the contact's
`create_time` stands in.
"""

from __future__ import annotations

import json
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
)
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

TAGS, CATEGORIES, CONTACTS = "tags", "tag_categories", "contacts"
NAME_MAX = 255


def _json(field: str) -> str:
    return f"ifnull(json_extract(doc, '$.{field}'), '')"


NAME_ORDER = "lower(ifnull(json_extract(doc, '$.name'), ''))"
TAG_ORDERS: dict[str, str | None] = {"name": NAME_ORDER, "create_time": _json("create_time"),
                                     "update_time": _json("update_time")}
TIME_FILTERS = {"since_create_time": ("create_time", ">="),
                "until_create_time": ("create_time", "<="),
                "since_update_time": ("update_time", ">="),
                "until_update_time": ("update_time", "<=")}


class Tags:
    def __init__(self, store: Store):
        self.store = store

    def routes(self) -> list[BaseRoute]:
        tag = f"{PREFIX}/tags/{{tag_id}}"
        return [
            Route(f"{PREFIX}/tags", self.list_tags, methods=["GET"]),
            Route(f"{PREFIX}/tags", self.create_tag, methods=["POST"]),
            Route(f"{PREFIX}/tags/categories", self.list_categories, methods=["GET"]),
            Route(f"{PREFIX}/tags/categories", self.create_category, methods=["POST"]),
            Route(f"{PREFIX}/tags/categories/{{category_id}}", self.get_category,
                  methods=["GET"]),
            Route(tag, self.get_tag, methods=["GET"]),
            Route(f"{tag}/contacts:applyTags", self.apply, methods=["POST"]),
            Route(f"{tag}/contacts:removeTags", self.remove, methods=["POST"]),
            Route(f"{tag}/contacts", self.tagged_contacts, methods=["GET"]),
            Route(f"{PREFIX}/contacts/{{contact_id}}/tags", self.contact_tags, methods=["GET"]),
        ]

    # -- tags and categories -------------------------------------------------------------------
    @handler
    async def list_tags(self, request: Request) -> Response:
        args = paging(request, TAGS)
        where = Where()
        for clause in parse_filter(args.filter):
            _tag_filter(where, clause)
        page = fetch(self.store, TAGS, TAGS, where, parse_order(args.order_by, TAG_ORDERS), args)
        return json_reply({"tags": [d for d, _ in page.rows], "next_page_token": page.next_token})

    @handler
    async def create_tag(self, request: Request) -> Response:
        body = await json_object(request)
        name = _name(body, "tag")
        doc: dict[str, Any] = {"name": name}
        category = body.get("category")
        if category is not None:
            category_id = str(category.get("id", "")) if isinstance(category, dict) else ""
            if not category_id.isdigit() or not self.store.exists(SOURCE, CATEGORIES,
                                                                   category_id):
                raise bad_request(f"Tag category {category!r} does not exist", "category.id",
                                  "tag")
            doc["category"] = {"id": category_id}
        if self._tag_named(name, doc.get("category", {}).get("id")):
            raise bad_request(f"A tag named {name!r} already exists in that category", "name",
                              "tag")
        return json_reply(self._new(TAGS, doc, body), 201)

    @handler
    async def get_tag(self, request: Request) -> Response:
        return json_reply(self._tag(request.path_params["tag_id"]))

    @handler
    async def list_categories(self, request: Request) -> Response:
        args = paging(request, CATEGORIES)
        where = Where()
        for clause in parse_filter(args.filter):
            _common_filter(where, clause, "tag_categories")
        page = fetch(self.store, CATEGORIES, CATEGORIES, where,
                     parse_order(args.order_by, TAG_ORDERS), args)
        return json_reply({"tag_categories": [d for d, _ in page.rows],
                           "next_page_token": page.next_token})

    @handler
    async def create_category(self, request: Request) -> Response:
        body = await json_object(request)
        name = _name(body, "tag_category")
        if self.store.count(SOURCE, CATEGORIES, "lower(json_extract(doc, '$.name')) = lower(?)",
                            (name,)):
            raise bad_request(f"A tag category named {name!r} already exists", "name",
                              "tag_category")
        return json_reply(self._new(CATEGORIES, {"name": name}, body), 201)

    @handler
    async def get_category(self, request: Request) -> Response:
        id_ = request.path_params["category_id"]
        doc = self.store.get(SOURCE, CATEGORIES, id_) if id_.isdigit() else None
        if doc is None:
            raise not_found("Tag category", id_)
        return json_reply(doc)

    # -- tags on contacts ----------------------------------------------------------------------
    @handler
    async def apply(self, request: Request) -> Response:
        contact_ids = await _contact_ids(request)
        tag_id = self._tag(request.path_params["tag_id"])["id"]
        results = {cid: self._change(cid, tag_id, add=True) for cid in contact_ids}
        return json_reply({"results": results})

    @handler
    async def remove(self, request: Request) -> Response:
        contact_ids = await _contact_ids(request)
        tag_id = self._tag(request.path_params["tag_id"])["id"]
        for contact_id in contact_ids:
            self._change(contact_id, tag_id, add=False)
        return Response(status_code=204)

    @handler
    async def tagged_contacts(self, request: Request) -> Response:
        tag_id = self._tag(request.path_params["tag_id"])["id"]
        applied = _applied_to_contacts(tag_id)
        args = paging(request, f"tags/{tag_id}/contacts")
        where = Where()
        where.add("EXISTS (SELECT 1 FROM json_each(doc, '$.tag_ids') AS t "
                  "WHERE CAST(t.value AS TEXT) = ?)", tag_id)
        for clause in parse_filter(args.filter):
            _tagged_contact_filter(where, clause, applied)
        orders = {"given_name": _json("given_name"), "family_name": _json("family_name"),
                  "email": "ifnull(email, '')", "applied_time": applied}
        order = parse_order(args.order_by, orders)
        page = fetch(self.store, f"tags/{tag_id}/contacts", CONTACTS, where, order, args,
                     extra=(applied, []))
        return json_reply({"contacts": [_tagged(doc, at) for doc, at in page.rows],
                           "next_page_token": page.next_token})

    @handler
    async def contact_tags(self, request: Request) -> Response:
        contact_id = request.path_params["contact_id"]
        contact = self.store.get(SOURCE, CONTACTS, contact_id) if contact_id.isdigit() else None
        if contact is None:
            raise not_found("Contact", contact_id)
        applied = _applied_on_contact(contact)
        args = paging(request, f"contacts/{contact_id}/tags")
        where = Where()
        where.add("id IN (SELECT CAST(value AS TEXT) FROM json_each(?))",
                  json.dumps(contact.get("tag_ids") or []))
        for clause in parse_filter(args.filter):
            if clause.field in ("since_applied_time", "until_applied_time"):
                _time_filter(where, applied, clause)
            else:
                _tag_filter(where, clause)
        orders = {**TAG_ORDERS, "applied_time": applied, "category_id": _json("category.id")}
        page = fetch(self.store, f"contacts/{contact_id}/tags", TAGS, where,
                     parse_order(args.order_by, orders), args, extra=(applied, []))
        return json_reply({"tags": [{"tag": doc, "applied_time": at} for doc, at in page.rows],
                           "next_page_token": page.next_token})

    # -- helpers -------------------------------------------------------------------------------
    def _tag(self, id_: str) -> dict[str, Any]:
        doc = self.store.get(SOURCE, TAGS, id_) if id_.isdigit() else None
        if doc is None:
            raise not_found("Tag", id_)
        return doc

    def _tag_named(self, name: str, category_id: str | None) -> bool:
        return bool(self.store.count(
            SOURCE, TAGS, "lower(json_extract(doc, '$.name')) = lower(?) AND "
            "ifnull(CAST(json_extract(doc, '$.category.id') AS TEXT), '') = ?",
            (name, category_id or "")))

    def _new(self, entity: str, doc: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise bad_request("description must be a string", "description", entity)
        now = iso(self.store.stamp())
        doc = {"id": new_id(self.store, entity), **doc,
               **({"description": description} if description else {}),
               "create_time": now, "update_time": now}
        records.save(self.store, SOURCE, entity, doc)
        return doc

    def _change(self, contact_id: str, tag_id: str, *, add: bool) -> str:
        """Apply or remove one tag on one contact; the per-contact result Keap reports."""
        with self.store.transaction():
            doc = self.store.get(SOURCE, CONTACTS, contact_id) if contact_id.isdigit() else None
            if doc is None:
                return "CONTACT_NOT_FOUND"
            tag_ids = [str(t) for t in doc.get("tag_ids") or []]
            if (tag_id in tag_ids) == add:
                return "DUPLICATE" if add else "SUCCESS"
            now = iso(self.store.stamp())
            doc["tag_ids"] = [*tag_ids, tag_id] if add else [t for t in tag_ids if t != tag_id]
            doc["update_time"] = now
            records.save(self.store, SOURCE, CONTACTS, doc)
            self.store.conn.execute(
                "DELETE FROM lookup WHERE source = ? AND entity = ? AND kind = 'tag_applied' "
                "AND id = ? AND key >= ? AND key < ?",
                (SOURCE, CONTACTS, contact_id, f"{tag_id}|", f"{tag_id}|{TOP}"))
            if add:
                self.store.conn.execute(
                    "INSERT INTO lookup VALUES (?, ?, 'tag_applied', ?, ?)",
                    (SOURCE, CONTACTS, f"{tag_id}|{now}", contact_id))
        return "SUCCESS"


async def _contact_ids(request: Request) -> list[str]:
    ids = (await json_object(request)).get("contact_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
        raise bad_request("contact_ids is required: a list of contact ids", "contact_ids",
                          "tag")
    return list(dict.fromkeys(str(i) for i in ids))


def _name(body: dict[str, Any], what: str) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name is required", "name", what)
    return name.strip()[:NAME_MAX]  # spec: "up to 255 characters will be saved"


def _tagged(doc: dict[str, Any], applied: str) -> dict[str, Any]:
    emails = doc.get("email_addresses") or []
    out = {"id": doc["id"], "email": emails[0].get("email") if emails else None,
           "given_name": doc.get("given_name"), "family_name": doc.get("family_name"),
           "applied_time": applied}
    return {k: v for k, v in out.items() if v is not None}


def _applied_to_contacts(tag_id: str) -> str:
    """SQL: when tag `tag_id` (digits, checked) was applied to the contact row at hand."""
    prefix = f"{tag_id}|"
    return (f"ifnull((SELECT substr(l.key, {len(prefix) + 1}) FROM lookup AS l "
            "WHERE l.source = 'keap' AND l.entity = 'contacts' AND l.kind = 'tag_applied' "
            f"AND l.id = records.id AND l.key >= '{prefix}' "
            f"AND l.key < '{prefix}' || char(1114111)), "
            "ifnull(json_extract(doc, '$.create_time'), ''))")


def _applied_on_contact(contact: dict[str, Any]) -> str:
    """SQL: when the tag row at hand was applied to `contact`."""
    fallback = str(contact.get("create_time") or "").replace("'", "''")
    return ("ifnull((SELECT substr(l.key, length(records.id) + 2) FROM lookup AS l "
            "WHERE l.source = 'keap' AND l.entity = 'contacts' AND l.kind = 'tag_applied' "
            f"AND l.id = '{int(contact['id'])}' AND l.key >= records.id || '|' "
            f"AND l.key < records.id || '|' || char(1114111)), '{fallback}')")


def _tag_filter(where: Where, clause: Clause) -> None:
    if clause.field == "category_id":
        only_equals(clause)
        if clause.value == "NONE":
            where.add("json_extract(doc, '$.category.id') IS NULL")
        else:
            where.add("CAST(json_extract(doc, '$.category.id') AS TEXT) = ?", clause.value)
    elif clause.field == "tag_ids":
        ids = id_list(clause)
        where.add(f"id IN ({', '.join('?' * len(ids))})", *ids)
    else:
        _common_filter(where, clause, "tags")


def _common_filter(where: Where, clause: Clause, what: str) -> None:
    if clause.field in ("name", "description"):
        text_match(where, f"json_extract(doc, '$.{clause.field}')", clause)
    elif clause.field in TIME_FILTERS:
        _time_filter(where, _json(TIME_FILTERS[clause.field][0]), clause)
    else:
        raise bad_request(f"Invalid filter field for {what}: {clause.field}", clause.field,
                          "filter")


def _time_filter(where: Where, expr: str, clause: Clause) -> None:
    only_equals(clause)
    op = ">=" if clause.field.startswith("since") else "<="
    # stored times come with or without milliseconds: compare them in one canonical form
    where.add(f"strftime('%Y-%m-%dT%H:%M:%fZ', {expr}) {op} ?", filter_time(clause))


def _tagged_contact_filter(where: Where, clause: Clause, applied: str) -> None:
    if clause.field in ("given_name", "family_name"):
        text_match(where, f"json_extract(doc, '$.{clause.field}')", clause)
    elif clause.field == "email":
        text_match(where, "email", clause)
    elif clause.field in ("since_applied_time", "until_applied_time"):
        _time_filter(where, applied, clause)
    else:
        raise bad_request(f"Invalid filter field for tagged contacts: {clause.field}",
                          clause.field, "filter")

