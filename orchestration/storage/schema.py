"""The entity schema model: how a vendor record becomes one flat Parquet row of a backup.

Each entity declares an `EntitySchema` (its id, update time and flattened columns); every row
also keeps the record as the vendor returned it (`_raw`) and the backup's own columns
(`META_COLUMNS`). Deletions are rows with `_op = 'delete'`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from orchestration.times import parse_ts

META_COLUMNS = ("_raw", "_source_updated_at", "_extracted_at", "_op", "_run_id")
TS = pa.timestamp("ms", tz="UTC")
STR = pa.string()


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
    return get


def col(name: str, type_: pa.DataType = STR, source: str | None = None,
        get: Callable[[dict], Any] | None = None) -> Column:
    """A flattened column: by default the doc's field of the same name (dotted paths allowed);
    timestamp columns parse ISO text."""
    getter = get or path_of(source or name)
    if type_ == TS and get is None:
        getter = as_ts(getter)
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
                return None if v is None or isinstance(v, bool) else int(v)
            except (TypeError, ValueError):
                return None
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

    def rows(self, docs: Iterable[dict[str, Any]], *, extracted_at: datetime,
             run_id: str, default_updated: datetime | None = None) -> pa.RecordBatch:
        """One Arrow batch from a page of API records (the page is small; this is the one
        place rows pass through Python, on their way from the API)."""
        schema = self.arrow_schema()
        data: dict[str, list] = {f.name: [] for f in schema}
        cols = [c for c in self.columns if c.name != "id"]
        for doc in docs:
            data["id"].append(int(doc["id"]) if self.id_type == pa.int64() else str(doc["id"]))
            for c in cols:
                data[c.name].append(c.get(doc))
            data["_raw"].append(json.dumps(doc, ensure_ascii=False, sort_keys=True,
                                           separators=(",", ":")))
            # records without an update time (tags, pipelines) are versions of the snapshot time
            data["_source_updated_at"].append(self.updated(doc) or default_updated)
            data["_extracted_at"].append(extracted_at)
            data["_op"].append("upsert")
            data["_run_id"].append(run_id)
        return pa.RecordBatch.from_pydict(data, schema=schema)

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
