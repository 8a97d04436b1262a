"""What a restore compares and writes, per source: each restorable field as a DuckDB expression
that turns a record's `_raw` JSON (backup row or live record, same shape) into a canonical JSON
text. Two records hold the same value for a field exactly when these texts are equal, and the
text is also what the restore sends (nulls dropped), so "compare" and "write" cannot disagree.

What is left out on purpose: values the vendor derives or owns (ids, create/update times, Keap's
`number_e164` and e-mail opt-in status, HighLevel's lower-case search copies and `name`), and
histories the API cannot write back (Keap UTM touches, notes, scores).

Values are compared as the vendor stores them (its write rules, `sandbox/` and
docs/recovery.md "Restore"): a backed-up value the vendor would change on write is compared and
sent in that changed form, or a finished restore would list it again forever. Keap trims an
e-mail address (every Unicode whitespace, like Python's `str.strip`) and keeps its case; it
stores names, phone numbers and addresses as sent. HighLevel trims every text field (`tv_text`
trims too), keeps an e-mail's case and stores phones in E.164 (its backups already hold E.164).
The backup files themselves are never changed: only the comparison and the write use this form.
"""

from __future__ import annotations

from dataclasses import dataclass

# the characters Python's str.strip() removes (the sandbox vendors' trim), for DuckDB's trim()
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_WS_SQL = "concat(" + ", ".join(f"chr({ord(c)})" for c in WHITESPACE) + ")"

# a canonical array: sorted, and NULL when empty (missing and [] mean the same to both vendors)
MACROS = [
    "CREATE OR REPLACE TEMP MACRO tv_nonempty(v) AS CASE WHEN len(v) > 0 THEN to_json(v) END",
    "CREATE OR REPLACE TEMP MACRO tv_text(v) AS to_json(nullif(trim(v), ''))",
    "CREATE OR REPLACE TEMP MACRO tv_is_value(v) AS "
    "(v IS NOT NULL AND CAST(v AS VARCHAR) NOT IN ('null', '\"\"', '[]'))",
    # an e-mail address as Keap stores it: whitespace around it trimmed, case kept
    f"CREATE OR REPLACE TEMP MACRO tv_strip(v) AS nullif(trim(v, {_WS_SQL}), '')",
    # HighLevel configuration ids as the backup knows them: a live custom field, pipeline or
    # stage matched to a backup one (recreated, rebuilt by hand) reads as the backup's id;
    # redefined by restore/config.py once the live configuration is read
    # the same for Keap tags and contact custom fields (restore/keap_config.py)
    *(f"CREATE OR REPLACE TEMP MACRO {m}(i) AS i"
      for m in ("tv_hl_field", "tv_hl_pipeline", "tv_hl_stage", "tv_keap_tag",
                "tv_keap_field")),
]


@dataclass(frozen=True)
class Field:
    name: str           # the API's property name (body key, update_mask entry)
    sql: str            # canonical JSON text (VARCHAR) from `_raw`, NULL = no value
    personal: bool      # masked in previews unless values are asked for


def text(name: str, personal: bool = True) -> Field:
    return Field(name, f"tv_text(json_extract_string(_raw, '$.\"{name}\"'))", personal)


def objects(name: str, shape: str, personal: bool = True, where: str | None = None,
            each: str | None = None) -> Field:
    """An array of objects reduced to the keys in `shape` (a json_transform structure), each
    rewritten by `each` (a struct expression over `x`) when given."""
    items = f"json_transform(json_extract(_raw, '$.\"{name}\"'), '[{shape}]')"
    if each:
        items = f"list_transform({items}, lambda x: {each})"
    if where:
        items = f"list_filter({items}, lambda x: {where})"
    return Field(name, f"tv_nonempty(list_sort({items}))", personal)


def whole(name: str, personal: bool = True) -> Field:
    """A JSON value compared as a whole (backup and live `_raw` both have sorted keys); an
    empty object counts as no value."""
    value = f"CAST(json_extract(_raw, '$.\"{name}\"') AS VARCHAR)"
    return Field(name, f"CASE WHEN {value} NOT IN ('{{}}', 'null') THEN {value} END", personal)


# -- Keap contacts ---------------------------------------------------------------------------
KEAP_FIELDS: tuple[Field, ...] = (
    *(text(n) for n in ("given_name", "family_name", "middle_name", "preferred_name",
                        "spouse_name", "website", "birth_date", "anniversary_date")),
    *(text(n, personal=False) for n in ("prefix", "suffix", "job_title", "contact_type",
                                        "time_zone", "preferred_locale", "owner_id",
                                        "leadsource_id")),
    # Keap trims an address on write: compared (and sent) trimmed; a blank one is no address
    Field("email_addresses", "tv_nonempty(list_sort(list_filter(list_transform(json_transform("
          "json_extract(_raw, '$.\"email_addresses\"'), '[{\"field\": \"VARCHAR\", \"email\": "
          "\"VARCHAR\"}]'), lambda x: {'field': x.field, 'email': tv_strip(x.email)}), "
          "lambda x: x.email IS NOT NULL)))", True),
    objects("phone_numbers", '{"field": "VARCHAR", "number": "VARCHAR", "extension": '
            '"VARCHAR", "type": "VARCHAR"}'),
    objects("addresses", '{"field": "VARCHAR", "line1": "VARCHAR", "line2": "VARCHAR", '
            '"locality": "VARCHAR", "region": "VARCHAR", "region_code": "VARCHAR", '
            '"country": "VARCHAR", "country_code": "VARCHAR", "postal_code": "VARCHAR", '
            '"zip_code": "VARCHAR", "zip_four": "VARCHAR"}'),
    objects("fax_numbers", '{"field": "VARCHAR", "number": "VARCHAR", "type": "VARCHAR"}'),
    objects("social_accounts", '{"type": "VARCHAR", "name": "VARCHAR"}'),
    objects("custom_fields", '{"id": "VARCHAR", "content": "JSON"}',
            where="tv_is_value(x.content)",
            each="{'id': tv_keap_field(x.id), 'content': x.content}"),
    Field("company", "CASE WHEN json_extract_string(_raw, '$.company.id') IS NOT NULL OR "
          "json_extract_string(_raw, '$.company.company_name') IS NOT NULL THEN to_json("
          "{'id': json_extract_string(_raw, '$.company.id'), 'company_name': "
          "json_extract_string(_raw, '$.company.company_name')}) END", False),
)
KEAP_TAGS = ("list_sort(list_distinct(list_transform(coalesce(json_transform(json_extract(_raw, "
             "'$.tag_ids'), '[\"VARCHAR\"]'), []), lambda t: tv_keap_tag(t))))")
KEAP_CREATED = "TRY_CAST(json_extract_string(_raw, '$.create_time') AS TIMESTAMPTZ)"
KEAP_UPDATED = "TRY_CAST(json_extract_string(_raw, '$.update_time') AS TIMESTAMPTZ)"

# -- HighLevel contacts ----------------------------------------------------------------------
HIGHLEVEL_FIELDS: tuple[Field, ...] = (
    *(text(n) for n in ("firstName", "lastName", "email", "phone", "address1", "city", "state",
                        "postalCode", "website", "dateOfBirth", "gender")),
    *(text(n, personal=False) for n in ("companyName", "timezone", "source", "country",
                                        "assignedTo")),
    Field("dnd", "to_json(coalesce(TRY_CAST(json_extract(_raw, '$.dnd') AS BOOLEAN), false))",
          False),
    whole("dndSettings", False),
    whole("inboundDndSettings", False),
    objects("customFields", '{"id": "VARCHAR", "value": "JSON"}', where="tv_is_value(x.value)",
            each="{'id': tv_hl_field(x.id), 'value': x.value}"),
    # sent as a whole list: HighLevel replaces a contact's tags with what an update carries
    Field("tags", "tv_nonempty(list_sort(list_distinct(list_transform(json_transform("
          "json_extract(_raw, '$.tags'), '[\"VARCHAR\"]'), lambda t: lower(trim(t))))))", False),
)
HIGHLEVEL_TAGS = ("list_sort(list_distinct(list_transform(coalesce(json_transform(json_extract("
                  "_raw, '$.tags'), '[\"VARCHAR\"]'), []), lambda t: lower(trim(t)))))")
HIGHLEVEL_CREATED = "TRY_CAST(json_extract_string(_raw, '$.dateAdded') AS TIMESTAMPTZ)"
HIGHLEVEL_UPDATED = "TRY_CAST(json_extract_string(_raw, '$.dateUpdated') AS TIMESTAMPTZ)"

# -- HighLevel opportunities (children of contacts; `contactId` is mapped, not compared) ------
OPPORTUNITY_FIELDS: tuple[Field, ...] = (
    # in this order (the record hash a plan holds is over the fields in order)
    text("name", personal=False),
    Field("pipelineId", "tv_text(tv_hl_pipeline(json_extract_string(_raw, '$.pipelineId')))",
          False),
    Field("pipelineStageId", "tv_text(tv_hl_stage(json_extract_string(_raw, "
          "'$.pipelineStageId')))", False),
    *(text(n, personal=False) for n in ("status", "assignedTo", "source")),
    Field("monetaryValue", "to_json(coalesce(TRY_CAST(json_extract(_raw, '$.monetaryValue') AS "
          "DOUBLE), 0))", False),
    objects("customFields", '{"id": "VARCHAR", "fieldValue": "JSON"}',
            personal=False, where="tv_is_value(x.fieldValue)",
            each="{'id': tv_hl_field(x.id), 'fieldValue': x.fieldValue}"),
)
OPPORTUNITY_CONTACT = "json_extract_string(_raw, '$.contactId')"
OPPORTUNITY_CREATED = "TRY_CAST(json_extract_string(_raw, '$.createdAt') AS TIMESTAMPTZ)"
OPPORTUNITY_UPDATED = "TRY_CAST(json_extract_string(_raw, '$.updatedAt') AS TIMESTAMPTZ)"


@dataclass(frozen=True)
class SourceSpec:
    source: str
    fields: tuple[Field, ...]
    tags_sql: str
    created_sql: str
    updated_sql: str
    tags_as_field: bool    # HighLevel: tags travel in the contact body; Keap: tag endpoints

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


SPECS = {
    "keap": SourceSpec("keap", KEAP_FIELDS, KEAP_TAGS, KEAP_CREATED, KEAP_UPDATED, False),
    "highlevel": SourceSpec("highlevel", HIGHLEVEL_FIELDS, HIGHLEVEL_TAGS, HIGHLEVEL_CREATED,
                            HIGHLEVEL_UPDATED, True),
}


def check_fields(source: str, fields: list[str] | None) -> list[str] | None:
    """The `--fields` subset, checked: every name must be a restorable field of the source
    (`tags`, `notes` and `tasks` always; `opportunities` for HighLevel)."""
    if not fields:
        return None
    spec = SPECS[source]
    allowed = set(spec.names) | {"tags", "notes", "tasks"} | (
        {"opportunities"} if source == "highlevel" else set())
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"--fields: {', '.join(unknown)} cannot be restored on {source}; "
                         f"restorable fields are {', '.join(sorted(allowed))}")
    return sorted(set(fields))
