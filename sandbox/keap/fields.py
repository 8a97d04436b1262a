"""Keap contact custom fields: the model endpoints and the checks on values sent in contacts.

    GET  /crm/rest/v2/contacts/model               -> ObjectModel
    POST /crm/rest/v2/contacts/model/customFields  CreateCustomFieldRequest -> CustomFieldMetaData

Definitions are records of `keap/custom_fields` (CustomFieldMetaData docs). An account holds tens
of them, so they are read whole; contacts are never.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from email_validator import EmailNotValidError, validate_email
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
)
from sandbox.store import Store, parse_ts

ENTITY = "custom_fields"
FIELD_TYPES = (
    "CURRENCY", "DATE", "DATE_TIME", "DAY_OF_WEEK", "DECIMAL_NUMBER", "DRILLDOWN", "DROPDOWN",
    "EMAIL", "LIST_BOX", "MONTH", "NAME", "PERCENT", "PHONE_NUMBER", "RADIO",
    "SOCIAL_SECURITY_NUMBER", "STATE", "TEXT", "TEXT_AREA", "USER", "USER_LIST_BOX", "WEBSITE",
    "WHOLE_NUMBER", "YEAR", "YES_NO",
)
NUMERIC = {"CURRENCY", "DECIMAL_NUMBER", "PERCENT", "WHOLE_NUMBER", "YEAR", "MONTH",
           "DAY_OF_WEEK", "USER"}
INTEGRAL = {"WHOLE_NUMBER", "YEAR", "MONTH", "DAY_OF_WEEK", "USER"}
CHOICE = {"DROPDOWN", "RADIO"}
MULTI = {"LIST_BOX", "USER_LIST_BOX"}
TEXT_MAX = 65535


def contact_fields(store: Store) -> list[dict[str, Any]]:
    """Every custom field defined on contacts, in id order."""
    return [d for d in store.iter_docs(SOURCE, ENTITY)
            if d.get("record_type", "CONTACT") == "CONTACT"]


def by_id(store: Store, id_: str) -> dict[str, Any] | None:
    doc = store.get(SOURCE, ENTITY, id_)
    return doc if doc and doc.get("record_type", "CONTACT") == "CONTACT" else None


def by_field_name(store: Store, name: str) -> dict[str, Any] | None:
    """The contact custom field whose `field_name` is `name` (case-insensitive), if any."""
    row = store.conn.execute(
        "SELECT doc FROM records WHERE source = ? AND entity = ? "
        "AND lower(json_extract(doc, '$.field_name')) = lower(?) ORDER BY seq LIMIT 1",
        (SOURCE, ENTITY, name)).fetchone()
    return json.loads(row[0]) if row else None


class CustomFields:
    """The contact model routes."""

    def __init__(self, store: Store, optional_properties: tuple[str, ...]):
        self.store = store
        self.optional_properties = optional_properties

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/contacts/model", self.model, methods=["GET"]),
            Route(f"{PREFIX}/contacts/model/customFields", self.create, methods=["POST"]),
        ]

    @handler
    async def model(self, request: Request) -> Response:
        return json_reply({"custom_fields": contact_fields(self.store),
                           "optional_properties": list(self.optional_properties)})

    @handler
    async def create(self, request: Request) -> Response:
        doc = _definition(self.store, await json_object(request))
        records.save(self.store, SOURCE, ENTITY, doc)
        return json_reply(doc, 201)


def _definition(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    label = body.get("label")
    if not isinstance(label, str) or not label.strip():
        raise bad_request("label is required", "label", "custom_field")
    field_type = body.get("field_type")
    if field_type not in FIELD_TYPES:
        raise bad_request(f"field_type must be one of {', '.join(FIELD_TYPES)}, got "
                          f"{field_type!r}", "field_type", "custom_field")
    if any((f.get("label") or "").strip().lower() == label.strip().lower()
           for f in contact_fields(store)):
        raise bad_request(f"A custom field with label {label.strip()!r} already exists",
                          "label", "custom_field")
    options = body.get("options") or []
    if not isinstance(options, list) or not all(
            isinstance(o, dict) and isinstance(o.get("label"), str) for o in options):
        raise bad_request("options must be a list of {\"label\": ...} objects", "options",
                          "custom_field")
    id_ = new_id(store, ENTITY)
    doc: dict[str, Any] = {
        "id": id_,
        "label": label.strip(),
        "options": [{"id": str(i), "label": o["label"]} for i, o in enumerate(options, 1)],
        "record_type": "CONTACT",
        "field_type": field_type,
        "field_name": _field_name(store, label.strip()),
    }
    if body.get("group_id") is not None:
        doc["group_id"] = str(body["group_id"])
    return doc


def _field_name(store: Store, label: str) -> str:
    # Keap derives the database column from the label plus a counter (`firstName1`, `Score0`)
    base = re.sub(r"[^A-Za-z0-9]", "", label) or "Field"
    base = base[0].lower() + base[1:]
    n = 0
    while by_field_name(store, f"{base}{n}") is not None:
        n += 1
    return f"{base}{n}"


def check_values(store: Store, items: Any) -> list[dict[str, Any]]:
    """Validate a contact's `custom_fields` array; the normalized array to store."""
    if not isinstance(items, list):
        raise bad_request("custom_fields must be an array", "custom_fields", "contact")
    out, seen = [], set()
    for item in items:
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            raise bad_request("each custom_fields item needs an id", "custom_fields", "contact")
        id_ = str(item["id"])
        definition = by_id(store, id_)
        if definition is None:
            raise bad_request(f"Invalid custom field id {id_}: no contact custom field has it",
                              f"custom_fields[{id_}]", "contact")
        if id_ in seen:
            raise bad_request(f"custom field {id_} is listed twice", f"custom_fields[{id_}]",
                              "contact")
        seen.add(id_)
        out.append({"id": id_, "content": _content(definition, item.get("content"))})
    return out


def _content(definition: dict[str, Any], value: Any) -> Any:
    """The value to store for one custom field, or a 400 naming the field and its type."""
    if value is None:
        return None
    kind = definition.get("field_type", "TEXT")
    where = f"custom_fields[{definition['id']}]"

    def wrong(expected: str) -> Exception:
        return bad_request(f"custom field {definition['id']} ({definition.get('label')}) is "
                           f"{kind}: expected {expected}, got {value!r}", where, "contact")

    if kind in NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise wrong("a number")
        try:
            number = float(value)
        except ValueError:
            raise wrong("a number") from None
        if kind in INTEGRAL and not number.is_integer():
            raise wrong("a whole number")
        return int(number) if kind in INTEGRAL else number
    if kind == "YES_NO":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if kind in MULTI:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return _choices(definition, value, wrong)
    if not isinstance(value, str):
        raise wrong("a string")
    if kind == "DATE":
        try:
            date.fromisoformat(value)
        except ValueError:
            raise wrong("a date YYYY-MM-DD") from None
    elif kind == "DATE_TIME":
        try:
            parse_ts(value)
        except ValueError:
            raise wrong("an ISO-8601 date-time") from None
    elif kind == "EMAIL" and value:
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            raise wrong("an email address") from None
    elif kind in CHOICE and value:
        _choices(definition, [value], wrong)
    if len(value) > TEXT_MAX:
        raise wrong(f"at most {TEXT_MAX} characters")
    return value


def _choices(definition: dict[str, Any], values: list[str], wrong: Any) -> list[str]:
    labels = {o.get("label") for o in definition.get("options") or []}
    if labels and not set(values) <= labels:
        raise wrong(f"one of {sorted(labels)}")
    return values
