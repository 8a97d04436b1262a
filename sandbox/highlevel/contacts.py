"""HighLevel contacts: create, read, update, delete, upsert and tags.

POST   /contacts/                     201 {contact}; 400 duplicate (meta.contactId)
GET    /contacts/{contactId}          {contact}
PUT    /contacts/{contactId}          {succeded, contact}
DELETE /contacts/{contactId}          {succeded: true}   (sic)
POST   /contacts/upsert               {new, contact, traceId}: match by email, then phone
POST   /contacts/{contactId}/tags     201 {tags}: add
DELETE /contacts/{contactId}/tags     {tags}: remove

The location does not allow duplicate contacts (HighLevel's default): an email or phone already
on another contact is refused on create and update. `tags` sent on create, update or upsert
REPLACE the contact's tags; only the tags endpoints add or remove single tags.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import records
from sandbox.highlevel.common import (
    SOURCE,
    HighLevelError,
    check_location,
    invalid,
    json_body,
    now_iso,
    routes,
    str_fields,
)
from sandbox.highlevel.conversations import delete_for_contact
from sandbox.highlevel.location import ensure_tags, location_docs, normalize_tags
from sandbox.store import Store

TEXT_FIELDS = ("firstName", "lastName", "name", "email", "phone", "address1", "city", "state",
               "postalCode", "website", "timezone", "source", "country", "companyName",
               "assignedTo", "gender")
UPDATE_FIELDS = (*TEXT_FIELDS, "dnd", "dndSettings", "inboundDndSettings", "tags",
                 "customFields", "dateOfBirth")
CREATE_FIELDS = (*UPDATE_FIELDS, "locationId")
UPSERT_FIELDS = (*CREATE_FIELDS, "createNewIfDuplicateAllowed")
DUPLICATE = "This location does not allow duplicated contacts."
DOB_FORMATS = ("%Y/%m/%d", "%m/%d/%Y", "%Y-%m-%d", "%m-%d-%Y", "%Y.%m.%d", "%m.%d.%Y",
               "%Y_%m_%d", "%m_%d_%Y")


# -- lookups ----------------------------------------------------------------------------------

def get_contact(store: Store, contact_id: str) -> dict[str, Any]:
    doc = store.get(SOURCE, "contacts", contact_id)
    if doc is None:
        raise HighLevelError(400, f"Contact with id {contact_id} not found")
    return doc


def find_by_email(store: Store, email: str | None) -> str | None:
    if not email:
        return None
    row = store.conn.execute(
        "SELECT id FROM records INDEXED BY records_email WHERE source = 'highlevel' "
        "AND entity = 'contacts' AND email = ? ORDER BY seq LIMIT 1",
        (email.strip().lower(),)).fetchone()
    return row[0] if row else None


def find_by_phone(store: Store, phone: str | None) -> str | None:
    if not phone:
        return None
    # the expression matches the partial index hl_contacts_phone (see vendor.py)
    row = store.conn.execute(
        "SELECT id FROM records INDEXED BY hl_contacts_phone WHERE source = 'highlevel' "
        "AND entity = 'contacts' AND json_extract(doc, '$.phone') = ? ORDER BY seq LIMIT 1",
        (phone,)).fetchone()
    return row[0] if row else None


def duplicate_of(store: Store, doc: dict[str, Any],
                 fields: tuple[str, ...] = ("email", "phone")) -> tuple[str, str] | None:
    """(other contact id, matching field) when the doc's email or phone belongs to another."""
    finders = {"email": find_by_email, "phone": find_by_phone}
    for field in fields:
        other = finders[field](store, doc.get(field))
        if other and other != doc.get("id"):
            return other, field
    return None


def refuse_duplicate(store: Store, other_id: str, field: str) -> HighLevelError:
    other = store.get(SOURCE, "contacts", other_id) or {}
    return HighLevelError(400, DUPLICATE, meta={
        "contactName": other.get("name") or "", "contactId": other_id, "matchingField": field})


# -- building the contact ---------------------------------------------------------------------

def normalize_phone(phone: str, country: str | None) -> str:
    """HighLevel stores phones in E.164; numbers it cannot parse are refused."""
    try:
        number = phonenumbers.parse(phone, (country or "US").upper())
    except phonenumbers.NumberParseException:
        raise invalid("phone must be a valid phone number") from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_dob(value: Any) -> str:
    if isinstance(value, str):
        for fmt in DOB_FORMATS:
            try:
                day = datetime.strptime(value.strip()[:10], fmt)
            except ValueError:
                continue
            return day.strftime("%Y-%m-%dT00:00:00.000Z")
    raise invalid("dateOfBirth must be a date in one of the supported formats (e.g. YYYY-MM-DD)")


def apply_fields(store: Store, doc: dict[str, Any], body: dict[str, Any]) -> None:
    """Write the sent properties onto the doc; null clears a property."""
    set_text(doc, body)
    set_preferences(doc, body)
    if "tags" in body:
        doc["tags"] = normalize_tags(body["tags"])  # replaces every tag: HighLevel's semantics
    if "customFields" in body:
        doc["customFields"] = merge_custom_fields(store, doc, body["customFields"])
    # `name` follows first/last name unless it is sent itself
    derive_names(doc, keep_name="name" in body or not {"firstName", "lastName"} & body.keys())


def set_text(doc: dict[str, Any], body: dict[str, Any]) -> None:
    str_fields(body, TEXT_FIELDS)
    for field in TEXT_FIELDS:
        if field in body:
            value = body[field].strip() if isinstance(body[field], str) else None
            if value:
                doc[field] = value
            else:
                doc.pop(field, None)
    if doc.get("email") and "@" not in doc["email"]:
        raise invalid("email must be an email")
    if "phone" in body and doc.get("phone"):
        doc["phone"] = normalize_phone(doc["phone"], doc.get("country"))


def set_preferences(doc: dict[str, Any], body: dict[str, Any]) -> None:
    """Do-not-disturb settings and the birth date."""
    if "dnd" in body:
        if not isinstance(body["dnd"], bool):
            raise invalid("dnd must be a boolean value")
        doc["dnd"] = body["dnd"]
    for field in ("dndSettings", "inboundDndSettings"):
        if field in body:
            if not isinstance(body[field], dict):
                raise invalid(f"{field} must be an object")
            doc[field] = body[field]
    if "dateOfBirth" in body:
        if body["dateOfBirth"] in (None, ""):
            doc.pop("dateOfBirth", None)
        else:
            doc["dateOfBirth"] = normalize_dob(body["dateOfBirth"])


def derive_names(doc: dict[str, Any], *, keep_name: bool) -> None:
    """The lower-case search copies HighLevel keeps next to the names and the email."""
    first, last = doc.get("firstName"), doc.get("lastName")
    full = " ".join(p for p in (first, last) if p)
    for key, value in (("firstNameLowerCase", first), ("lastNameLowerCase", last),
                       ("fullNameLowerCase", full), ("emailLowerCase", doc.get("email"))):
        if value:
            doc[key] = value.lower()
        else:
            doc.pop(key, None)
    if not keep_name:
        if full:
            doc["name"] = full
        else:
            doc.pop("name", None)


def merge_custom_fields(store: Store, doc: dict[str, Any], sent: Any) -> list[dict[str, Any]]:
    """Set the sent custom field values (by id or key), keep the others; empty clears one."""
    if not isinstance(sent, list) or not all(isinstance(f, dict) for f in sent):
        raise invalid("customFields must be an array of objects")
    fields = location_docs(store, "custom_fields", doc["locationId"])
    by_key = {f.get("fieldKey"): f["id"] for f in fields if f.get("fieldKey")}
    by_key.update({k.split(".", 1)[1]: v for k, v in list(by_key.items()) if "." in k})
    known = {f["id"] for f in fields}
    values = {f["id"]: f.get("value") for f in doc.get("customFields") or []}
    for item in sent:
        field_id = item.get("id") or by_key.get(item.get("key"))
        if field_id not in known:
            raise invalid(f"customFields: no custom field {item.get('id') or item.get('key')!r} "
                          "in this location")
        value = item.get("field_value", item.get("value"))
        if value in (None, "", []):
            values.pop(field_id, None)
        else:
            values[field_id] = value
    return [{"id": k, "value": v} for k, v in values.items()]


def new_contact(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    contact_id = records.next_highlevel_id(store, "contacts")
    while store.exists(SOURCE, "contacts", contact_id):  # ids loaded from fixtures
        contact_id = records.next_highlevel_id(store, "contacts")
    doc: dict[str, Any] = {"id": contact_id, "locationId": body["locationId"], "type": "lead",
                           "dnd": False, "tags": [], "customFields": [],
                           "source": "public api"}
    apply_fields(store, doc, body)
    return doc


def save_contact(store: Store, doc: dict[str, Any], *, created: bool = False) -> dict[str, Any]:
    """Stamp and store the contact (every write moves the clock), creating its location tags."""
    with store.transaction():
        stamp = now_iso(store)
        if created:
            doc["dateAdded"] = stamp
        doc["dateUpdated"] = stamp
        ensure_tags(store, doc["locationId"], doc.get("tags") or [])
        records.save(store, SOURCE, "contacts", doc)
    return doc


# -- handlers ---------------------------------------------------------------------------------

async def create(store: Store, request: Request) -> Response:
    body = await json_body(request, CREATE_FIELDS)
    check_location(body.get("locationId"))
    doc = new_contact(store, body)
    if dup := duplicate_of(store, doc):
        raise refuse_duplicate(store, *dup)
    return JSONResponse({"contact": save_contact(store, doc, created=True)}, status_code=201)


async def read(store: Store, request: Request) -> Response:
    return JSONResponse({"contact": get_contact(store, request.path_params["contactId"])})


async def update(store: Store, request: Request) -> Response:
    doc = get_contact(store, request.path_params["contactId"])
    body = await json_body(request, UPDATE_FIELDS)
    before = dict(doc)
    apply_fields(store, doc, body)
    # only a changed email or phone is checked: old duplicates in the data stay editable
    changed = tuple(f for f in ("email", "phone") if doc.get(f) != before.get(f))
    if dup := duplicate_of(store, doc, changed):
        raise refuse_duplicate(store, *dup)
    return JSONResponse({"succeded": True, "contact": save_contact(store, doc)})


async def delete(store: Store, request: Request) -> Response:
    contact_id = request.path_params["contactId"]
    get_contact(store, contact_id)
    at = now_iso(store)
    with store.transaction():
        store.delete(SOURCE, "contacts", contact_id, at=at)
        # the contact's notes, tasks and appointments go with it
        for entity in ("notes", "tasks", "appointments"):
            for row in store.select(SOURCE, entity, "parent = ?", (contact_id,)):
                store.delete(SOURCE, entity, row.id, at=at)
        delete_for_contact(store, contact_id, at)   # and its conversations and messages
    return JSONResponse({"succeded": True})


async def upsert(store: Store, request: Request) -> Response:
    body = await json_body(request, UPSERT_FIELDS)
    check_location(body.get("locationId"))
    email, phone = match_keys(body)
    by_email, by_phone = find_by_email(store, email), find_by_phone(store, phone)
    match_id = by_email or by_phone
    if by_email and by_phone and by_phone != by_email:
        # two contacts match: email comes first in the location's duplicate priority, so that
        # contact is updated and the phone is ignored (it would duplicate the other contact)
        body = {k: v for k, v in body.items() if k != "phone"}
    if match_id is None:
        doc = save_contact(store, new_contact(store, body), created=True)
    else:
        doc = get_contact(store, match_id)
        apply_fields(store, doc, {k: v for k, v in body.items()
                                  if k not in ("locationId", "createNewIfDuplicateAllowed")})
        doc = save_contact(store, doc)
    return JSONResponse({"new": match_id is None, "contact": doc, "traceId": str(uuid.uuid4())})


def match_keys(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The normalized email and phone an upsert matches on."""
    str_fields(body, ("email", "phone", "country"))
    email = (body.get("email") or "").strip().lower() or None
    phone = (body.get("phone") or "").strip()
    return email, normalize_phone(phone, body.get("country")) if phone else None


async def add_tags(store: Store, request: Request) -> Response:
    doc = get_contact(store, request.path_params["contactId"])
    body = await json_body(request, ("tags",))
    tags = doc.get("tags") or []
    doc["tags"] = tags + [t for t in normalize_tags(body.get("tags")) if t not in tags]
    return JSONResponse({"tags": save_contact(store, doc)["tags"]}, status_code=201)


async def remove_tags(store: Store, request: Request) -> Response:
    doc = get_contact(store, request.path_params["contactId"])
    body = await json_body(request, ("tags",))
    gone = set(normalize_tags(body.get("tags")))
    doc["tags"] = [t for t in doc.get("tags") or [] if t not in gone]
    return JSONResponse({"tags": save_contact(store, doc)["tags"]})


def contact_routes(store: Store) -> list[Route]:
    # literal paths first: "/contacts/upsert" must not be read as a contact id
    return routes(store, [
        ("/contacts/upsert", upsert, ["POST"]),
        ("/contacts/", create, ["POST"]),
        ("/contacts", create, ["POST"]),
        ("/contacts/{contactId}/tags", add_tags, ["POST"]),
        ("/contacts/{contactId}/tags", remove_tags, ["DELETE"]),
        ("/contacts/{contactId}", read, ["GET"]),
        ("/contacts/{contactId}", update, ["PUT"]),
        ("/contacts/{contactId}", delete, ["DELETE"]),
    ])
