"""HighLevel configuration in a restore: custom fields, pipelines and workflows.

What the API v2 can write decides what comes back (specs/highlevel/):
- **Custom fields** (locations.json: `POST /locations/{locationId}/customFields`): a field
  definition the backup holds as of T and the location no longer has is recreated, before any
  contact or opportunity write, from its backed-up name, data type, placeholder, position and
  model. The create DTO has no picklist options: a picklist field comes back without them and
  the export document lists them to re-enter by hand.
- **Pipelines** (opportunities.json has only `GET /opportunities/pipelines`) and **workflows**
  (workflows.json: only `GET /workflows/`) cannot be written: a deleted one is listed "rebuild
  by hand", with its name and stages in order (or what the backup holds of a workflow), in
  `configuration.md` of the plan's folder.

Matching backup to live, by id first, then through the ledger (a field an earlier restore
recreated), then by name (a field whose create reply was lost, a pipeline rebuilt by hand with
the same name and stage names; model and name for fields). Restored values are compared in the
backup's ids: a live id matched to a backup id is read as that backup id (the `tv_hl_field`,
`tv_hl_pipeline`, `tv_hl_stage` macros in fields.py), so a contact whose value sits on the
recreated field is equal to its backup, and a plan's value hashes do not change when the field
is recreated between a preview and a re-run of its apply. Writes send the live ids (`to_live`).
Opportunities whose backed-up pipeline has no live twin are not written: the preview names them
as waiting for that pipeline, and once it is rebuilt the next preview restores them into it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from assets.recovery.restore.diff import insert_changes
from assets.recovery.restore.hl_stages import (
    hold_for_missing_stages,
    missing_stages,
    stage_document,
    stage_lines,
    waiting_for_stage,
)
from assets.recovery.restore.runner import Runner, Write, cell, clean

if TYPE_CHECKING:
    from orchestration.resources.highlevel import HighLevelClient

SHOWN = 50
DOC_NAME = "configuration.md"
# what the create DTO takes, read from a backed-up definition (`isMultiFileAllowed` and
# `maxFileLimit` are the read names of the DTO's `isMultipleFile` and `maxNumberOfFiles`)
FIELD_BODY = """json_object('name', trim(json_extract_string(_raw, '$.name')),
    'dataType', json_extract_string(_raw, '$.dataType'),
    'placeholder', nullif(json_extract_string(_raw, '$.placeholder'), ''),
    'position', json_extract(_raw, '$.position'),
    'model', coalesce(json_extract_string(_raw, '$.model'), 'contact'),
    'textBoxListOptions', json_extract(_raw, '$.textBoxListOptions'),
    'acceptedFormat', json_extract(_raw, '$.acceptedFormat'),
    'isMultipleFile', CASE WHEN json_extract_string(_raw, '$.dataType') = 'FILE_UPLOAD'
                      THEN json_extract(_raw, '$.isMultiFileAllowed') END,
    'maxNumberOfFiles', CASE WHEN json_extract_string(_raw, '$.dataType') = 'FILE_UPLOAD'
                        THEN nullif(json_extract(_raw, '$.maxFileLimit'), 0) END)"""
NAME_KEY = "lower(trim(json_extract_string(_raw, '$.name')))"
MODEL = "coalesce(json_extract_string(_raw, '$.model'), 'contact')"


def backup_view(con: duckdb.DuckDBPyConnection, entity: str, as_of: str,
                source: str = "highlevel") -> str:
    """SQL for the (id, _raw) of a configuration entity's backup as of T (empty if never
    backed up)."""
    exists = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = ? "
                         "AND view_name = ?", [source, entity]).fetchone()[0]
    return (f"SELECT id, _raw FROM {source}.{entity}_as_of(TIMESTAMPTZ '{as_of}')" if exists
            else "SELECT NULL::VARCHAR AS id, NULL::JSON AS _raw WHERE false")


def live_table(con: duckdb.DuckDBPyConnection, name: str, docs: list[dict[str, Any]]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT json_extract_string(j, '$.id') "
                f"AS id, j AS _raw FROM (SELECT unnest(?::JSON[]) AS j)",
                [[json.dumps(d, sort_keys=True) for d in docs]])


def load_tables(con: duckdb.DuckDBPyConnection, as_of: str,
                entities: tuple[tuple[str, str, list[dict[str, Any]]], ...]) -> None:
    """For each (entity, prefix, live docs): TEMP TABLEs <prefix>_backup (as of T) and
    <prefix>_live."""
    for entity, prefix, docs in entities:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {prefix}_backup AS "
                    f"{backup_view(con, entity, as_of)}")
        live_table(con, f"{prefix}_live", docs)


def load_config(con: duckdb.DuckDBPyConnection, client: HighLevelClient, as_of: str) -> None:
    """Backup (as of T) and live definitions, the backup -> live maps (TEMP TABLEs cf_map,
    pipe_map, stage_map; live_id NULL = no live twin) and the macros reading live ids as
    backup ids."""
    load_tables(con, as_of, (("custom_fields", "cf", client.custom_fields()),
                             ("pipelines", "pipe", client.pipelines()),
                             ("workflows", "flow", client.workflows())))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cf_map AS
        WITH by_name AS (
            SELECT {NAME_KEY} AS k, {MODEL} AS model, min(id) AS id FROM cf_live
            WHERE id NOT IN (SELECT id FROM cf_backup) GROUP BY ALL)
        SELECT b.id AS backup_id, coalesce(same.id, led.id, n.id) AS live_id,
               CASE WHEN same.id IS NOT NULL THEN 'id' WHEN led.id IS NOT NULL THEN 'ledger'
                    WHEN n.id IS NOT NULL THEN 'name' END AS matched_by
        FROM cf_backup b
        LEFT JOIN cf_live same ON same.id = b.id
        LEFT JOIN (SELECT im.backup_id, l.id FROM restore_idmap im JOIN cf_live l
                   ON l.id = im.live_id WHERE im.source = 'highlevel'
                   AND im.entity = 'custom_fields') led ON led.backup_id = b.id
        LEFT JOIN by_name n ON n.k = {NAME_KEY.replace('_raw', 'b._raw')}
              AND n.model = {MODEL.replace('_raw', 'b._raw')}""")
    stages = ("(SELECT list_sort(list(lower(trim(s.name)))) FROM (SELECT unnest(json_transform("
              "json_extract({t}._raw, '$.stages'), '[{{\"name\": \"VARCHAR\"}}]')) AS s))")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pipe_map AS
        WITH b AS (SELECT id, _raw, {NAME_KEY} AS k, {stages.format(t='pipe_backup')} AS st
                   FROM pipe_backup),
             l AS (SELECT id, _raw, {NAME_KEY} AS k, {stages.format(t='pipe_live')} AS st
                   FROM pipe_live WHERE id NOT IN (SELECT id FROM pipe_backup))
        SELECT b.id AS backup_id, coalesce(same.id, min(l.id)) AS live_id
        FROM b LEFT JOIN pipe_live same ON same.id = b.id
        LEFT JOIN l ON l.k = b.k AND l.st = b.st
        GROUP BY b.id, same.id""")
    stage_items = ("SELECT {p}.id AS pid, unnest(json_transform(json_extract({p}._raw, "
                   "'$.stages'), '[{{\"id\": \"VARCHAR\", \"name\": \"VARCHAR\"}}]')) AS s "
                   "FROM {table} {p}")
    # a stage: the same id in the matched pipeline (a renamed stage keeps it), else by name
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE stage_map AS
        SELECT bs.s.id AS backup_id,
               coalesce(min(ls.s.id) FILTER (ls.s.id = bs.s.id), min(ls.s.id)) AS live_id
        FROM ({stage_items.format(p='bp', table='pipe_backup')}) bs
        JOIN pipe_map m ON m.backup_id = bs.pid
        LEFT JOIN ({stage_items.format(p='lp', table='pipe_live')}) ls
          ON ls.pid = m.live_id AND (ls.s.id = bs.s.id
                                     OR lower(trim(ls.s.name)) = lower(trim(bs.s.name)))
        GROUP BY bs.s.id""")
    for macro, table in (("tv_hl_field", "cf_map"), ("tv_hl_pipeline", "pipe_map"),
                         ("tv_hl_stage", "stage_map")):
        id_macro(con, macro, table)


def id_macro(con: duckdb.DuckDBPyConnection, macro: str, table: str) -> None:
    """(Re)define `macro(i)`: a live id matched in `table` (backup_id, live_id) reads as its
    backup id; any other id as itself."""
    pairs = con.execute(f"SELECT live_id, backup_id FROM {table} WHERE live_id IS NOT NULL "
                        f"AND live_id <> backup_id ORDER BY 1").fetchall()
    con.execute(f"CREATE OR REPLACE TEMP MACRO {macro}(i) AS " + (
        "CASE i " + " ".join(f"WHEN {_q(live)} THEN {_q(b)}" for live, b in pairs)
        + " ELSE i END" if pairs else "i"))


def _q(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def config_changes(con: duckdb.DuckDBPyConnection, modes: set[str],
                   whole_location: bool, with_opportunities: bool) -> dict[str, int]:
    """Custom field creates into `changes`, and the opportunity changes held back for a
    pipeline with no live twin (TEMP TABLE waiting)."""
    if "create-missing" in modes:
        # a granular restore recreates only the fields its records carry values of
        carried = ["SELECT id, _raw FROM backup_sel"] + (
            ["SELECT id, _raw FROM opp_backup_all WHERE id IN (SELECT backup_id FROM opp_sel)"]
            if with_opportunities else [])
        used = "" if whole_location else f"""AND b.id IN (SELECT unnest(json_transform(
            json_extract(r._raw, '$.customFields'), '[{{"id": "VARCHAR"}}]')).id
            FROM ({' UNION ALL '.join(carried)}) r)"""
        body = FIELD_BODY.replace("_raw", "b._raw")
        insert_changes(con, "highlevel", f"""(SELECT 'custom_fields', 'create', b.id, NULL, NULL,
            json_extract_string(b._raw, '$.name'), NULL, CAST({body} AS VARCHAR),
            md5(CAST({body} AS VARCHAR)), false, NULL, NULL::TIMESTAMPTZ
            FROM cf_backup b JOIN cf_map m ON m.backup_id = b.id
            WHERE m.live_id IS NULL {used})""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE waiting AS
        SELECT DISTINCT c.backup_id, json_extract_string(o._raw, '$.pipelineId') AS pipeline_id
        FROM changes c JOIN opp_backup_all o ON o.id = c.backup_id
        JOIN pipe_map m ON m.backup_id = json_extract_string(o._raw, '$.pipelineId')
        WHERE c.entity = 'opportunities' AND m.live_id IS NULL""")
    con.execute("DELETE FROM changes WHERE entity = 'opportunities' "
                "AND backup_id IN (SELECT backup_id FROM waiting)")
    counts = con.execute("""SELECT
        (SELECT count(*) FROM pipe_map WHERE live_id IS NULL),
        (SELECT count(*) FROM waiting),
        (SELECT count(*) FROM flow_backup b WHERE b.id NOT IN (SELECT id FROM flow_live)
           AND lower(trim(json_extract_string(b._raw, '$.name'))) NOT IN (
               SELECT lower(trim(json_extract_string(_raw, '$.name'))) FROM flow_live))
        """).fetchone()
    return {"pipelines_to_rebuild_by_hand": counts[0],
            "opportunities_waiting_for_pipeline": counts[1],
            "workflows_to_rebuild_by_hand": counts[2], **hold_for_missing_stages(con)}


# -- what a person reads ---------------------------------------------------------------------
def _missing_pipelines(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str], int]]:
    """(backup id, name, stage names in order, opportunities waiting) of each pipeline with no
    live twin."""
    rows = con.execute("""
        SELECT p.id, json_extract_string(p._raw, '$.name'), json_extract(p._raw, '$.stages'),
               (SELECT count(*) FROM waiting w WHERE w.pipeline_id = p.id)
        FROM pipe_backup p JOIN pipe_map m ON m.backup_id = p.id
        WHERE m.live_id IS NULL ORDER BY 2, 1""").fetchall()
    out = []
    for pid, name, stages, waiting in rows:
        items = json.loads(stages) if stages else []
        ordered = sorted(enumerate(items), key=lambda kv: (kv[1].get("position", 0), kv[0]))
        out.append((pid, name, [s.get("name") or "" for _, s in ordered], waiting))
    return out


def _missing_workflows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("""
        SELECT id, json_extract_string(_raw, '$.name'), json_extract_string(_raw, '$.status'),
               json_extract_string(_raw, '$.version'), json_extract_string(_raw, '$.updatedAt')
        FROM flow_backup b WHERE b.id NOT IN (SELECT id FROM flow_live)
          AND lower(trim(json_extract_string(b._raw, '$.name'))) NOT IN (
              SELECT lower(trim(json_extract_string(_raw, '$.name'))) FROM flow_live)
        ORDER BY 2, 1""").fetchall()


def _field_options(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str]]]:
    """Fields to recreate whose picklist options the create DTO cannot carry."""
    return con.execute("""
        SELECT b.id, json_extract_string(b._raw, '$.name'),
               json_transform(json_extract(b._raw, '$.picklistOptions'), '["VARCHAR"]')
        FROM cf_backup b JOIN changes c ON c.entity = 'custom_fields' AND c.backup_id = b.id
        WHERE len(coalesce(json_transform(json_extract(b._raw, '$.picklistOptions'),
                                          '["VARCHAR"]'), [])) > 0
        ORDER BY 2, 1""").fetchall()


@dataclass
class ConfigReport:
    """The configuration part of a preview: markdown lines and the export document."""

    lines: list[str] = field(default_factory=list)
    document: str = ""


def config_report(con: duckdb.DuckDBPyConnection, doc_path: str) -> ConfigReport:
    fields = con.execute("""SELECT backup_id, field, json_extract_string(new_value, '$.model'),
                            json_extract_string(new_value, '$.dataType') FROM changes
                            WHERE entity = 'custom_fields' ORDER BY field, backup_id""").fetchall()
    pipes, flows, options = _missing_pipelines(con), _missing_workflows(con), _field_options(con)
    waiting = [r[0] for r in con.execute(f"SELECT backup_id FROM waiting ORDER BY 1 "
                                         f"LIMIT {SHOWN}").fetchall()]
    stages = missing_stages(con)
    if not (fields or pipes or flows or stages):
        return ConfigReport()
    out = ["", "### Configuration (HighLevel)", ""]
    if fields:
        out += ["Custom fields to recreate (`POST /locations/{locationId}/customFields`), "
                "before any contact or opportunity write; values restored onto them:", "",
                "| backup id | name | model | data type |", "|---|---|---|---|"]
        out += [f"| {i} | {cell(n)} | {m} | {t} |" for i, n, m, t in fields]
    if pipes or flows:
        out += [""] if fields else []
        out += ["**Rebuild by hand.** HighLevel's API v2 has no write for pipelines "
                "(specs/highlevel/opportunities.json: only `GET /opportunities/pipelines`) nor "
                "for workflows (specs/highlevel/workflows.json: only `GET /workflows/`), so "
                "these cannot be recreated through the API:", ""]
        out += [f"- pipeline `{i}` {cell(n)!r} ({len(s or [])} stages; "
                f"{w} opportunities waiting)" for i, n, s, w in pipes]
        out += [f"- workflow `{i}` {cell(n)!r} ({st})" for i, n, st, _v, _u in flows]
        out += ["", f"What to rebuild (pipelines with their stages in order, workflows with what "
                f"the backup holds): `{doc_path}`."]
        if pipes:
            out[-1] += (" Once a pipeline with the same name and stage names exists, preview "
                        "again: its opportunities are restored into it, each at its stage.")
    if waiting:
        out += ["", "Opportunities waiting for their pipeline (not written): "
                + ", ".join(f"`{w}`" for w in waiting)]
    out += stage_lines(stages, waiting_for_stage(con))
    if stages:
        out += ["", f"Each stage with its pipeline and position: `{doc_path}`."]
    return ConfigReport(out, _document(pipes, flows, options) + "\n".join(
        stage_document(stages)))


def _document(pipes: list[tuple], flows: list[tuple], options: list[tuple]) -> str:
    lines = ["# HighLevel configuration to rebuild by hand", "",
             "HighLevel's API v2 cannot create pipelines or workflows (the published spec has "
             "only reads for them). Rebuild each below in HighLevel with exactly these names; "
             "then run `talentvault restore preview` again: opportunities of a rebuilt pipeline "
             "are restored into it by the names of the pipeline and its stages.", ""]
    for pid, name, stages, waiting in pipes:
        lines += [f"## Pipeline: {name}", "", f"Backup id `{pid}`; {waiting} opportunities "
                  "waiting for it. Stages, in order:", ""]
        lines += [f"{k}. {s}" for k, s in enumerate(stages or [], start=1)] + [""]
    for wid, name, status, version, updated in flows:
        lines += [f"## Workflow: {name}", "", f"Backup id `{wid}`; status {status}, version "
                  f"{version}, last updated {updated}. The API gives only these properties: its "
                  "triggers and actions were never readable, so rebuild it from HighLevel's own "
                  "records (or a HighLevel snapshot).", ""]
    for fid, name, opts in options:
        lines += [f"## Custom field options: {name}", "", f"Recreated through the API (backup id "
                  f"`{fid}`) without its options, which the create call cannot carry. Add them "
                  "in HighLevel, in order:", ""]
        lines += [f"{k}. {o}" for k, o in enumerate(opts, start=1)] + [""]
    return "\n".join(lines)


# -- apply -----------------------------------------------------------------------------------
@dataclass
class IdMaps:
    """Backup id -> live id of the configuration restored values point at."""

    fields: dict[str, str]
    pipelines: dict[str, str]
    stages: dict[str, str]


def create_custom_fields(con: duckdb.DuckDBPyConnection, client: HighLevelClient,
                         runner: Runner) -> IdMaps:
    """Recreate the plan's missing custom fields; returns the id maps, the new fields in."""
    rows = con.execute("SELECT change_id, backup_id, new_value FROM todo WHERE entity = "
                       "'custom_fields' AND action = 'create' ORDER BY backup_id").fetchall()
    taken = {r[0] for r in con.execute("SELECT live_id FROM cf_map WHERE live_id IS NOT NULL"
                                       ).fetchall()}
    writes = []
    for wid, backup_id, body_text in rows:
        body = clean(json.loads(body_text))

        def call(body: dict = body, wid: str = wid) -> str:
            if runner.tried_before(wid):     # a create whose reply was lost: found by name
                found = _field_named(client, body, taken)
                if found:
                    return found
            return client.create_custom_field(body)["id"]
        writes.append(Write(wid, "custom_fields", "create", backup_id, None, sorted(body), call))
    created = runner.run(writes)
    maps = [dict(con.execute(f"SELECT backup_id, live_id FROM {t} WHERE live_id IS NOT NULL"
                             ).fetchall()) for t in ("cf_map", "pipe_map", "stage_map")]
    maps[0].update({w.backup_id: created[w.write_id] for w in writes
                    if created.get(w.write_id) and w.backup_id})
    return IdMaps(*maps)


def _field_named(client: HighLevelClient, body: dict[str, Any], taken: set[str]) -> str | None:
    name, model = body["name"].strip().lower(), body.get("model", "contact")
    for f in client.custom_fields():
        if (f.get("name") or "").strip().lower() == name and f.get("model", "contact") == model \
                and f["id"] not in taken:
            return f["id"]
    return None


def to_live(body: dict[str, Any], maps: IdMaps | None) -> dict[str, Any]:
    """A contact or opportunity body with backup ids of configuration replaced by live ids."""
    if maps is None:
        return body
    out = dict(body)
    if isinstance(out.get("customFields"), list):
        out["customFields"] = [{**i, "id": maps.fields.get(i["id"], i["id"])}
                               for i in out["customFields"]]
    if out.get("pipelineId"):
        out["pipelineId"] = maps.pipelines.get(out["pipelineId"], out["pipelineId"])
    if out.get("pipelineStageId"):
        out["pipelineStageId"] = maps.stages.get(out["pipelineStageId"], out["pipelineStageId"])
    return out
