"""HighLevel contact listing: the search API and the deprecated list.

POST /contacts/search   body {locationId, pageLimit (1..500), page | searchAfter, filters, sort,
                        query} -> {contacts, total}. `page` paging reaches the first 10,000
                        records; beyond that a client pages with `searchAfter`, the
                        [sort value, id] pair each returned contact carries.
GET  /contacts/         ?locationId=&limit<=100&startAfter=&startAfterId=&query= (deprecated)
                        -> {contacts, count, meta: {total, nextPageUrl, startAfter,
                        startAfterId}},
                        oldest first; `startAfter` is the last contact's dateAdded in epoch ms.

Filters (white-label docs shape): {field, operator, value} or {group: AND|OR, filters: [...]};
operators eq, not_eq, contains, not_contains, exists, not_exists, range ({gte, gt, lte, lt});
dates take ISO-8601 or epoch milliseconds. Everything pages in SQL with keyset conditions on
partial indexes (see highlevel/vendor.py), so a million contacts page as fast as a hundred.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.highlevel.common import (
    HighLevelError,
    after_key,
    check_location,
    from_millis,
    int_param,
    invalid,
    json_body,
    millis,
    next_page_url,
    query_params,
    routes,
)
from sandbox.store import Store, iso, parse_ts

CONTACTS = "source = 'highlevel' AND entity = 'contacts'"  # literal: partial indexes need it
ADDED = "json_extract(doc, '$.dateAdded')"
SORTS = {"dateAdded": ADDED, "dateUpdated": "updated_at"}
MAX_PAGE_LIMIT = 500
PAGE_WINDOW = 10_000
OPERATORS = ("eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range")
RANGE = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
DATE_FIELDS = ("dateAdded", "dateUpdated")
FIELDS = {
    "id": "id", "email": "email", "dateUpdated": "updated_at", "dateAdded": ADDED,
    **{f: f"json_extract(doc, '$.{f}')" for f in (
        "phone", "firstName", "lastName", "firstNameLowerCase", "lastNameLowerCase",
        "fullNameLowerCase", "companyName", "source", "country", "city", "state",
        "postalCode", "type", "assignedTo", "businessId", "dnd", "timezone", "website")},
}
TEXT_QUERY = ("email", "json_extract(doc, '$.fullNameLowerCase')",
              "json_extract(doc, '$.phone')", "json_extract(doc, '$.companyName')")
SEARCH_BODY = ("locationId", "page", "pageLimit", "searchAfter", "filters", "sort", "query")


# -- filters ----------------------------------------------------------------------------------

def compile_filters(filters: Any, path: str = "filters") -> tuple[str, list[Any]]:
    """SQL (AND of every filter) and its parameters."""
    if filters is None:
        return "1", []
    if not isinstance(filters, list):
        raise invalid(f"{path} must be an array")
    compiled = [compile_filter(f, f"{path}.{i}") for i, f in enumerate(filters)]
    return _join(compiled, "AND")


def _join(compiled: list[tuple[str, list[Any]]], op: str) -> tuple[str, list[Any]]:
    if not compiled:
        return "1", []
    sql = f" {op} ".join(f"({s})" for s, _ in compiled)
    return sql, [p for _, params in compiled for p in params]


def compile_filter(item: Any, path: str) -> tuple[str, list[Any]]:
    if not isinstance(item, dict):
        raise invalid(f"{path} must be an object")
    if "group" in item:
        group, subs = item.get("group"), item.get("filters")
        if group not in ("AND", "OR"):
            raise invalid(f"{path}.group must be one of the following values: AND, OR")
        if not isinstance(subs, list) or not subs:
            raise invalid(f"{path}.filters must be a non-empty array")
        return _join([compile_filter(s, f"{path}.filters.{i}") for i, s in enumerate(subs)],
                     group)
    field, op, value = item.get("field"), item.get("operator"), item.get("value")
    if field not in FIELDS and field != "tags":
        raise invalid(f"{path}.field must be one of the following values: "
                      + ", ".join([*FIELDS, "tags"]))
    if op not in OPERATORS:
        raise invalid(f"{path}.operator must be one of the following values: "
                      + ", ".join(OPERATORS))
    if field == "tags":
        return _tags_filter(op, value, path)
    return _field_filter(FIELDS[field], field, op, value, path)


def _field_filter(expr: str, field: str, op: str, value: Any,
                  path: str) -> tuple[str, list[Any]]:
    if op == "exists":
        return f"{expr} IS NOT NULL AND {expr} != ''", []
    if op == "not_exists":
        return f"{expr} IS NULL OR {expr} = ''", []
    if op == "range":
        if not isinstance(value, dict) or not value or set(value) - set(RANGE):
            raise invalid(f"{path}.value must be an object of gte, gt, lte and/or lt")
        return (" AND ".join(f"{expr} {RANGE[k]} ?" for k in value),
                [_coerce(field, v, path) for v in value.values()])
    v = _coerce(field, value, path)
    if op == "eq":
        return f"{expr} = ?", [v]
    if op == "not_eq":
        return f"{expr} IS NULL OR {expr} != ?", [v]
    pattern = "%" + str(v).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if op == "contains":
        return f"{expr} LIKE ? ESCAPE '\\'", [pattern]
    return f"{expr} IS NULL OR {expr} NOT LIKE ? ESCAPE '\\'", [pattern]


def _tags_filter(op: str, value: Any, path: str) -> tuple[str, list[Any]]:
    if op in ("exists", "not_exists"):
        cond = "json_array_length(doc, '$.tags') > 0"
        return (cond if op == "exists" else f"coalesce({cond}, 0) = 0"), []
    if op == "range":
        raise invalid(f"{path}.operator range does not apply to tags")
    tags = value if isinstance(value, list) else [value]
    if not tags or not all(isinstance(t, str) and t for t in tags):
        raise invalid(f"{path}.value must be a tag name or an array of tag names")
    has = "EXISTS (SELECT 1 FROM json_each(doc, '$.tags') WHERE value = ?)"
    sql = " AND ".join([has] * len(tags))
    params = [t.strip().lower() for t in tags]
    return (sql if op in ("eq", "contains") else f"NOT ({sql})"), params


def _coerce(field: str, value: Any, path: str) -> Any:
    if field in DATE_FIELDS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return from_millis(int(value), f"{path}.value")
        try:
            return iso(parse_ts(str(value)))
        except ValueError:
            raise invalid(f"{path}.value must be an ISO-8601 date or epoch milliseconds") from None
    if field == "dnd":
        if not isinstance(value, bool):
            raise invalid(f"{path}.value must be a boolean value")
        return int(value)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise invalid(f"{path}.value must be a string")
    return str(value).strip().lower() if field == "email" else str(value)


# -- search -----------------------------------------------------------------------------------

def parse_sort(sort: Any) -> tuple[str, str]:
    """(sort expression, ASC|DESC); newest added first unless told otherwise."""
    if sort is None or sort == []:
        return ADDED, "DESC"
    if not isinstance(sort, list) or len(sort) != 1 or not isinstance(sort[0], dict):
        raise invalid("sort must be an array of one {field, direction} object")
    field, direction = sort[0].get("field"), sort[0].get("direction", "desc")
    if field not in SORTS:
        raise invalid("sort.0.field must be one of the following values: " + ", ".join(SORTS))
    if direction not in ("asc", "desc"):
        raise invalid("sort.0.direction must be one of the following values: asc, desc")
    return SORTS[field], direction.upper()


def parse_search_after(value: Any) -> tuple[str, str]:
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str)
            or not str(value[0]).lstrip("-").isdigit()):
        raise invalid("searchAfter must be the [sort value, id] array of the last contact")
    return from_millis(value[0], "searchAfter.0"), value[1]


def text_query(query: Any) -> tuple[str, list[Any]]:
    if query in (None, ""):
        return "1", []
    if not isinstance(query, str):
        raise invalid("query must be a string")
    like = "%" + query.strip().lower().replace("%", "").replace("_", "") + "%"
    return " OR ".join(f"lower({e}) LIKE ?" for e in TEXT_QUERY), [like] * len(TEXT_QUERY)


def pick_index(filters: Any, expr: str) -> str:
    """The index to read: the sort's, unless an exact email filter narrows the search to a
    handful of rows (SQLite's planner, without statistics, would sort the whole table)."""
    if isinstance(filters, list) and any(
            isinstance(f, dict) and f.get("field") == "email" and f.get("operator") == "eq"
            for f in filters):
        return "records_email"
    return "hl_contacts_added" if expr == ADDED else "hl_contacts_updated"


async def search(store: Store, request: Request) -> Response:
    body = await json_body(request, SEARCH_BODY)
    check_location(body.get("locationId"))
    limit = int_param(body.get("pageLimit"), "pageLimit", maximum=MAX_PAGE_LIMIT)
    expr, direction = parse_sort(body.get("sort"))
    where, params = _join([compile_filters(body.get("filters")), text_query(body.get("query"))],
                          "AND")
    total = store.conn.execute(f"SELECT count(*) FROM records WHERE {CONTACTS} AND ({where})",
                               params).fetchone()[0]
    offset, keyset, key_params = 0, "1", []
    if body.get("searchAfter") is not None:
        if "page" in body:
            raise invalid("page should not be sent together with searchAfter")
        keyset, key_params = after_key(expr, *parse_search_after(body["searchAfter"]),
                                       direction=direction)
    else:
        page = int_param(body.get("page"), "page", default=1)
        if page * limit > PAGE_WINDOW:
            raise HighLevelError(400, f"page * pageLimit must not exceed {PAGE_WINDOW}: use "
                                      "searchAfter to page beyond the first 10,000 contacts")
        offset = (page - 1) * limit
    index = pick_index(body.get("filters"), expr)
    rows = store.conn.execute(
        f"SELECT doc, {expr}, id FROM records INDEXED BY {index} "
        f"WHERE {CONTACTS} AND {keyset} AND ({where}) "
        f"ORDER BY {expr} {direction}, id {direction} LIMIT ? OFFSET ?",
        [*key_params, *params, limit, offset]).fetchall()
    contacts = [{**json.loads(doc), "searchAfter": [millis(key), cid]} for doc, key, cid in rows]
    return JSONResponse({"contacts": contacts, "total": total})


# -- the deprecated list ----------------------------------------------------------------------

LIST_PARAMS = ("locationId", "startAfterId", "startAfter", "query", "limit")


async def list_contacts(store: Store, request: Request) -> Response:
    q = query_params(request, LIST_PARAMS)
    check_location(q.get("locationId"))
    limit = int_param(q.get("limit"), "limit", default=20, maximum=100)
    where, params = text_query(q.get("query"))
    total = store.conn.execute(f"SELECT count(*) FROM records WHERE {CONTACTS} AND ({where})",
                               params).fetchone()[0]
    keyset, key_params = _list_keyset(store, q.get("startAfter"), q.get("startAfterId"))
    rows = store.conn.execute(
        f"SELECT doc, {ADDED}, id FROM records INDEXED BY hl_contacts_added "
        f"WHERE {CONTACTS} AND {keyset} AND ({where}) ORDER BY {ADDED}, id LIMIT ?",
        [*key_params, *params, limit + 1]).fetchall()
    meta: dict[str, Any] = {"total": total}
    if len(rows) > limit:
        rows = rows[:limit]
        after, after_id = millis(rows[-1][1]), rows[-1][2]
        meta.update(startAfterId=after_id, startAfter=after, nextPageUrl=next_page_url(
            request, {**q, "startAfter": after, "startAfterId": after_id}))
    # `count` is what the published schema names; `meta` is what clients page with
    return JSONResponse({"contacts": [json.loads(r[0]) for r in rows], "count": total,
                         "meta": meta})


def _list_keyset(store: Store, after: str | None, after_id: str | None) -> tuple[str, list]:
    if after_id and not after:
        row = store.conn.execute(f"SELECT {ADDED} FROM records WHERE {CONTACTS} AND id = ?",
                                 (after_id,)).fetchone()
        if row is None:
            raise HighLevelError(400, f"Contact with id {after_id} not found")
        return after_key(ADDED, row[0], after_id)
    if after and after_id:
        return after_key(ADDED, from_millis(after, "startAfter"), after_id)
    if after:
        return f"{ADDED} > ?", [from_millis(after, "startAfter")]
    return "1", []


def search_routes(store: Store) -> list[Route]:
    return routes(store, [
        ("/contacts/search", search, ["POST"]),
        ("/contacts/", list_contacts, ["GET"]),
        ("/contacts", list_contacts, ["GET"]),
    ])
