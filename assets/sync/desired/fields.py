"""Fields: the mapping's field rules rendered as SQL (transforms, value maps, fallbacks)."""

from __future__ import annotations

import duckdb

from assets.identity.config import NormalizationConfig
from assets.identity.phones import normalize_phones
from assets.sync.desired.base import BLANK, TS_FORMAT, quote, sql_in
from assets.sync.mapping import ATS_FIELDS, FALLBACK_KEY, Mapping


def _render(source: str) -> str:
    """SQL turning an ATS field of `sync_src` into text (timestamps ISO-8601 UTC, ms)."""
    kind = ATS_FIELDS[source].type
    col = f"s.{source}"
    if kind == "timestamp":
        return f"strftime({col}, '{TS_FORMAT}')"
    if kind == "flag":
        return f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
    return f"CAST({col} AS VARCHAR)"


def _apply(con: duckdb.DuckDBPyConnection, m: Mapping, cfg: NormalizationConfig
           ) -> dict[str, str]:
    """SQL of each field's final value over `sync_src s` (phones normalized set-based into
    `_sync_phone_<i>` lookup tables first)."""
    out: dict[str, str] = {}
    for i, f in enumerate(m.fields):
        v = _render(f.source)
        for j, t in enumerate(f.transforms):
            if t.name == "trim":
                v = f"regexp_replace({v}, '{BLANK}', '', 'g')"
            elif t.name == "lower":
                v = f"lower({v})"
            elif t.name == "upper":
                v = f"upper({v})"
            elif t.name == "title":
                v = (f"array_to_string(list_transform(string_split(lower({v}), ' '), "
                     f"lambda w: upper(w[1:1]) || w[2:]), ' ')")
            elif t.name == "date":
                v = (f"CAST(CAST(coalesce(try_cast({v} AS TIMESTAMPTZ), "
                     f"CAST(try_cast({v} AS DATE) AS TIMESTAMPTZ)) AS DATE) AS VARCHAR)")
            elif t.name == "e164":
                table = f"_sync_phone_{i}_{j}"
                normalize_phones(con, f"SELECT {v} AS raw FROM sync_src s", table, cfg)
                v = f"(SELECT e164 FROM {table} WHERE raw = {v})"
            elif t.name == "value_map":
                entries = [(k, x) for k, x in t.values if k != FALLBACK_KEY]
                fallback = dict(t.values).get(FALLBACK_KEY)
                whens = " ".join(f"WHEN {v} = {quote(k)} THEN {quote(x)}" for k, x in entries)
                other = quote(fallback) if fallback is not None else v
                v = f"(CASE WHEN {v} IS NULL THEN NULL {whens} ELSE {other} END)"
        v = f"nullif({v}, '')"
        if f.null == "default":
            v = f"coalesce({v}, {quote(f.default or '')})"
        out[f.target] = v
    return out


def fields(con: duckdb.DuckDBPyConnection, m: Mapping, cfg: NormalizationConfig) -> None:
    """`sync_fields(profile_id, fields MAP)` after transforms and null policies."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sync_src AS
        WITH apps AS (
            SELECT x.profile_id, max(a.created_at) AS last_applied_at
            FROM (SELECT profile_id, unnest(application_ids) AS app_id FROM prof) x
            JOIN s_applications a ON a.id = x.app_id GROUP BY ALL
        )
        SELECT p.*, c.job_name AS current_job_name, c.department_id AS current_department_id,
               c.source_id AS current_source_id,
               (SELECT s.name FROM s_sources s WHERE s.id = c.source_id) AS current_source_name,
               (SELECT d.name FROM s_departments d WHERE d.id = c.department_id)
                   AS current_department_name,
               (SELECT o.name FROM s_offices o JOIN s_jobs j ON o.id = TRY_CAST(json_extract(
                   j._raw, '$.office_ids[0]') AS BIGINT) WHERE j.id = c.job_id)
                   AS current_office_name,
               CASE WHEN c.status = 'rejected' THEN c.reason END AS current_rejection_reason,
               apps.last_applied_at, len(p.application_ids) AS application_count
        FROM prof p LEFT JOIN sync_cur c USING (profile_id) LEFT JOIN apps USING (profile_id)
    """)
    exprs = _apply(con, m, cfg)
    clear = [f.target for f in m.fields if f.null == "clear"]
    entries = ", ".join(f"{{'k': {quote(k)}, 'v': CAST({v} AS VARCHAR)}}" for k, v in exprs.items())
    keep = f"x.v IS NOT NULL OR x.k IN {sql_in(clear)}" if clear else "x.v IS NOT NULL"
    body = (f"map_from_entries(list_filter([{entries}], lambda x: {keep}))" if exprs
            else "MAP {}::MAP(VARCHAR, VARCHAR)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_fields AS
        SELECT s.profile_id, {body} AS fields FROM sync_src s
    """)
