"""The entity schema model: how a vendor record becomes one flat Parquet row of a backup.

Each entity declares an `EntitySchema` (its id, update time and flattened columns); every row
also keeps the record as the vendor returned it (`_raw`) and the backup's own columns
(`META_COLUMNS`). Deletions are rows with `_op = 'delete'`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.times import parse_ts

META_COLUMNS = ("_raw", "_source_updated_at", "_extracted_at", "_op", "_run_id")
TS = pa.timestamp("ms", tz="UTC")
STR = pa.string()
INT64 = 2 ** 63
LONE_SURROGATE = re.compile("[\ud800-\udfff]")   # in a str, every surrogate is a lone one


# -- what a partition's rows look like -----------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    get: Callable[[dict[str, Any]], Any]


def path_of(path: str) -> Callable[[dict[str, Any]], Any]:
    keys = path.split(".")

    def get(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for k in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(k)
        return value
    return get


def as_ts(getter: Callable[[dict], Any]) -> Callable[[dict], datetime | None]:
    def get(doc: dict) -> datetime | None:
        value = getter(doc)
        if not value:
            return None
        try:
            return parse_ts(str(value))
        except ValueError:
            return None  # unparseable stays null here; the raw text is kept in _raw
    get.text = getter   # type: ignore[attr-defined]  # page_column parses a page's at once
    return get


def epoch_ms(path: str) -> Callable[[dict], datetime | None]:
    """A time the vendor sends as epoch milliseconds (HighLevel's conversations)."""
    getter = path_of(path)

    def get(doc: dict) -> datetime | None:
        value = getter(doc)
        try:
            return None if value in (None, "") or isinstance(value, bool) else \
                datetime.fromtimestamp(int(value) / 1000, UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            return None   # kept in _raw
    return get


def col(name: str, type_: pa.DataType = STR, source: str | None = None,
        get: Callable[[dict], Any] | None = None) -> Column:
    """A flattened column: by default the doc's field of the same name (dotted paths allowed);
    timestamp columns parse ISO text."""
    getter = get or path_of(source or name)
    if type_ == TS and get is None:
        return Column(name, type_, as_ts(getter))
    return Column(name, type_, _coerced(getter, type_))


def _coerced(getter: Callable[[dict], Any], type_: pa.DataType) -> Callable[[dict], Any]:
    """Vendor data is loosely typed (ids as numbers or strings, numbers as text): coerce to the
    column type, and leave a value that will not coerce null (it is still in `_raw`)."""
    if pa.types.is_string(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            if v is None or isinstance(v, str):
                return v
            return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
    elif pa.types.is_integer(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            try:
                n = None if v is None or isinstance(v, bool) else int(v)
            except (TypeError, ValueError):
                return None
            return n if n is None or -INT64 <= n < INT64 else None   # past int64: in _raw only
    elif pa.types.is_floating(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            try:
                return None if v is None or isinstance(v, bool) else float(v)
            except (TypeError, ValueError):
                return None
    elif pa.types.is_boolean(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            return v if isinstance(v, bool) else None
    else:
        return getter
    return get


def list_of(field_name: str, key: str | None = None) -> Callable[[dict], list | None]:
    """All values of an array field (or of one key of its objects)."""
    def get(doc: dict) -> list | None:
        items = doc.get(field_name)
        if items is None:
            return None
        if key is None:
            return [None if i is None else str(i) for i in items]
        return [str(i.get(key)) for i in items if isinstance(i, dict) and i.get(key) is not None]
    return get


def first_of(field_name: str, key: str) -> Callable[[dict], Any]:
    def get(doc: dict) -> Any:
        for item in doc.get(field_name) or []:
            if isinstance(item, dict) and item.get(key):
                return item[key]
        return None
    return get


def canonical_json(doc: Any) -> str:
    """A record as `_raw` keeps it: keys sorted, no spaces, non-ASCII as is; byte for byte what
    `json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))` writes, ~10x
    faster. orjson writes small floats differently (1e-05 as 0.00001, 1.5e-07 as 1.5e-7) and
    refuses lone surrogates and integers past 64 bits: those records go through `json`. A lone
    surrogate (valid in a JSON escape, not in UTF-8: a vendor's broken text) becomes U+FFFD, as
    in the columns: kept escaped, it made DuckDB's JSON functions refuse the whole query over
    the entity (`json_extract` on any record); the writer names such records."""
    try:
        out = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        out = None
    if out is None or b"e-" in out or b"0.0000" in out:
        text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        try:
            text.encode()
        except UnicodeEncodeError:   # a lone surrogate ("\ud800" in the API's JSON)
            text = LONE_SURROGATE.sub("\ufffd", text)
        return text
    return out.decode()


def column_array(values: list[Any], type_: pa.DataType) -> pa.Array:
    """One column of a page. Text with a lone surrogate (JSON can carry "\ud800", UTF-8
    cannot) has it replaced by U+FFFD in the column; `_raw` keeps it escaped."""
    try:
        return pa.array(values, type_)
    except UnicodeEncodeError:
        return pa.array([_scrubbed(v) for v in values], type_)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def page_column(docs: list[dict[str, Any]], get: Callable[[dict], Any],
                type_: pa.DataType) -> pa.Array:
    """One column of a page: a timestamp read by `as_ts` is parsed for the page at once."""
    text = getattr(get, "text", None)
    if text is not None:
        return timestamps(docs, text, get)
    return column_array([get(d) for d in docs], type_)


def timestamps(docs: list[dict[str, Any]], text: Callable[[dict], Any],
               parse: Callable[[dict], datetime | None]) -> pa.Array:
    """A page's values of one timestamp field, parsed by Arrow at once (ISO-8601 with a 'Z' or
    an offset, as the vendors write them); a page with anything else (numbers, date-only or
    unparseable text) is parsed value by value as `as_ts` does, unparseable values null."""
    values = [text(d) or None for d in docs]
    if all(v is None or type(v) is str for v in values):
        try:
            parsed = pc.cast(pa.array(values, pa.string()), pa.timestamp("us", "UTC"))
            return parsed.cast(TS, safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pa.array([parse(d) for d in docs], TS)


@dataclass(frozen=True)
class EntitySchema:
    source: str
    entity: str
    id_type: pa.DataType                       # int64 (Greenhouse) or string (Keap, HighLevel)
    updated: Callable[[dict], datetime | None]  # the record's update time
    columns: tuple[Column, ...]
    description: str = ""

    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field("id", self.id_type, nullable=False)]
        fields += [pa.field(c.name, c.type) for c in self.columns if c.name != "id"]
        fields += [pa.field("_raw", pa.string()), pa.field("_source_updated_at", TS),
                   pa.field("_extracted_at", TS), pa.field("_op", pa.string()),
                   pa.field("_run_id", pa.string())]
        return pa.schema(fields)

    def rows(self, docs: list[dict[str, Any]], *, extracted_at: datetime,
             run_id: str, default_updated: datetime | None = None) -> pa.RecordBatch:
        """One Arrow batch from a page of API records (the page is small; this is the one
        place rows pass through Python, on their way from the API). Built column by column:
        one pass over the page per column, timestamps parsed by Arrow for the whole page."""
        schema = self.arrow_schema()
        n = len(docs)
        ids = ([int(d["id"]) for d in docs] if self.id_type == pa.int64()
               else [str(d["id"]) for d in docs])
        arrays: list[pa.Array] = [pa.array(ids, self.id_type)]
        for c in self.columns:
            if c.name != "id":
                arrays.append(page_column(docs, c.get, c.type))
        arrays.append(pa.array([canonical_json(d) for d in docs], pa.string()))
        updated = page_column(docs, self.updated, TS)
        # records without an update time (tags, pipelines) are versions of the snapshot time
        if default_updated is not None and updated.null_count:
            updated = updated.fill_null(pa.scalar(default_updated, TS))
        arrays += [updated, pa.repeat(pa.scalar(extracted_at, TS), n),
                   pa.repeat(pa.scalar("upsert"), n), pa.repeat(pa.scalar(run_id), n)]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def delete_rows(self, ids: Iterable[Any], *, deleted_at: datetime, extracted_at: datetime,
                    run_id: str) -> pa.RecordBatch:
        ids = list(ids)
        schema = self.arrow_schema()
        data: dict[str, list] = {f.name: [None] * len(ids) for f in schema}
        data["id"] = [int(i) if self.id_type == pa.int64() else str(i) for i in ids]
        data["_source_updated_at"] = [deleted_at] * len(ids)
        data["_extracted_at"] = [extracted_at] * len(ids)
        data["_op"] = ["delete"] * len(ids)
        data["_run_id"] = [run_id] * len(ids)
        return pa.RecordBatch.from_pydict(data, schema=schema)
