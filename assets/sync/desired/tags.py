"""Managed tags: the stage, job and rejection-reason tags the mapping implies, exclusive groups
applied."""

from __future__ import annotations

import duckdb

from assets.sync.desired.base import quote
from assets.sync.mapping import Mapping
from assets.sync.mapping.model import job_custom_keys
from assets.sync.mapping.vocabulary import JOB_CUSTOM_PREFIX


def _templated(template: str | None, subs: dict[str, str]) -> str:
    """SQL for a tag template with `{placeholder}` replaced by SQL expressions."""
    if template is None:
        return "NULL::VARCHAR"
    expr = quote(template)
    for key, sql in subs.items():
        if "{" + key + "}" in template:
            placeholder = quote("{" + key + "}")
            expr = f"replace({expr}, {placeholder}, coalesce(CAST({sql} AS VARCHAR), ''))"
    return expr


def _stage_tag_sql(m: Mapping, col: str) -> str:
    unmapped = _templated(m.stage_unmapped, {"stage": col})
    return (f"CASE WHEN {col} IS NULL THEN NULL "
            f"WHEN {col} IN (SELECT sm.stage FROM _stage_map sm) "
            f"THEN (SELECT sm.tag FROM _stage_map sm WHERE sm.stage = {col}) ELSE {unmapped} END")


def _reason_tag_sql(m: Mapping, name: str, kind: str) -> str:
    templated = _templated(m.reason_template, {"reason": name, "reason_type": kind})
    return (f"CASE WHEN {name} IS NULL THEN NULL "
            f"WHEN {name} IN (SELECT rm.reason FROM _reason_map rm) "
            f"THEN (SELECT rm.tag FROM _reason_map rm WHERE rm.reason = {name}) "
            f"ELSE {templated} END")


def _job_tag_sql(m: Mapping, j: str) -> str:
    subs = {"job_name": f"{j}.name", "job_id": f"{j}.id", "department_id": f"{j}.department_id",
            "department_name": f"(SELECT d.name FROM s_departments d "
                               f"WHERE d.id = {j}.department_id)",
            "office_name": f"(SELECT o.name FROM s_offices o WHERE o.id = TRY_CAST("
                           f"json_extract({j}._raw, '$.office_ids[0]') AS BIGINT))"}
    for key in job_custom_keys(m.job_template):   # the job's custom field, from its record
        subs[f"{JOB_CUSTOM_PREFIX}{key}"] = \
            f"json_extract_string({j}._raw, '$.custom_fields.{key}.value')"
    return f"CASE WHEN {j}.name IS NULL THEN NULL ELSE {_templated(m.job_template, subs)} END"


def tags(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """`sync_tags(profile_id, tag)`: the managed tags each profile must carry (exclusive groups
    resolved: within a group the first listed wins), and `sync_managed(tag, category)`."""
    job_scope = ("SELECT p.profile_id, unnest(p.application_ids) AS app_id FROM prof p"
                 if m.job_scope == "all" else
                 "SELECT profile_id, app_id FROM sync_cur")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_tag_src AS
        SELECT c.profile_id, t.tag, NULL::VARCHAR AS family
        FROM (SELECT profile_id, unnest(events) AS event FROM sync_cur) c
        JOIN _event_tags t USING (event)
        UNION ALL
        -- added once the event happened to any of the person's applications (kept)
        SELECT o.profile_id, t.tag, NULL
        FROM (SELECT profile_id, unnest(application_ids) AS app_id FROM prof) o
        JOIN sync_events_seen e ON e.application_id = o.app_id
        JOIN _on_event_tags t ON t.event = e.event
        UNION ALL
        SELECT c.profile_id, {_stage_tag_sql(m, 'c.stage_name')}, 'stage' FROM sync_cur c
        WHERE c.status = 'in_process'
        UNION ALL
        SELECT x.profile_id, {_job_tag_sql(m, 'j')}, 'job'
        FROM ({job_scope}) x JOIN s_applications a ON a.id = x.app_id
        JOIN s_jobs j ON j.id = a.job_id
        UNION ALL
        SELECT c.profile_id, {_reason_tag_sql(m, 'c.reason', 'c.reason_type')}, 'reason'
        FROM sync_cur c WHERE c.status = 'rejected'
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sync_tags AS
        WITH s AS (SELECT DISTINCT profile_id, tag, family FROM sync_tag_src
                   WHERE tag IS NOT NULL AND tag <> ''),
        r AS (
            SELECT s.profile_id, s.tag,
                   CASE WHEN gx.grp IS NOT NULL THEN gx.grp ELSE gf.grp END AS grp,
                   CASE WHEN gx.grp IS NOT NULL THEN gx.rnk ELSE gf.rnk END AS rnk
            FROM s LEFT JOIN _groups gx ON gx.member = s.tag
            LEFT JOIN _groups gf ON gf.member = '@' || s.family
        )
        SELECT DISTINCT profile_id, tag FROM r
        QUALIFY grp IS NULL
             OR row_number() OVER (PARTITION BY profile_id, grp ORDER BY rnk, tag) = 1
    """)
    stage_names = "SELECT name AS v FROM s_job_stages UNION SELECT stage_name FROM s_applications"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_managed AS
        WITH t AS (
            SELECT tag, NULL::VARCHAR AS family FROM _event_tags
            UNION ALL SELECT tag, NULL FROM _on_event_tags
            UNION ALL SELECT tag, 'stage' FROM _stage_map
            UNION ALL SELECT {_stage_tag_sql(m, 'n.v')}, 'stage' FROM ({stage_names}) n
            UNION ALL SELECT {_job_tag_sql(m, 'j')}, 'job' FROM s_jobs j
            UNION ALL SELECT tag, 'reason' FROM _reason_map
            UNION ALL SELECT {_reason_tag_sql(m, 'r.name', 'r.type_name')}, 'reason'
                      FROM s_rejection_reasons r
        ),
        c AS (
            SELECT t.tag, coalesce(cx.category, cf.category) AS category,
                   t.family IS NOT NULL AS templated
            FROM t LEFT JOIN _categories cx ON cx.member = t.tag
            LEFT JOIN _categories cf ON cf.member = '@' || t.family
            WHERE t.tag IS NOT NULL AND t.tag <> ''
        )
        SELECT tag, arg_min(category, (templated, category)) AS category FROM c GROUP BY tag
    """)
