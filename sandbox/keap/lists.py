"""Keap v2 list mechanics: `filter`, `order_by`, `page_size`, `page_token` -> one SQL page.

Pages are keyset pages: the `next_page_token` carries the sort value and `seq` of the last row
returned, so each page is one indexed range query however deep the client pages, and every row
is returned exactly once while nothing changes under the client. A record updated mid-way moves
in an `update_time` ordering and can appear again, as on the real service.

The token also carries the filter and order it was made for: a follow-up request may resend
them (they must match) or send the token alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sandbox.keap.common import SOURCE, bad_request
from sandbox.store import Store, iso, parse_ts

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|>|<)(.*)$")
# Keap wants full date-times with milliseconds and an offset (spec, contact filter notes)
_FILTER_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
TOP = "\U0010ffff"  # sorts after every other character: the end of a prefix range
COLUMNS = ("seq", "updated_at")  # indexed record columns a list may be sorted on


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class Order:
    name: str            # as the client wrote it, e.g. "update_time"
    expr: str | None     # SQL sort expression; None = the record's numeric id (seq) alone
    desc: bool = False
    index: str | None = None  # the index that serves this order (see fetch)


@dataclass
class Paging:
    filter: str
    order_by: str
    size: int
    after: list[Any] | None


@dataclass
class Page:
    rows: list[tuple[dict[str, Any], Any]]   # (doc, extra column or None)
    next_token: str


@dataclass
class Where:
    """SQL conditions (ANDed) over `records` columns and `doc`, with their parameters."""

    sql: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    selective: bool = False  # narrowed to a few rows by key (ids, email): see fetch

    def add(self, sql: str, *params: Any) -> None:
        self.sql.append(sql)
        self.params.extend(params)


def paging(request: Request, scope: str) -> Paging:
    """The list parameters of a request, merged with what its page_token carries."""
    q = request.query_params
    size = _page_size(q.get("page_size"))
    token = q.get("page_token", "")
    filter_, order_by = q.get("filter"), q.get("order_by")
    if not token:
        return Paging(filter_ or "", order_by or "", size, None)
    state = decode_token(token)
    if state.get("s") != scope:
        raise bad_request("page_token was issued for a different list", "page_token")
    for name, sent, kept in (("filter", filter_, state["f"]), ("order_by", order_by, state["o"])):
        if sent is not None and sent != kept:
            raise bad_request(f"{name} must be the same as in the request that returned the "
                              f"page_token ({kept!r}), got {sent!r}", name)
    return Paging(state["f"], state["o"], size, state["k"])


def _page_size(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise bad_request(f"page_size must be an integer, got {text!r}", "page_size") from None
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise bad_request(f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {size}",
                          "page_size")
    return size or DEFAULT_PAGE_SIZE


def encode_token(scope: str, paging: Paging, key: list[Any]) -> str:
    raw = json.dumps({"s": scope, "f": paging.filter, "o": paging.order_by, "k": key},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(state, dict) or not {"s", "f", "o", "k"} <= state.keys():
            raise ValueError
        return state
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request("page_token is not a token this API returned", "page_token") from None


def parse_filter(text: str) -> list[Clause]:
    """`a==x;b==y` -> clauses (`;` is AND; empty segments, e.g. a trailing `;`, are skipped)."""
    clauses = []
    for part in text.split(";"):
        if not part.strip():
            continue
        m = _CLAUSE.match(part)
        if not m:
            raise bad_request(f"Invalid filter {part!r}: expected FIELD==VALUE", "filter")
        clauses.append(Clause(m.group(1), m.group(2), m.group(3).strip()))
    return clauses


def parse_order(text: str, allowed: dict[str, str | None],
                indexes: dict[str, str] | None = None) -> Order:
    """`field`, `field asc` or `field desc` (default: id ascending)."""
    words = text.replace("+", " ").split()
    if not words:
        return Order("id", None)
    name = words[0]
    if name not in allowed or len(words) > 2:
        raise bad_request(f"Invalid order_by {text!r}: use one of {', '.join(allowed)} "
                          "optionally followed by asc or desc", "order_by")
    direction = words[1].lower() if len(words) == 2 else "asc"
    if direction not in ("asc", "desc"):
        raise bad_request(f"Invalid order_by direction {words[1]!r}: use asc or desc",
                          "order_by")
    return Order(name, allowed[name], direction == "desc", (indexes or {}).get(name))


def only_equals(clause: Clause) -> None:
    if clause.op != "==":
        raise bad_request(f"filter field {clause.field} supports only ==, got {clause.op}",
                          clause.field)


def text_match(where: Where, expr: str, clause: Clause) -> None:
    """Case-insensitive equality, or prefix match when the value ends with `*`."""
    only_equals(clause)
    value = clause.value.translate(_ASCII_LOWER)  # SQLite's lower() folds ASCII only
    if clause.value == "NONE":  # Keap's spelling of "null or empty"
        where.add(f"ifnull({expr}, '') = ''")
    elif value.endswith("*"):
        prefix = value[:-1]
        where.add(f"substr(lower(ifnull({expr}, '')), 1, ?) = ?", len(prefix), prefix)
    else:
        where.add(f"lower({expr}) = ?", value)


def filter_time(clause: Clause) -> str:
    """A filter's date-time value as canonical ISO text (what `updated_at` holds)."""
    if not _FILTER_TIME.match(clause.value):
        raise bad_request(
            f"Invalid {clause.field} {clause.value!r}: use an ISO-8601 date-time with "
            "milliseconds and a zone, e.g. 2026-01-01T00:00:00.000Z", clause.field)
    return iso(parse_ts(clause.value))


def id_list(clause: Clause) -> list[str]:
    only_equals(clause)
    ids = [v.strip() for v in clause.value.split(",") if v.strip()]
    if not ids or not all(v.isdigit() for v in ids):
        raise bad_request(f"Invalid {clause.field} {clause.value!r}: use comma-separated "
                          "numeric ids, e.g. 1,2,3", clause.field)
    return ids


def fetch(store: Store, scope: str, entity: str, where: Where, order: Order, paging: Paging,
          extra: tuple[str, list[Any]] | None = None) -> Page:
    """One keyset page of `entity` rows matching `where`, in `order`."""
    # A selective filter (ids, email) finds its few rows by key and sorts them; without the
    # unary `+` SQLite would walk the whole sort index instead, row by row.
    plain = "+" if where.selective else ""
    sort_cols = ([plain + order.expr if order.expr in COLUMNS else order.expr]
                 if order.expr else []) + [plain + "seq"]
    conds = list(where.sql)
    params = list(where.params)
    if paging.after is not None:
        if len(paging.after) != len(sort_cols):
            raise bad_request("page_token does not fit this order_by", "page_token")
        cond, values = _after(sort_cols, paging.after, order.desc)
        conds.append(cond)
        params.extend(values)
    direction = " DESC" if order.desc else ""
    extra_sql, extra_params = extra or ("NULL", [])
    index = f" INDEXED BY {order.index}" if order.index and not where.selective else ""
    # literal source/entity so SQLite may use the partial indexes on keap contacts
    sql = (f"SELECT doc, {', '.join(sort_cols)}, {extra_sql} FROM records{index} "
           f"WHERE source = '{SOURCE}' AND entity = '{entity}'"
           + "".join(f" AND ({c})" for c in conds)
           + f" ORDER BY {', '.join(c + direction for c in sort_cols)} LIMIT ?")
    rows = store.conn.execute(sql, [*extra_params, *params, paging.size + 1]).fetchall()
    more = len(rows) > paging.size
    rows = rows[: paging.size]
    out = [(json.loads(r[0]), r[-1]) for r in rows]
    token = ""
    if more and rows:
        token = encode_token(scope, paging, list(rows[-1][1: 1 + len(sort_cols)]))
    return Page(out, token)


def _after(sort_cols: list[str], key: list[Any], desc: bool) -> tuple[str, list[Any]]:
    """The keyset condition "after this (sort value, seq)", in a form SQLite runs as a range
    on the sort index (a row-value comparison is not, on expression indexes)."""
    gt, ge = ("<", "<=") if desc else (">", ">=")
    if len(sort_cols) == 1:
        return f"{sort_cols[0]} {gt} ?", [key[0]]
    expr, seq = sort_cols
    return f"{expr} {ge} ? AND ({expr} {gt} ? OR {seq} {gt} ?)", [key[0], key[0], key[1]]
