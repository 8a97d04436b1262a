"""HighLevel opportunities and pipelines.

GET    /opportunities/search?location_id=&limit<=100&startAfter=&startAfterId=&page=&pipeline_id=
       &pipeline_stage_id=&contact_id=&status=&assigned_to=&id=&q=&date=&endDate=
       -> {opportunities, meta: {total, currentPage, nextPage?, prevPage?, nextPageUrl?,
       startAfter?, startAfterId?}}, oldest first; `startAfter` is createdAt in epoch ms.
GET    /opportunities/pipelines?locationId=   {pipelines: [{id, name, stages: [...]}]}
GET    /opportunities/{id}                    {opportunity}
POST   /opportunities/                        201 {opportunity}
PUT    /opportunities/{id}                    {opportunity}
DELETE /opportunities/{id}                    {succeded: true}

Returned opportunities embed a summary of their contact, read at reply time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import records
from sandbox.highlevel.common import (
    SOURCE,
    HighLevelError,
    after_key,
    check_location,
    from_millis,
    int_param,
    invalid,
    json_body,
    millis,
    next_page_url,
    now_iso,
    query_params,
    routes,
    str_fields,
)
from sandbox.highlevel.location import location_docs
from sandbox.store import Store, iso

OPPS = "source = 'highlevel' AND entity = 'opportunities'"  # literal: partial index needs it
CREATED = "json_extract(doc, '$.createdAt')"
STATUSES = ("open", "won", "lost", "abandoned")
SEARCH_PARAMS = ("q", "location_id", "pipeline_id", "pipeline_stage_id", "contact_id", "status",
                 "assigned_to", "campaignId", "id", "order", "endDate", "startAfter",
                 "startAfterId", "date", "country", "page", "limit", "getTasks", "getNotes",
                 "getCalendarEvents")
UPDATE_FIELDS = ("pipelineId", "name", "pipelineStageId", "status", "monetaryValue",
                 "assignedTo", "customFields", "lostReasonId", "source")
CREATE_FIELDS = (*UPDATE_FIELDS, "locationId", "contactId")
FILTERS = {"pipeline_id": "json_extract(doc, '$.pipelineId')",
           "pipeline_stage_id": "json_extract(doc, '$.pipelineStageId')",
           "contact_id": "parent", "assigned_to": "json_extract(doc, '$.assignedTo')",
           "id": "id"}


def with_contact(store: Store, opp: dict[str, Any]) -> dict[str, Any]:
    contact = store.get(SOURCE, "contacts", opp.get("contactId") or "")
    if contact is None:
        return opp
    summary = {k: contact[k] for k in ("id", "name", "companyName", "email", "phone", "tags")
               if k in contact}
    return {**opp, "contact": summary}


def get_opportunity(store: Store, opp_id: str) -> dict[str, Any]:
    doc = store.get(SOURCE, "opportunities", opp_id)
    if doc is None:
        raise HighLevelError(400, f"Opportunity with id {opp_id} not found")
    return doc


# -- search -----------------------------------------------------------------------------------

def search_filters(q: dict[str, str]) -> tuple[str, list[Any]]:
    conds, params = ["1"], []
    for name, expr in FILTERS.items():
        if q.get(name):
            conds.append(f"{expr} = ?")
            params.append(q[name])
    status = q.get("status") or "all"
    if status not in (*STATUSES, "all"):
        raise invalid("status must be one of the following values: "
                      + ", ".join((*STATUSES, "all")))
    if status != "all":
        conds.append("json_extract(doc, '$.status') = ?")
        params.append(status)
    if q.get("q"):
        conds.append("lower(json_extract(doc, '$.name')) LIKE ?")
        params.append("%" + q["q"].strip().lower() + "%")
    for name, op, shift in (("date", ">=", 0), ("endDate", "<", 1)):
        if q.get(name):
            conds.append(f"{CREATED} {op} ?")
            params.append(iso(_day(q[name], name) + timedelta(days=shift)))
    return " AND ".join(conds), params


def _day(text: str, name: str) -> datetime:
    try:
        return datetime.strptime(text, "%m-%d-%Y").replace(tzinfo=UTC)
    except ValueError:
        raise invalid(f"{name} must be a date as mm-dd-yyyy") from None


def _keyset(store: Store, after: str | None, after_id: str | None) -> tuple[str, list[Any]]:
    if after_id:
        if after:
            return after_key(CREATED, from_millis(after, "startAfter"), after_id)
        return after_key(CREATED, get_opportunity(store, after_id).get("createdAt", ""),
                         after_id)
    if after:
        return f"{CREATED} > ?", [from_millis(after, "startAfter")]
    return "1", []


async def search(store: Store, request: Request) -> Response:
    q = query_params(request, SEARCH_PARAMS)
    check_location(q.get("location_id"), "location_id")
    limit = int_param(q.get("limit"), "limit", default=20, maximum=100)
    page = int_param(q.get("page"), "page", default=1)
    where, params = search_filters(q)
    total = store.conn.execute(f"SELECT count(*) FROM records WHERE {OPPS} AND ({where})",
                               params).fetchone()[0]
    keyset, key_params = _keyset(store, q.get("startAfter"), q.get("startAfterId"))
    # without a cursor, `page` pages by offset; with one, it only numbers the page
    offset = 0 if key_params else (page - 1) * limit
    # one contact's opportunities come by the parent index; everything else in createdAt order
    index = "records_parent_seq" if q.get("contact_id") else "hl_opportunities_created"
    rows = store.conn.execute(
        f"SELECT doc, {CREATED}, id FROM records INDEXED BY {index} "
        f"WHERE {OPPS} AND {keyset} AND ({where}) ORDER BY {CREATED}, id LIMIT ? OFFSET ?",
        [*key_params, *params, limit + 1, offset]).fetchall()
    meta: dict[str, Any] = {"total": total, "currentPage": page}
    if page > 1:
        meta["prevPage"] = page - 1
    if len(rows) > limit:
        rows = rows[:limit]
        after, after_id = millis(rows[-1][1]), rows[-1][2]
        meta.update(nextPage=page + 1, startAfter=after, startAfterId=after_id,
                    nextPageUrl=next_page_url(request, {**q, "startAfter": after,
                                                        "startAfterId": after_id,
                                                        "page": page + 1}))
    opportunities = [with_contact(store, json.loads(r[0])) for r in rows]
    return JSONResponse({"opportunities": opportunities, "meta": meta})


# -- writes -----------------------------------------------------------------------------------

def apply_fields(store: Store, doc: dict[str, Any], body: dict[str, Any], stamp: str) -> None:
    str_fields(body, ("pipelineId", "name", "pipelineStageId", "assignedTo", "lostReasonId",
                      "source"))
    if "status" in body and body["status"] not in STATUSES:
        raise invalid("status must be one of the following values: " + ", ".join(STATUSES))
    if "monetaryValue" in body and (isinstance(body["monetaryValue"], bool) or not isinstance(
            body["monetaryValue"], (int, float))):
        raise invalid("monetaryValue must be a number conforming to the specified constraints")
    before = dict(doc)
    for field in ("name", "status", "monetaryValue", "assignedTo", "lostReasonId", "source",
                  "pipelineId", "pipelineStageId"):
        if field in body and body[field] is not None:
            doc[field] = body[field]
    moved = doc.get("pipelineId") != before.get("pipelineId") and "pipelineStageId" not in body
    place_in_pipeline(store, doc, moved=moved)
    if "customFields" in body:
        doc["customFields"] = custom_field_values(doc, body["customFields"])
    if doc.get("status") != before.get("status"):
        doc["lastStatusChangeAt"] = stamp
    if doc.get("pipelineStageId") != before.get("pipelineStageId"):
        doc["lastStageChangeAt"] = stamp
    doc["updatedAt"] = stamp


def place_in_pipeline(store: Store, doc: dict[str, Any], *, moved: bool) -> None:
    """The pipeline must exist; a stage must be one of its stages (default: its first)."""
    pipeline = store.get(SOURCE, "pipelines", doc.get("pipelineId") or "")
    if pipeline is None or pipeline.get("locationId") != doc.get("locationId"):
        raise HighLevelError(400, f"Pipeline with id {doc.get('pipelineId')} not found")
    stages = sorted(pipeline.get("stages") or [], key=lambda s: s.get("position", 0))
    if moved or not doc.get("pipelineStageId"):
        if not stages:
            raise HighLevelError(400, "The pipeline has no stages")
        doc["pipelineStageId"] = stages[0]["id"]
    elif doc["pipelineStageId"] not in {s["id"] for s in stages}:
        raise HighLevelError(400, "The pipeline stage does not belong to the pipeline")


def custom_field_values(doc: dict[str, Any], sent: Any) -> list[dict[str, Any]]:
    if not isinstance(sent, list) or not all(isinstance(f, dict) and f.get("id") for f in sent):
        raise invalid("customFields must be an array of {id, field_value} objects")
    values = {f["id"]: f.get("fieldValue") for f in doc.get("customFields") or []}
    for item in sent:
        value = item.get("field_value", item.get("fieldValue"))
        if value in (None, "", []):
            values.pop(item["id"], None)
        else:
            values[item["id"]] = value
    return [{"id": k, "fieldValue": v} for k, v in values.items()]


def refuse_second_in_pipeline(store: Store, doc: dict[str, Any]) -> None:
    """HighLevel's default: one opportunity per contact in a pipeline."""
    row = store.conn.execute(
        f"SELECT id FROM records WHERE {OPPS} AND parent = ? "
        "AND json_extract(doc, '$.pipelineId') = ? AND id != ? LIMIT 1",
        (doc["contactId"], doc["pipelineId"], doc["id"])).fetchone()
    if row:
        raise HighLevelError(400, "Can not create duplicate opportunity for the contact.")


async def create(store: Store, request: Request) -> Response:
    body = await json_body(request, CREATE_FIELDS)
    missing = [f"{f} should not be empty" for f in
               ("pipelineId", "locationId", "name", "status", "contactId") if not body.get(f)]
    if missing:
        raise invalid(*missing)
    check_location(body["locationId"])
    if store.get(SOURCE, "contacts", str(body["contactId"])) is None:
        raise HighLevelError(400, f"Contact with id {body['contactId']} not found")
    stamp = now_iso(store)
    doc: dict[str, Any] = {"id": records.next_highlevel_id(store, "opportunities"),
                           "locationId": body["locationId"], "contactId": body["contactId"],
                           "monetaryValue": 0, "source": "", "customFields": [],
                           "createdAt": stamp}
    apply_fields(store, doc, body, stamp)
    refuse_second_in_pipeline(store, doc)
    records.save(store, SOURCE, "opportunities", doc)
    return JSONResponse({"opportunity": with_contact(store, doc)}, status_code=201)


async def read(store: Store, request: Request) -> Response:
    doc = get_opportunity(store, request.path_params["id"])
    return JSONResponse({"opportunity": with_contact(store, doc)})


async def update(store: Store, request: Request) -> Response:
    doc = get_opportunity(store, request.path_params["id"])
    body = await json_body(request, UPDATE_FIELDS)
    apply_fields(store, doc, body, now_iso(store))
    if "pipelineId" in body:
        refuse_second_in_pipeline(store, doc)
    records.save(store, SOURCE, "opportunities", doc)
    return JSONResponse({"opportunity": with_contact(store, doc)})


async def delete(store: Store, request: Request) -> Response:
    opp_id = request.path_params["id"]
    get_opportunity(store, opp_id)
    store.delete(SOURCE, "opportunities", opp_id, at=now_iso(store))
    return JSONResponse({"succeded": True})


async def pipelines(store: Store, request: Request) -> Response:
    location_id = query_params(request, ("locationId",)).get("locationId")
    check_location(location_id)
    return JSONResponse({"pipelines": location_docs(store, "pipelines", location_id or "")})


def opportunity_routes(store: Store) -> list[Route]:
    # literal paths before "/opportunities/{id}"
    return routes(store, [
        ("/opportunities/search", search, ["GET"]),
        ("/opportunities/pipelines", pipelines, ["GET"]),
        ("/opportunities/", create, ["POST"]),
        ("/opportunities", create, ["POST"]),
        ("/opportunities/{id}", read, ["GET"]),
        ("/opportunities/{id}", update, ["PUT"]),
        ("/opportunities/{id}", delete, ["DELETE"]),
    ])
