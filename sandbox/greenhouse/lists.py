"""Harvest v3 list queries: parameters, filters, opaque cursors and keyset pages over SQLite.

A list request is parsed into a `ListQuery` (validated filters + page size). The first page is
built from the query parameters; every later page comes from a `cursor` that carries the same
query plus the position reached, so following `Link: rel="next"` continues the very same query.
Records are served newest id first (Greenhouse orders v3 lists by id descending), keyset-paged on
the indexed `seq` column, so a page costs the same at record 10 or record 1,000,000.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.store import Store, iso, parse_ts

SOURCE = "greenhouse"
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500
MAX_IDS = 50  # Greenhouse caps every `*_ids` filter at 50 values
# An updated_at window matching at most this many records is served from the updated_at index
# (top-N sort per page); wider windows walk the id index and filter, one pass for all pages.
NARROW_WINDOW = 50_000

OPERATORS = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
STATUSES = {
    "applications": ("in_process", "rejected", "hired", "converted"),
    "jobs": ("open", "draft", "closed"),
    "offers": ("Created", "Accepted", "Rejected", "Deprecated"),
    "interviews": ("to_be_scheduled", "scheduled", "awaiting_feedback", "complete", "skipped",
                   "collect_feedback", "to_be_sent", "sent", "received"),
}


@dataclass(frozen=True)
class EntitySpec:
    parent: str | None = None          # the doc field indexed as `parent` (records.py rules)
    id_fields: tuple[str, ...] = ()    # other integer doc fields a client may filter on


ENTITIES: dict[str, EntitySpec] = {
    "candidates": EntitySpec(),
    "applications": EntitySpec("candidate_id", ("job_id",)),
    "jobs": EntitySpec(),
    "job_interview_stages": EntitySpec("job_id"),
    "application_stages": EntitySpec("application_id", ("job_interview_stage_id",)),
    "offers": EntitySpec("application_id", ("candidate_id", "job_id")),
    "interviews": EntitySpec("application_id", ("job_id",)),
    "rejection_reasons": EntitySpec(),
    "rejection_details": EntitySpec("application_id", ("rejection_reason_id",)),
    "users": EntitySpec(),
    "departments": EntitySpec(),
    "offices": EntitySpec(),
    "sources": EntitySpec(),
    # the rest of the candidate record (world/ats_history.py) and its reference data
    "scorecards": EntitySpec("application_id", ("interviewer_id",)),
    "notes": EntitySpec("candidate_id", ("application_id", "user_id")),
    "attachments": EntitySpec("application_id", ("candidate_id",)),
    "applied_candidate_tags": EntitySpec("candidate_id", ("candidate_tag_id",)),
    "candidate_tags": EntitySpec(),
    "custom_fields": EntitySpec(),
    "close_reasons": EntitySpec(),
    "job_posts": EntitySpec("job_id"),
}


class QueryError(ValueError):
    """A request parameter the API refuses (422), naming the parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class ListQuery:
    entity: str
    per_page: int = DEFAULT_PER_PAGE
    ids: list[int] = field(default_factory=list)
    id_filters: dict[str, list[int]] = field(default_factory=dict)   # doc field -> any of ids
    statuses: list[str] = field(default_factory=list)
    ranges: list[tuple[str, str, str]] = field(default_factory=list)  # (column, op, iso text)
    after: int | None = None      # keyset position: the seq of the last record served
    plan: str | None = None       # a PLANS key: fixed on the first page, kept in the cursor


@dataclass(frozen=True)
class Page:
    docs: list[str]               # the records' JSON text, as stored
    next_cursor: str | None


# -- parsing ---------------------------------------------------------------------------------

def parse_query(entity: str, params: list[tuple[str, str]]) -> ListQuery:
    """The query of a list request: from its cursor alone, or from its filters."""
    names = [k for k, _ in params]
    if "cursor" in names:
        if len(params) > 1:
            others = sorted({k for k in names if k != "cursor"})
            raise QueryError("cursor", "when cursor is given it must be the only query "
                             f"parameter; also got: {', '.join(others)}. Follow the "
                             "rel=\"next\" URL of the Link header exactly.")
        return decode_cursor(entity, params[0][1])
    query = ListQuery(entity)
    allowed = _allowed_params(entity)
    for name, value in params:
        if name not in allowed:
            raise QueryError(name, f"unknown query parameter for /v3/{entity}; supported: "
                             f"{', '.join(sorted(allowed))}")
        _apply(query, name, value)
    return query


def _allowed_params(entity: str) -> set[str]:
    spec = ENTITIES[entity]
    names = {"per_page", "ids", "updated_at", "created_at"}
    for f in (spec.parent, *spec.id_fields):
        if f:
            names |= {f, f + "s"}
    if entity in STATUSES:
        names.add("status")
    return names


def _apply(query: ListQuery, name: str, value: str) -> None:
    if name == "per_page":
        query.per_page = _per_page(value)
    elif name == "ids":
        query.ids = _merge(name, query.ids, value)
    elif name in ("updated_at", "created_at"):
        query.ranges.append(_range(name, value))
    elif name == "status":
        query.statuses = sorted(set(query.statuses) | set(_statuses(query.entity, value)))
    else:
        key = name.removesuffix("s") if name.endswith("_ids") else name
        query.id_filters[key] = _merge(name, query.id_filters.get(key, []), value)


def _merge(name: str, have: list[int], value: str) -> list[int]:
    """A repeated id filter adds to the same list, under the same cap."""
    merged = sorted(set(have) | set(_int_list(name, value)))
    if len(merged) > MAX_IDS:
        raise QueryError(name, f"accepts at most {MAX_IDS} ids, got {len(merged)}")
    return merged


def _per_page(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise QueryError("per_page", f"must be an integer from 1 to {MAX_PER_PAGE}, "
                         f"got {value!r}") from None
    if not 1 <= n <= MAX_PER_PAGE:
        raise QueryError("per_page", f"must be from 1 to {MAX_PER_PAGE}, got {n}")
    return n


def _int_list(name: str, value: str) -> list[int]:
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or any(not p.isdigit() for p in parts):
        raise QueryError(name, f"must be a comma-separated list of integer ids, got {value!r}")
    if len(parts) > MAX_IDS:
        raise QueryError(name, f"accepts at most {MAX_IDS} ids, got {len(parts)}")
    return [int(p) for p in parts]


def _statuses(entity: str, value: str) -> list[str]:
    wanted = [p.strip() for p in value.split(",")]
    bad = [w for w in wanted if w not in STATUSES[entity]]
    if bad:
        raise QueryError("status", f"unknown status {bad[0]!r}; one of "
                         f"{', '.join(STATUSES[entity])}")
    return wanted


def _range(name: str, value: str) -> tuple[str, str, str]:
    op, sep, text = value.partition("|")
    if not sep or op not in OPERATORS:
        raise QueryError(name, "must look like gte|2024-01-01T00:00:00Z (operators: "
                         f"{', '.join(OPERATORS)}), got {value!r}")
    # an unencoded '+' of a UTC offset arrives as a space: read it as the '+' it was
    text = text.strip().replace(" ", "+")
    try:
        ts = parse_ts(text)
    except ValueError:
        raise QueryError(name, f"{text!r} is not an ISO-8601 timestamp") from None
    return (name, *_to_millis(op, ts))


def _to_millis(op: str, ts: datetime) -> tuple[str, str]:
    """Restate a bound on stored millisecond timestamps exactly, even for a finer bound."""
    extra = ts.microsecond % 1000
    if not extra:
        return op, iso(ts)
    floor = ts - timedelta(microseconds=extra)
    if op in ("gte", "gt"):
        return "gte", iso(floor + timedelta(milliseconds=1))
    return "lte", iso(floor)


# -- cursors ---------------------------------------------------------------------------------

def encode_cursor(query: ListQuery) -> str:
    raw = json.dumps(asdict(query), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(entity: str, text: str) -> ListQuery:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data: dict[str, Any] = json.loads(raw)
        data["ranges"] = [tuple(r) for r in data["ranges"]]
        query = ListQuery(**data)
        issued_here = _well_formed(query)
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        issued_here = False
    if not issued_here:
        raise QueryError("cursor", "is not a cursor this API issued; take it from the "
                         "Link header of the previous page")
    if query.entity != entity:
        raise QueryError("cursor", f"was issued for /v3/{query.entity}, not /v3/{entity}")
    return query


def _well_formed(q: ListQuery) -> bool:
    """A decoded cursor holds only what parse_query can produce (its parts reach the SQL)."""
    if q.entity not in ENTITIES:
        return False
    spec = ENTITIES[q.entity]
    fields = {f for f in (spec.parent, *spec.id_fields) if f}
    return (
        isinstance(q.per_page, int) and 1 <= q.per_page <= MAX_PER_PAGE
        and _ints(q.ids) and set(q.id_filters) <= fields
        and all(_ints(v) for v in q.id_filters.values())
        and all(s in STATUSES.get(q.entity, ()) for s in q.statuses)
        and all(len(r) == 3 and r[0] in ("updated_at", "created_at") and r[1] in OPERATORS
                and isinstance(r[2], str) for r in q.ranges)
        and (q.after is None or isinstance(q.after, int))
        and (q.plan is None or q.plan in PLANS)
    )


def _ints(values: Any) -> bool:
    return isinstance(values, list) and all(type(v) is int for v in values)


# -- SQL -------------------------------------------------------------------------------------

# How each plan reads the table: (index hint, sort key). SQLite, left alone, walks the seq index
# for the ORDER BY even when a few primary-key or parent lookups would do (seconds instead of
# milliseconds on a million rows), so every plan names its access path.
PLANS = {
    "keys": ("", "+seq"),  # unary '+' keeps the seq index out: look the ids up, then sort
    "parent": (" INDEXED BY records_parent_seq", "+seq"),
    "updated": (" INDEXED BY records_updated", "seq"),
    "seq": (" INDEXED BY records_seq", "seq"),
}


def fetch_page(store: Store, query: ListQuery) -> Page:
    """One page of records, newest id first, and the cursor of the next page if there is one."""
    if query.plan is None:
        query.plan = _choose_plan(store, query)
    where, params = _where(query)
    hint, order = PLANS[query.plan]
    rows = store.conn.execute(
        f"SELECT seq, doc FROM records{hint} WHERE {where} ORDER BY {order} DESC LIMIT ?",
        (*params, query.per_page + 1),
    ).fetchall()
    more = len(rows) > query.per_page
    rows = rows[: query.per_page]
    next_cursor = None
    if more:
        query.after = rows[-1][0]
        next_cursor = encode_cursor(query)
    return Page([doc for _, doc in rows], next_cursor)


def _choose_plan(store: Store, query: ListQuery) -> str:
    """The cheapest access path for a query, decided on its first page and kept in its cursor.

    A narrow update window is read from the updated_at index (a small top-N sort per page); a
    wide one walks the id order and filters, which costs one pass over the table for all pages.
    """
    if query.ids:
        return "keys"
    if ENTITIES[query.entity].parent in query.id_filters:
        return "parent"
    bounds = [(op, value) for column, op, value in query.ranges if column == "updated_at"]
    if not bounds:
        return "seq"
    clauses = " AND ".join(f"updated_at {OPERATORS[op]} ?" for op, _ in bounds)
    n = store.conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM records INDEXED BY records_updated "
        f"WHERE source = ? AND entity = ? AND {clauses} LIMIT ?)",
        (SOURCE, query.entity, *(v for _, v in bounds), NARROW_WINDOW + 1),
    ).fetchone()[0]
    return "updated" if n <= NARROW_WINDOW else "seq"


def _where(query: ListQuery) -> tuple[str, list[Any]]:
    clauses = ["source = ?", "entity = ?"]
    params: list[Any] = [SOURCE, query.entity]
    if query.ids:
        clauses.append(f"id IN ({_marks(query.ids)})")
        params += [str(i) for i in query.ids]
    parent = ENTITIES[query.entity].parent
    for name, values in sorted(query.id_filters.items()):
        if name == parent:
            clauses.append(f"parent IN ({_marks(values)})")
            params += [str(v) for v in values]
        else:
            clauses.append(f"json_extract(doc, '$.{name}') IN ({_marks(values)})")
            params += values
    if query.statuses:
        clauses.append(f"json_extract(doc, '$.status') IN ({_marks(query.statuses)})")
        params += query.statuses
    for column, op, value in query.ranges:
        clauses.append(f"{_column(column)} {OPERATORS[op]} ?")
        params.append(value)
    if query.after is not None:
        clauses.append("seq < ?")
        params.append(query.after)
    return " AND ".join(clauses), params


def _column(name: str) -> str:
    if name == "updated_at":
        return "updated_at"  # canonical text, indexed
    # created_at lives only in the doc: normalize it to the same canonical text to compare
    return "strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(doc, '$.created_at'))"


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


def get_doc(store: Store, entity: str, id_: str) -> str | None:
    row = store.conn.execute(
        "SELECT doc FROM records WHERE source = ? AND entity = ? AND id = ?",
        (SOURCE, entity, id_),
    ).fetchone()
    return row[0] if row else None
