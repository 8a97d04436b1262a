"""The field audit: per backed-up entity and field, over the state as of the day.

For each field: null rate, distinct count, top values (shapes like `Aa a.a9@a.a` for personal
fields and free-text custom fields), the share of each value pattern class (email-, phone-,
date-, number-, code-, boolean-like, free text, empty), and for stage/status fields the values
the sync does not map. The same numbers over the day's arrivals (the partition's upserts) are
compared with the previous audit's state: a pattern class gaining `shape_shift` of the values,
a jump in the null rate, or a field the sync reads coming back empty is drift.

Set-based throughout: one UNPIVOT per entity, then every regex runs on DISTINCT values only.
Custom fields inside `_raw` (Greenhouse `custom_fields`, Keap `custom_fields`, HighLevel
`customFields`) are profiled as `custom_fields.<key>`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from assets.identity.config import FieldProfileConfig
from assets.identity.field_rules import MAPPED_VALUES, PERSONAL_FIELDS, SYNC_FIELDS
from assets.identity.inputs import has_partition, load_state
from orchestration.storage.derived import partition_glob, previous_day
from orchestration.storage.parquet import duck_path

NAME = "field_profile"
META = {"id", "_raw", "_source_updated_at", "_extracted_at", "_op", "_run_id", "snapshot_date"}
CLASSES = ("email", "phone", "date", "number", "boolean", "code", "text", "empty")
# where each source keeps its custom fields inside the record's JSON
CUSTOM = {"greenhouse": ("custom_fields", "object", None),
          "keap": ("custom_fields", "list", "content"),
          "highlevel": ("customFields", "list", "value")}
MAX_CUSTOM_KEYS = 30
DISCOVERY_ROWS = 20_000        # rows read to find the custom field keys of an entity
SAMPLE_ROWS = 50_000           # rows whose values are classified and ranked (see _stats)
TOP = 5

# value pattern classes, tested in this order on trimmed text (one value at a time, DISTINCT)
DATE_LIKE = (r"\d{4}-\d{2}-\d{2}([ T].*)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}( .*)?"
             r"|(?i:(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2},? \d{4}.*)")
CODE_LIKE = (r"[A-Z0-9]+([_\-][A-Z0-9]+)*|[a-z0-9]+(_[a-z0-9]+)+|[0-9a-fA-F\-]{36}"
             r"|[A-Za-z0-9]{16,}")
PATTERN_MACRO = rf"""
CREATE OR REPLACE TEMP MACRO tv_pattern_class(x) AS CASE
    WHEN trim(x) = '' THEN 'empty'
    WHEN regexp_full_match(trim(x), '[^@\s]+@[^@\s]+') THEN 'email'
    WHEN regexp_full_match(trim(x), '{DATE_LIKE}') THEN 'date'
    WHEN regexp_full_match(trim(x), '-?\d+([.,]\d+)?') THEN 'number'
    WHEN regexp_full_match(trim(x), '\+?[\d\s().\-]{{7,}}((x|ext\.?)\s?\d+)?')
         AND regexp_matches(trim(x), '[\s().\-+]') THEN 'phone'
    WHEN lower(trim(x)) IN ('true', 'false', 'yes', 'no') THEN 'boolean'
    WHEN regexp_full_match(trim(x), '{CODE_LIKE}') THEN 'code'
    ELSE 'text' END
"""
SHAPE_MACRO = r"""
CREATE OR REPLACE TEMP MACRO tv_shape(x) AS left(regexp_replace(regexp_replace(
    regexp_replace(regexp_replace(x, '\p{M}+', '', 'g'), '\p{Lu}+', 'A', 'g'),
    '[\p{Ll}\p{Lo}\p{Lm}\p{Lt}]+', 'a', 'g'), '\p{N}+', '9', 'g'), 40)
"""


def _kind(duck_type: str) -> tuple[str, bool]:
    """(class kind, is a list) of a column type."""
    is_list = duck_type.endswith("[]")
    base = duck_type[:-2] if is_list else duck_type
    if base.startswith("TIMESTAMP") or base == "DATE":
        return "date", is_list
    if base in ("BIGINT", "INTEGER", "DOUBLE", "FLOAT", "HUGEINT", "SMALLINT", "DECIMAL"):
        return "number", is_list
    if base == "BOOLEAN":
        return "boolean", is_list
    return "text", is_list


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def columns_of(con: duckdb.DuckDBPyConnection, root: Path, source: str, entity: str,
               day: str) -> dict[str, str]:
    """Flattened columns (name -> DuckDB type) of the entity's partitions up to `day`."""
    from orchestration.storage.state_sql import files_glob

    rows = con.execute(f"""
        DESCRIBE SELECT * FROM read_parquet('{duck_path(files_glob(root / source / entity))}',
                                            union_by_name = true)""").fetchall()
    return {r[0]: r[1] for r in rows if r[0] not in META}


def _custom_fields(con: duckdb.DuckDBPyConnection, root: Path, source: str, entity: str,
                   day: str) -> dict[str, str]:
    """`custom_fields.<key>` -> SQL over a snapshot row, for the keys seen in the latest
    partition (a sample of it)."""
    key_name, shape, value = CUSTOM[source]
    latest = _latest_partition(root, source, entity, day)
    if latest is None:
        return {}
    rows = (f"(SELECT _raw FROM read_parquet('{duck_path(latest)}') WHERE _op = 'upsert' "
            f"LIMIT {DISCOVERY_ROWS})")
    try:
        if shape == "object":
            keys = con.execute(f"""
                SELECT DISTINCT unnest(json_keys(_raw, '$.{key_name}')) FROM {rows}
                WHERE json_type(_raw, '$.{key_name}') = 'OBJECT'""").fetchall()
        else:
            keys = con.execute(f"""
                SELECT DISTINCT unnest(json_extract_string(_raw, '$.{key_name}[*].id'))
                FROM {rows} WHERE json_type(_raw, '$.{key_name}') = 'ARRAY'""").fetchall()
    except duckdb.Error:
        return {}
    out = {}
    for (k,) in sorted(keys, key=lambda r: str(r[0]))[:MAX_CUSTOM_KEYS]:
        if k is None or not re.fullmatch(r"[A-Za-z0-9_\- ]{1,64}", str(k)):
            continue
        if shape == "object":
            sql = f"json_extract_string(_raw, '$.{key_name}.\"{k}\".value')"
        else:
            sql = (f"json_extract_string(list_extract(list_filter("
                   f"json_extract(_raw, '$.{key_name}[*]'), "
                   f"lambda x: json_extract_string(x, '$.id') = '{k}'), 1), '$.{value}')")
        out[f"custom_fields.{k}"] = sql
    return out


def _latest_partition(root: Path, source: str, entity: str, day: str) -> Path | None:
    parts = sorted(p for p in (root / source / entity).glob("snapshot_date=*")
                   if p.name.split("=", 1)[1] <= day and any(p.glob("*.parquet")))
    return parts[-1] / "*.parquet" if parts else None


def _counts_sql(table: str, fields: dict[str, tuple[str, bool]]) -> str:
    """(field, v, n): each field's DISTINCT values as text with their counts; v NULL counts the
    records where the field is empty (lists: no element)."""
    parts = []
    scalars = ", ".join(_q(f) for f, (_, is_list) in fields.items() if not is_list)
    if scalars:
        parts.append(f"""
            SELECT field, v, count(*) AS n
            FROM {table}_text UNPIVOT INCLUDE NULLS (v FOR field IN ({scalars}))
            GROUP BY ALL""")
    for f, (_, is_list) in fields.items():
        if is_list:
            parts.append(f"""
                SELECT '{f}' AS field, v, count(*) AS n FROM (
                    SELECT CAST(unnest(CASE WHEN len({_q(f)}) > 0 THEN {_q(f)}
                                            ELSE [NULL] END) AS VARCHAR) AS v FROM {table})
                GROUP BY ALL""")
    return " UNION ALL ".join(parts)


def _exact_sql(table: str, fields: dict[str, tuple[str, bool]]) -> str:
    """(field, nulls, vals, distinct_values) over every row: one narrow scan per field."""
    parts = []
    for f, (_, is_list) in fields.items():
        q = _q(f)
        if is_list:
            parts.append(f"""
                SELECT '{f}' AS field,
                       count(*) FILTER (WHERE coalesce(len({q}), 0) = 0) AS nulls,
                       coalesce(sum(len({q})), 0) AS vals,
                       (SELECT count(DISTINCT e) FROM (SELECT unnest({q}) AS e FROM {table}))
                           AS distinct_values
                FROM {table}""")
        else:
            parts.append(f"""
                SELECT '{f}' AS field, count(*) - count({q}) AS nulls, count({q}) AS vals,
                       count(DISTINCT {q}) AS distinct_values FROM {table}""")
    return " UNION ALL ".join(parts)


def _mapped_sql(table: str, source: str, entity: str, fields: dict[str, tuple[str, bool]]
                ) -> str | None:
    """(field, v, n) over every row, for the stage/status fields the sync maps."""
    mapped = [f for (s, e, f) in MAPPED_VALUES if (s, e) == (source, entity) and f in fields
              and not fields[f][1]]
    if not mapped:
        return None
    return " UNION ALL ".join(
        f"SELECT '{f}' AS field, CAST({_q(f)} AS VARCHAR) AS v, count(*) AS n FROM {table} "
        f"WHERE {_q(f)} IS NOT NULL GROUP BY ALL" for f in mapped)


def _stats(con: duckdb.DuckDBPyConnection, source: str, entity: str, scope: str,
           table: str, fields: dict[str, tuple[str, bool]], custom: set[str]) -> None:
    """Append one row per field of `table` to fp_stats. Null rates, distinct counts and
    unmapped values are exact; pattern classes and top values come from a reservoir sample of
    SAMPLE_ROWS rows when the table is bigger (regexes then run on at most that many values
    per field, not on a million distinct emails)."""
    if not fields:
        return
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    sample = table
    if rows > SAMPLE_ROWS:
        sample = f"{table}_sample"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {sample} AS SELECT * FROM {table}
                        USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (7)""")
    personal = PERSONAL_FIELDS.get((source, entity), frozenset())
    con.register("fp_meta", pa.table({
        "field": list(fields),
        "kind": [k for k, _ in fields.values()],
        "is_list": [is_list for _, is_list in fields.values()],
        "masked_always": [f in personal for f in fields],
        "custom": [f in custom for f in fields],
    }))
    shares = ", ".join(
        f"coalesce(sum(n) FILTER (WHERE cls = '{c}') / nullif(sum(n) FILTER "
        f"(WHERE v IS NOT NULL), 0), 0) AS {c}_like" for c in CLASSES)
    scalars = [f for f, (_, is_list) in fields.items() if not is_list]
    if scalars:
        cast = ", ".join(f"CAST({_q(f)} AS VARCHAR) AS {_q(f)}" for f in scalars)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sample}_text AS SELECT {cast} FROM {sample}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fp_counts AS
        SELECT c.field, c.v, c.n, m.kind, m.masked_always, m.custom,
               CASE WHEN c.v IS NULL THEN NULL
                    WHEN m.kind <> 'text' THEN m.kind
                    ELSE tv_pattern_class(c.v) END AS cls
        FROM ({_counts_sql(sample, fields)}) c JOIN fp_meta m USING (field)
    """)
    con.execute(f"CREATE OR REPLACE TEMP TABLE fp_exact AS {_exact_sql(table, fields)}")
    mapped = _mapped_sql(table, source, entity, fields)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fp_mapped AS
        {mapped or "SELECT NULL::VARCHAR AS field, NULL::VARCHAR AS v, 0::BIGINT AS n LIMIT 0"}
    """)
    con.execute(f"""
        INSERT INTO fp_stats
        WITH cls AS (SELECT field, {shares} FROM fp_counts GROUP BY field),
        shown AS (
            SELECT field, CASE WHEN masked_always OR (custom AND cls IN ('text', 'email',
                                                                       'phone'))
                               THEN tv_shape(v) ELSE left(v, 60) END AS value, sum(n) AS n
            FROM fp_counts WHERE v IS NOT NULL GROUP BY ALL
        ),
        top AS (
            SELECT field, list({{'value': value, 'count': n}} ORDER BY n DESC, value)[:{TOP}]
                AS top_values
            FROM shown GROUP BY field
        ),
        unmapped AS (
            SELECT c.field, list({{'value': c.v, 'count': c.n}} ORDER BY c.n DESC, c.v)
                AS unmapped_values
            FROM fp_mapped c JOIN fp_known k ON k.source = '{source}'
                AND k.entity = '{entity}' AND k.field = c.field
            WHERE NOT list_contains(k.known, c.v)
            GROUP BY c.field
        )
        SELECT '{source}', '{entity}', m.field, '{scope}', m.kind, m.is_list,
               m.masked_always, m.custom, {rows}::BIGINT AS rows,
               {min(rows, SAMPLE_ROWS)}::BIGINT AS sampled_rows, x.nulls::BIGINT,
               CASE WHEN {rows} = 0 THEN NULL
                    ELSE least(x.nulls::DOUBLE / {rows}, 1.0) END AS null_rate,
               x.vals::BIGINT, x.distinct_values,
               {", ".join(f"coalesce(a.{c}_like, 0)" for c in CLASSES)},
               t.top_values, u.unmapped_values
        FROM fp_meta m LEFT JOIN fp_exact x USING (field) LEFT JOIN cls a USING (field)
        LEFT JOIN top t USING (field) LEFT JOIN unmapped u USING (field)
    """)
    con.unregister("fp_meta")
    for t in (f"{sample}_text", f"{table}_sample" if sample != table else None):
        if t:
            con.execute(f"DROP TABLE IF EXISTS {t}")


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(PATTERN_MACRO)
    con.execute(SHAPE_MACRO)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fp_stats (
            source VARCHAR, entity VARCHAR, field VARCHAR, scope VARCHAR, kind VARCHAR,
            is_list BOOLEAN, personal BOOLEAN, custom BOOLEAN, rows BIGINT,
            sampled_rows BIGINT, nulls BIGINT,
            null_rate DOUBLE, "values" BIGINT, distinct_values BIGINT,
            {", ".join(f"{c}_like DOUBLE" for c in CLASSES)},
            top_values STRUCT(value VARCHAR, count BIGINT)[],
            unmapped_values STRUCT(value VARCHAR, count BIGINT)[])
    """)
    con.register("fp_known_values", pa.table({
        "source": [k[0] for k in MAPPED_VALUES], "entity": [k[1] for k in MAPPED_VALUES],
        "field": [k[2] for k in MAPPED_VALUES],
        "known": [list(v) for v in MAPPED_VALUES.values()]}))
    con.execute("CREATE OR REPLACE TEMP TABLE fp_known AS SELECT * FROM fp_known_values")


def profile_entities(con: duckdb.DuckDBPyConnection, root: Path, day: str,
                     entities: list[tuple[str, str]]) -> None:
    """Fill fp_stats with the state and arrival profiles of every entity."""
    _create_tables(con)
    for source, entity in entities:
        declared = columns_of(con, root, source, entity, day)
        custom = _custom_fields(con, root, source, entity, day)
        fields = {f: _kind(t) for f, t in declared.items()}
        fields.update({f: ("text", False) for f in custom})
        exprs = [_q(f) for f in declared] + [f"{sql} AS {_q(f)}" for f, sql in custom.items()]
        load_state(con, root, source, entity, day, exprs, "fp_state")
        _stats(con, source, entity, "state", "fp_state", fields, set(custom))
        part = root / source / entity / f"snapshot_date={day}"
        if has_partition(root, source, entity, day):
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE fp_arrived AS
                SELECT {", ".join(exprs)} FROM read_parquet('{duck_path(part)}/*.parquet')
                WHERE _op = 'upsert'""")
            _stats(con, source, entity, "arrived", "fp_arrived", fields, set(custom))
    for t in ("fp_state", "fp_arrived", "fp_state_text", "fp_arrived_text", "fp_counts",
              "fp_exact", "fp_mapped"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def field_profile(con: duckdb.DuckDBPyConnection, root: Path, day: str,
                  cfg: FieldProfileConfig) -> str | None:
    """Create table `field_profile`: one row per (source, entity, field) with the state's
    numbers, the arrivals' and the drift against the previous audit. Returns the baseline
    day (the previous audit), if any."""
    baseline = previous_day(root, NAME, day)
    base_sql = (f"SELECT * FROM read_parquet('{duck_path(partition_glob(root, NAME, baseline))}')"
                if baseline else
                "SELECT * FROM fp_stats WHERE FALSE")
    con.register("fp_sync_fields", pa.table({
        "source": [k[0] for k, v in SYNC_FIELDS.items() for _ in v],
        "entity": [k[1] for k, v in SYNC_FIELDS.items() for _ in v],
        "field": [f for v in SYNC_FIELDS.values() for f in v]}))
    con.execute("CREATE OR REPLACE TEMP TABLE fp_sync AS SELECT * FROM fp_sync_fields")
    shares = ", ".join(f"{c}_like" for c in CLASSES)
    dominant = "CASE WHEN coalesce(\"values\", 0) = 0 THEN NULL " + " ".join(
        f"WHEN {c}_like = greatest({shares}) THEN '{c}'" for c in CLASSES) + " END"
    shift = float(cfg.shape_shift)
    grew = " ".join(
        f"CASE WHEN a.{c}_like - b.{c}_like >= {shift} THEN '{c}-like values ' || "
        f"round(100 * b.{c}_like)::INT || '% -> ' || round(100 * a.{c}_like)::INT || '%' END,"
        for c in CLASSES)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE field_profile AS
        WITH s AS (SELECT *, {dominant} AS dominant_class FROM fp_stats WHERE scope = 'state'),
        a AS (SELECT *, {dominant} AS dominant_class FROM fp_stats WHERE scope = 'arrived'),
        b AS (SELECT * FROM ({base_sql}))
        SELECT s.source, s.entity, s.field, s.kind, s.is_list, s.personal, s.custom,
               y.field IS NOT NULL AS sync_field,
               s.rows, s.sampled_rows, s.nulls, s.null_rate, s."values", s.distinct_values,
               {", ".join(f"s.{c}_like" for c in CLASSES)}, s.dominant_class,
               s.top_values, s.unmapped_values,
               a.rows AS arrived_rows, a.null_rate AS arrived_null_rate,
               a.dominant_class AS arrived_dominant_class,
               {"DATE '" + baseline + "'" if baseline else "NULL::DATE"} AS baseline_date,
               CASE WHEN b.field IS NULL OR a.rows IS NULL OR a.rows < {int(cfg.min_rows)}
                    THEN []::VARCHAR[]
                    ELSE list_filter([
                        CASE WHEN a."values" = 0 AND b.null_rate < 0.9
                             THEN 'disappeared: no values in ' || a.rows || ' arrivals (was '
                                  || round(100 * (1 - b.null_rate))::INT || '% filled)' END,
                        CASE WHEN a."values" > 0 AND a.null_rate - b.null_rate >= 0.5
                             THEN 'null rate ' || round(100 * b.null_rate)::INT || '% -> '
                                  || round(100 * a.null_rate)::INT || '%' END,
                        {grew}
                        NULL], lambda x: x IS NOT NULL) END AS drift
        FROM s
        LEFT JOIN a USING (source, entity, field)
        LEFT JOIN b ON b.source = s.source AND b.entity = s.entity AND b.field = s.field
        LEFT JOIN fp_sync y ON y.source = s.source AND y.entity = s.entity
                            AND y.field = s.field
    """)
    return baseline


def missing_sync_fields(con: duckdb.DuckDBPyConnection,
                        entities: list[tuple[str, str]]) -> list[str]:
    """Sync fields whose column is not in the snapshots at all (renamed or dropped)."""
    present = {(s, e, f) for s, e, f in con.execute(
        "SELECT source, entity, field FROM field_profile").fetchall()}
    backed = set(entities)
    return sorted(f"{s}/{e}.{f}" for (s, e), fields in SYNC_FIELDS.items() if (s, e) in backed
                  for f in fields if (s, e, f) not in present)


def summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    drifted = con.execute("""
        SELECT source || '/' || entity || '.' || field, array_to_string(drift, '; '),
               sync_field
        FROM field_profile WHERE len(drift) > 0 ORDER BY ALL""").fetchall()
    unmapped = con.execute("""
        SELECT source || '/' || entity || '.' || field, unmapped_values
        FROM field_profile WHERE len(unmapped_values) > 0 ORDER BY ALL""").fetchall()
    return {"drifted": drifted, "unmapped": unmapped}


def markdown(con: duckdb.DuckDBPyConnection, limit: int = 400) -> str:
    """The audit as a table for the Dagster UI (top values already masked)."""
    rows = con.execute(f"""
        SELECT source || '/' || entity, field, round(100 * null_rate, 1), distinct_values,
               dominant_class, round(100 * greatest({", ".join(f"{c}_like" for c in CLASSES)})),
               array_to_string(list_transform(top_values,
                   lambda t: replace(t.value, '|', '/') || ' (' || t.count || ')'), ', '),
               array_to_string(drift, '; ') || CASE WHEN len(unmapped_values) > 0
                   THEN ' unmapped: ' || len(unmapped_values) ELSE '' END
        FROM field_profile ORDER BY source, entity, field LIMIT {limit}""").fetchall()
    lines = ["| entity | field | null % | distinct | shape | top values | drift |",
             "|---|---|---:|---:|---|---|---|"]
    for ent, field, null, distinct, cls, share, top, drift in rows:
        lines.append(f"| {ent} | {field} | {null if null is not None else '-'} | {distinct} | "
                     f"{cls or '-'} {'' if share is None else f'{share:.0f}%'} | "
                     f"{(top or '')[:120]} | {drift or ''} |")
    return "\n".join(lines)
