"""A page of API records becomes the same Arrow rows as the naive definition: each record's
columns read one by one by their getters, timestamps parsed by `parse_ts`, `_raw` written by
`json.dumps` with sorted keys. `EntitySchema.rows` builds them a page at a time (orjson, Arrow's
timestamp parser); this checks the two agree on every entity's generated records and on the
messy values vendors send."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from assets.greenhouse.extract import SPECS as GREENHOUSE
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from orchestration.storage.schema import TS, EntitySchema, as_ts, canonical_json, col, path_of
from sandbox.store import Store
from sandbox.world import generate as world

EXTRACTED = datetime(2026, 3, 2, 4, 5, 6, 789000, tzinfo=UTC)
DEFAULT_UPDATED = datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=UTC)


def storable(value):
    """Text UTF-8 can hold: a lone surrogate becomes U+FFFD."""
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return [storable(v) for v in value] if isinstance(value, list) else value


def raw_json(doc: dict) -> str:
    # a lone surrogate becomes U+FFFD in `_raw` too (an escape made DuckDB's JSON refuse it)
    return storable(json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


def naive_rows(schema: EntitySchema, docs: list[dict]) -> pa.Table:
    """The definition: one record at a time, one column at a time."""
    out: dict[str, list] = {f.name: [] for f in schema.arrow_schema()}
    for doc in docs:
        out["id"].append(int(doc["id"]) if schema.id_type == pa.int64() else str(doc["id"]))
        for c in schema.columns:
            if c.name != "id":
                out[c.name].append(storable(c.get(doc)))
        out["_raw"].append(raw_json(doc))
        out["_source_updated_at"].append(schema.updated(doc) or DEFAULT_UPDATED)
        out["_extracted_at"].append(EXTRACTED)
        out["_op"].append("upsert")
        out["_run_id"].append("run-1")
    return pa.Table.from_pydict(out, schema=schema.arrow_schema())


def page_rows(schema: EntitySchema, docs: list[dict]) -> pa.Table:
    return pa.Table.from_batches([schema.rows(docs, extracted_at=EXTRACTED, run_id="run-1",
                                              default_updated=DEFAULT_UPDATED)])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder: Path = tmp_path_factory.mktemp("world")
    world.generate(folder, candidates=150, seed=5)
    return Store(folder, create=False)


@pytest.mark.parametrize("spec", GREENHOUSE + KEAP + HIGHLEVEL,
                         ids=lambda s: f"{s.schema.source}/{s.schema.entity}")
def test_every_entity_page_equals_the_naive_rows(store: Store, spec) -> None:
    docs = [doc for doc in store.iter_docs(spec.schema.source, spec.schema.entity)]
    if not docs:
        pytest.skip("the generated world holds none")
    for start in range(0, len(docs), 97):      # pages of uneven size, a short last one
        page = docs[start:start + 97]
        assert page_rows(spec.schema, page).equals(naive_rows(spec.schema, page)), \
            f"{spec.schema.source}/{spec.schema.entity} page at {start}"


MESSY = EntitySchema(
    "test", "messy", pa.string(), as_ts(path_of("updated_at")),
    (col("name"), col("count", pa.int64()), col("score", pa.float64()), col("flag", pa.bool_()),
     col("created_at", TS), col("updated_at", TS), col("nested", source="a.b")),
)


@pytest.mark.parametrize("times", [
    # what Arrow parses at once
    ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.123456Z", "2026-03-01T12:00:00+02:00",
     "2026-03-01T10:00:00.5-05:30", None, ""],
    # what sends a page through the per-value path: dates only, lower-case z, padding,
    # numbers, unparseable text, seven-digit fractions
    ["2026-03-01", "2026-03-01T10:00:00Z"], ["2026-03-01t10:00:00z"], [" 2026-03-01T10:00:00Z"],
    [1772359200], ["not a time", "2026-03-01T10:00:00Z"], ["2026-03-01T10:00:00.1234567Z"],
])
def test_messy_values_match(times: list) -> None:
    times = (times * 18)[:18]
    docs = [{"id": i, "name": n, "count": c, "score": s, "flag": f, "created_at": t,
             "updated_at": t, "a": {"b": b}}
            for i, (t, n, c, s, f, b) in enumerate(zip(
                times,
                ["Zoë", None, 7, "a\u2028b", "\ud800 lone", "x"] * 3,
                ["12", 3, "x", None, True, 2 ** 70] * 3,
                [1.5e-7, "2.5", None, 1e16, 0.00001, 3] * 3,
                [True, False, None, "true", 1, 0] * 3,
                [{"deep": [1, 2]}, [1], "s", None, 1.25, False] * 3, strict=True))]
    assert page_rows(MESSY, docs).equals(naive_rows(MESSY, docs))


@pytest.mark.parametrize("doc", [
    {"b": 1, "a": [1, 2, {"z": None, "c": True}], "é": "ünï\u2028"},
    {"small": 1.5e-7, "tiny": 1e-05, "big": 1e16, "f": 123.456, "neg": -0.0},
    {"lone": "\ud800", "huge": 2 ** 70},
    {"text": "mentions 0.0000 and e-5 literally", "n": 1},
])
def test_raw_is_byte_for_byte_json_dumps(doc: dict) -> None:
    assert canonical_json(doc) == raw_json(doc)
    assert json.loads(canonical_json(doc)) == storable_doc(doc)   # a lone surrogate: U+FFFD


def storable_doc(doc: dict) -> dict:
    return {k: storable(v) for k, v in doc.items()}


def test_odd_records_land_and_are_named_in_the_manifest(tmp_path: Path) -> None:
    """A record past 1 MB and one whose text holds a lone surrogate land with the others; the
    manifest names them (ids only), and nothing is named for ordinary text (emoji, accents, a
    literal backslash-u in the text)."""
    from assets.highlevel import schemas
    from orchestration.storage.snapshots import SnapshotStorage

    end = datetime(2026, 1, 5, tzinfo=UTC)
    w = SnapshotStorage(root=str(tmp_path)).writer(schemas.notes, "2026-01-04", mode="full",
                                                   run_id="t", window=(None, end))
    docs = [{"id": "n1", "contactId": "c", "body": "fine é 🎉 and a literal \\ud800"},
            {"id": "n2", "contactId": "c", "body": "cut \ud800 off"},
            {"id": "n3", "contactId": "c", "body": "y" * 2_000_000}]
    w.add(docs)
    m = w.commit()
    assert m["upserts"] == 3
    assert m["repaired_text"] == {"records": 1, "sample_ids": ["n2"]}
    assert m["large_records"]["sample_ids"] == ["n3"] and m["large_records"]["records"] == 1
    # SQL's JSON functions read every record of the partition, the repaired one included
    import duckdb

    rows = duckdb.sql(f"SELECT id, json_extract_string(_raw, '$.body')[:12] FROM read_parquet("
                      f"'{tmp_path}/highlevel/notes/*/*.parquet') ORDER BY id").fetchall()
    assert rows[1] == ("n2", "cut \ufffd off")
