"""Checking a Keap v2 `CreateUpdateContactRequest` and turning it into stored contact fields.

Rules come from the spec's request schema and its descriptions: slot enums (EMAIL1..3,
PHONE1..5, FAX1..2, BILLING/SHIPPING/OTHER), length limits (EMAIL1 75, EMAIL2/3 100, PHONE1-3 40,
PHONE4-5 20, given/family name 40, ...), `country_code` required with a region, and custom field
ids that must exist. Each failure is a 400 naming the field.

Read-only properties of the `Contact` response (id, times, tag_ids, ...) are accepted and ignored,
so a client may send back what it read; any other unknown property is refused, which catches
misspelled field names that the real API would silently drop.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from sandbox.keap import fields as keap_fields
from sandbox.keap.common import bad_request
from sandbox.store import Store

ARRAYS = ("email_addresses", "phone_numbers", "addresses", "fax_numbers", "social_accounts",
          "custom_fields")
MAX_LEN = {"given_name": 40, "family_name": 40, "middle_name": 100, "job_title": 255,
           "preferred_name": 100, "spouse_name": 100, "website": 100, "assistant_name": 20,
           "assistant_phone": 15, "billing_information": 100}
STRINGS = (*MAX_LEN, "prefix", "suffix", "contact_type", "preferred_locale", "referral_code",
           "time_zone", "leadsource_id", "owner_id")
DATES = ("anniversary_date", "birth_date")
OBJECTS = ("company", "origin", "utm_parameters", "source_type")
WRITABLE = frozenset((*ARRAYS, *STRINGS, *DATES, *OBJECTS))
READ_ONLY = frozenset(("id", "create_time", "update_time", "tag_ids", "links", "groups",
                       "score_value", "account_id", "created_by", "last_updated_by", "notes"))
SOURCE_TYPES = ("SOURCE_TYPE_UNSPECIFIED", "API", "APPOINTMENT", "FORM_API_HOSTED",
                "FORM_API_INTERNAL", "IMPORT", "INTERNAL_FORM", "LANDING_PAGE", "MANUAL",
                "OTHER", "UNKNOWN", "WEBFORM")
SOCIAL_TYPES = ("FACEBOOK", "LINKED_IN", "TWITTER", "INSTAGRAM", "SNAPCHAT", "YOUTUBE",
                "PINTEREST")
EMAIL_SLOTS = {"EMAIL1": 75, "EMAIL2": 100, "EMAIL3": 100}
PHONE_SLOTS = {"PHONE1": 40, "PHONE2": 40, "PHONE3": 40, "PHONE4": 20, "PHONE5": 20}
FAX_SLOTS = ("FAX1", "FAX2")
ADDRESS_SLOTS = ("BILLING", "SHIPPING", "OTHER")
_COUNTRY = re.compile(r"^[A-Z]{3}$")


def contact_fields(store: Store, body: dict[str, Any], existing: dict[str, Any] | None,
                   now: str) -> dict[str, Any]:
    """The validated, normalized writable fields of a request body (None = clear the field)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in READ_ONLY:
            continue
        if key not in WRITABLE:
            raise bad_request(f"Unknown contact field {key!r}", key, "contact")
        out[key] = None if value is None else _field(store, key, value, existing, now)
    return out


def _field(store: Store, key: str, value: Any, existing: dict[str, Any] | None,
           now: str) -> Any:
    if key == "email_addresses":
        return emails(value, existing)
    if key == "phone_numbers":
        return phones(value)
    if key == "addresses":
        return addresses(value)
    if key == "fax_numbers":
        return _slotted(value, key, FAX_SLOTS, ("number", "type"))
    if key == "social_accounts":
        return socials(value)
    if key == "custom_fields":
        return keap_fields.check_values(store, value)
    if key in DATES:
        return _date(key, value)
    if key == "company":
        return _company(value)
    if key == "origin":
        return {"date": now, "ip_address": _string("origin.ip_address",
                                                   _object(key, value).get("ip_address", ""))}
    if key == "utm_parameters":
        return utm(value, existing, now)
    if key == "source_type":
        if value not in SOURCE_TYPES:
            raise bad_request(f"source_type must be one of {', '.join(SOURCE_TYPES)}, got "
                              f"{value!r}", key, "contact")
        return value
    if key in ("leadsource_id", "owner_id") and isinstance(value, int):
        value = str(value)
    return _string(key, value, MAX_LEN.get(key))


def emails(value: Any, existing: dict[str, Any] | None) -> list[dict[str, Any]]:
    # opt-in status belongs to the address: keep it when the same address is sent again
    known = {str(e.get("email", "")).lower(): e
             for e in (existing or {}).get("email_addresses") or []}
    out = []
    for item in _slotted(value, "email_addresses", tuple(EMAIL_SLOTS),
                         ("email", "opt_in_reason", "is_opt_in", "email_opt_status")):
        address = item.get("email")
        where = f"email_addresses[{item['field']}]"
        if not isinstance(address, str) or not address.strip():
            raise bad_request(f"{where}.email is required", where, "contact")
        address = address.strip()
        if len(address) > EMAIL_SLOTS[item["field"]]:
            raise bad_request(f"{where}.email is longer than {EMAIL_SLOTS[item['field']]} "
                              "characters", where, "contact")
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as e:
            raise bad_request(f"Invalid email address {address!r} in {item['field']}: {e}",
                              where, "contact") from None
        before = known.get(address.lower(), {})
        reason = item.get("opt_in_reason")
        opted = bool(reason) or bool(before.get("is_opt_in"))
        entry = {"email": address, "field": item["field"], "is_opt_in": opted,
                 "email_opt_status": before.get("email_opt_status")
                 or ("SINGLE_OPT_IN" if opted else "NON_MARKETABLE")}
        if reason:
            entry["opt_in_reason"] = _string(f"{where}.opt_in_reason", reason)
        out.append(entry)
    return out


def phones(value: Any) -> list[dict[str, Any]]:
    out = []
    for item in _slotted(value, "phone_numbers", tuple(PHONE_SLOTS),
                         ("number", "extension", "type", "number_e164")):
        where = f"phone_numbers[{item['field']}]"
        number = item.get("number")
        if not isinstance(number, str) or not number.strip():
            raise bad_request(f"{where}.number is required", where, "contact")
        if len(number) > PHONE_SLOTS[item["field"]]:
            raise bad_request(f"{where}.number is longer than {PHONE_SLOTS[item['field']]} "
                              "characters", where, "contact")
        entry = {k: _string(f"{where}.{k}", item[k]) for k in ("number", "extension", "type")
                 if item.get(k) is not None}
        entry["field"] = item["field"]
        e164 = _e164(number)
        if e164:
            entry["number_e164"] = e164
        out.append(entry)
    return out


def _e164(number: str) -> str | None:
    # Keap fills number_e164 itself; numbers without a country code are read as US numbers
    try:
        parsed = phonenumbers.parse(number, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def addresses(value: Any) -> list[dict[str, Any]]:
    keys = ("line1", "line2", "locality", "region", "region_code", "country", "country_code",
            "postal_code", "zip_code", "zip_four")
    out = []
    for item in _slotted(value, "addresses", ADDRESS_SLOTS, keys):
        slot = item["field"]
        where = f"addresses[{slot}]"
        entry = {k: _string(f"{where}.{k}", item[k], _address_limit(slot, k))
                 for k in keys if item.get(k) is not None}
        code = entry.get("country_code")
        if (entry.get("region") or entry.get("region_code")) and not code:
            raise bad_request(f"{where}.country_code is required when a region is given",
                              f"{where}.country_code", "contact")
        if code and not _COUNTRY.match(code):
            raise bad_request(f"{where}.country_code must be an ISO 3166-1 alpha-3 code such "
                              f"as USA, got {code!r}", f"{where}.country_code", "contact")
        entry["field"] = slot
        out.append(entry)
    return out


def _address_limit(slot: str, key: str) -> int | None:
    billing = slot == "BILLING"
    limits = {"line1": 75 if billing else 100, "line2": 75 if billing else 100,
              "locality": 50 if billing else 100, "region": 50, "country": 100,
              "postal_code": 20 if slot == "SHIPPING" else 15,
              "zip_code": 20 if slot == "SHIPPING" else 15, "zip_four": 10}
    return limits.get(key)


def socials(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad_request("social_accounts must be an array", "social_accounts", "contact")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in SOCIAL_TYPES:
            got = item.get("type") if isinstance(item, dict) else item
            raise bad_request(f"social_accounts[].type must be one of "
                              f"{', '.join(SOCIAL_TYPES)}, got {got!r}", "social_accounts",
                              "contact")
        out.append({"type": item["type"],
                    "name": _string("social_accounts[].name", item.get("name") or "", 255)})
    return out


def utm(value: Any, existing: dict[str, Any] | None, now: str) -> list[dict[str, Any]]:
    """A request's one UTM object becomes a new touch in the contact's UTM history."""
    obj = _object("utm_parameters", value)
    if not obj.get("keap_source_id"):
        raise bad_request("utm_parameters.keap_source_id is required",
                          "utm_parameters.keap_source_id", "contact")
    history = [dict(t, lastTouch=False) for t in (existing or {}).get("utm_parameters") or []]
    names = {"keap_source_id": "keapSourceId", "utm_source": "utmSource",
             "utm_medium": "utmMedium", "utm_term": "utmTerm", "utm_campaign": "utmCampaign",
             "utm_content": "utmContent"}
    touch: dict[str, Any] = {"id": len(history) + 1}
    touch.update({camel: _string(f"utm_parameters.{k}", obj[k])
                  for k, camel in names.items() if obj.get(k) is not None})
    touch.update(firstTouch=not history, lastTouch=True, dateCreated=now)
    return [*history, touch]


def _slotted(value: Any, name: str, slots: tuple[str, ...], keys: tuple[str, ...]
             ) -> list[dict[str, Any]]:
    """Check an array of slot items (`field` in `slots`, each slot once, only known keys)."""
    if not isinstance(value, list):
        raise bad_request(f"{name} must be an array", name, "contact")
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            raise bad_request(f"each {name} item must be an object", name, "contact")
        slot = item.get("field")
        if slot not in slots:
            raise bad_request(f"Invalid {name} field {slot!r}: use one of {', '.join(slots)}",
                              f"{name}.field", "contact")
        if slot in seen:
            raise bad_request(f"{name} lists {slot} more than once", f"{name}.field",
                              "contact")
        seen.add(slot)
        unknown = set(item) - {"field", *keys}
        if unknown:
            raise bad_request(f"Unknown {name} property {sorted(unknown)[0]!r}", name,
                              "contact")
    return value


def _string(key: str, value: Any, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{key} must be a string, got {value!r}", key, "contact")
    if limit is not None and len(value) > limit:
        raise bad_request(f"{key} is longer than {limit} characters", key, "contact")
    return value


def _object(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be an object", key, "contact")
    return value


def _date(key: str, value: Any) -> str:
    try:
        return date.fromisoformat(_string(key, value)).isoformat()
    except ValueError:
        raise bad_request(f"{key} must be a date YYYY-MM-DD, got {value!r}", key,
                          "contact") from None


def _company(value: Any) -> dict[str, Any]:
    obj = _object("company", value)
    out = {}
    if obj.get("id") is not None:
        out["id"] = str(obj["id"])
    if obj.get("company_name") is not None:
        out["company_name"] = _string("company.company_name", obj["company_name"])
    return out
