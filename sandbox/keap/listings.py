"""Keap v2 lists of notes, tasks, emails, opportunities and companies: which `filter` fields and
`order_by` names each takes (as the spec documents them per list), and the optional properties
a reply leaves out unless `fields` asks for them.

Time filters: `since_time` / `until_time` of notes, tasks and companies are read as the record's
update time (the companies list says so; notes and tasks do not say which time, and an update
time is the one a change-tracking reader can use); the emails list filters on the time an email
was created (`start_created_time` / `end_created_time`: in the sandbox, its `sent_time`);
opportunities have no time filter at all, only `order_by=update_time`. Opportunity stages
(`GET /opportunities/stages`, replied under `stages`) filter on their name (prefix with `*`) and
id (comparisons) and order by `stage_order`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sandbox.keap.common import bad_request, query_list
from sandbox.keap.lists import Clause, Where, filter_time, id_list, only_equals, text_match

Filter = Callable[[Where, Clause], None]
OPS = {"==": "=", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "<=": "<="}


def _json(path: str) -> str:
    return f"json_extract(doc, '$.{path}')"


def equals(path: str) -> Filter:
    def add(where: Where, clause: Clause) -> None:
        only_equals(clause)
        where.add(f"CAST({_json(path)} AS TEXT) = ?", clause.value)
    return add


def parent_is(where: Where, clause: Clause) -> None:
    only_equals(clause)
    where.add("parent = ?", clause.value)


def id_compare(where: Where, clause: Clause) -> None:
    if not clause.value.isdigit():
        raise bad_request(f"Invalid {clause.field} {clause.value!r}: use a numeric id",
                          clause.field)
    where.add(f"seq {OPS[clause.op]} ?", int(clause.value))


def ids_in(where: Where, clause: Clause) -> None:
    ids = id_list(clause)
    where.add(f"id IN ({', '.join('?' * len(ids))})", *ids)
    where.selective = True


def updated(op: str) -> Filter:
    """since_time / until_time (and start_/end_created_time): the `updated_at` column."""
    def add(where: Where, clause: Clause) -> None:
        only_equals(clause)
        where.add(f"updated_at {op} ?", filter_time(clause))
    return add


def text(path: str, contains: bool = False) -> Filter:
    """Case-insensitive equality or prefix (`Foo*`); `contains`: a bare value matches anywhere
    (the notes' title filter)."""
    def add(where: Where, clause: Clause) -> None:
        if contains and not clause.value.endswith("*"):
            only_equals(clause)
            where.add(f"instr(lower(ifnull({_json(path)}, '')), ?) > 0", clause.value.lower())
        else:
            text_match(where, f"{_json(path)}", clause)
    return add


def boolean(path: str, present: bool = False) -> Filter:
    def add(where: Where, clause: Clause) -> None:
        only_equals(clause)
        if clause.value not in ("true", "false"):
            raise bad_request(f"Invalid {clause.field} {clause.value!r}: use true or false",
                              clause.field)
        want = clause.value == "true"
        expr = f"{_json(path)} IS NOT NULL" if present else f"ifnull({_json(path)}, 0) = 1"
        where.add(expr if want else f"NOT ({expr})")
    return add


@dataclass(frozen=True)
class Listing:
    entity: str                               # the store's entity and the reply's list key
    filters: dict[str, Filter]
    orders: dict[str, str | None]
    optional: tuple[str, ...] = ()            # left out unless `fields` names them
    unsupported: tuple[str, ...] = ()         # documented, not emulated: refused by name
    list_only_drops: tuple[str, ...] = ()     # never in a list (an email's content)
    also_fields: tuple[str, ...] = ()         # accepted by `fields`, always in the reply
    indexes: dict[str, str] = field(default_factory=dict)
    key: str = ""                             # the reply's list key, when not the entity

    def where(self, filter_text: list[Clause]) -> Where:
        where = Where()
        for clause in filter_text:
            add = self.filters.get(clause.field)
            if add is None:
                if clause.field in self.unsupported:
                    raise bad_request(f"filter field {clause.field} is not supported by the "
                                      "sandbox", clause.field)
                raise bad_request(f"Invalid filter field {clause.field!r}: use one of "
                                  f"{', '.join(self.filters)}", clause.field)
            add(where, clause)   # each filter checks its operators (id comparisons take all)
        return where

    def project(self, doc: dict[str, Any], request: Request, *, listed: bool) -> dict[str, Any]:
        asked = set(query_list(request, "fields"))
        unknown = asked - set(self.optional) - set(self.also_fields)
        if unknown:
            raise bad_request(f"Invalid fields value {sorted(unknown)[0]!r}: allowed "
                              f"{', '.join(self.optional)}", "fields")
        drop = {f for f in self.optional if f not in asked}
        if listed:
            drop |= set(self.list_only_drops)
        return {k: v for k, v in doc.items() if k not in drop}


NOTE_FILTERS = {"id": id_compare, "ids": ids_in, "title": text("title", contains=True),
                "contact_id": parent_is, "assigned_to_user_id": equals("assigned_to_user.id"),
                "since_time": updated(">="), "until_time": updated("<=")}
NOTES = Listing("notes", NOTE_FILTERS,
                {"id": None, "create_time": _json("create_time"), "update_time": "updated_at"},
                optional=("custom_fields",))
TASKS = Listing(
    "tasks",
    {"contact_id": parent_is, "has_due_date": boolean("due_time", present=True),
     "is_completed": boolean("completed"), "user_id": equals("assigned_to_user_id"),
     "opportunity_id": equals("opportunity_id"), "task_ids": ids_in,
     "priority": equals("priority"), "since_time": updated(">="), "until_time": updated("<="),
     "id": id_compare, "title": text("title")},
    {"id": None, "create_time": _json("create_time"), "due_time": _json("due_time"),
     "update_time": "updated_at"},
    optional=("custom_fields",))
EMAILS = Listing(
    "emails",
    {"contact_id": parent_is, "email": text("sent_to_address"),
     "start_created_time": updated(">="), "end_created_time": updated("<=")},
    {"created_time": "updated_at"},
    list_only_drops=("plain_content", "html_content"))
OPPORTUNITIES = Listing(
    "opportunities",
    {"stage_id": equals("stage.id"), "user_id": equals("user.id"),
     "contact_id": equals("contact.id"), "opportunity_title": text("opportunity_title"),
     "opportunity_id": id_compare, "ids": ids_in},
    {"next_action_time": _json("next_action_time"),
     "contact_name": f"lower(ifnull({_json('contact.first_name')}, ''))",
     "opportunity_title": f"lower(ifnull({_json('opportunity_title')}, ''))",
     "created_time": _json("created_time"), "update_time": "updated_at"},
    optional=("custom_fields", "created_by", "last_updated_by", "status_id"),
    unsupported=("lead_source_name", "affiliate_id", "contact_phone", "contact_city",
                 "contact_state", "projected_revenue_high", "projected_revenue_low"))
COMPANIES = Listing(
    "companies",
    {"company_name": equals("company_name"), "name": text("company_name"),
     "email": equals("email_address.email"), "since_time": updated(">="),
     "until_time": updated("<="), "company_id": id_compare},
    {"id": None, "create_time": _json("create_time"),
     "name": f"lower(ifnull({_json('company_name')}, ''))",
     "email": f"lower(ifnull({_json('email_address.email')}, ''))"},
    # "Fields such as notes, fax_number, address, email_address, phone_number, update_time,
    # create_time and custom_fields aren't included, by default."
    optional=("notes", "fax_number", "address", "email_address", "phone_number", "update_time",
              "create_time", "custom_fields"),
    also_fields=("website",),
    unsupported=("city", "state"))
OPPORTUNITY_STAGES = Listing(
    "opportunity_stages",
    {"opportunity_stage_name": text("name"), "opportunity_stage_id": id_compare},
    {"stage_order": _json("order")}, key="stages")
