"""HighLevel: a stage deleted inside a pipeline that still exists.

HighLevel's API v2 has no write for pipelines or their stages (specs/highlevel/
opportunities.json: only `GET /opportunities/pipelines`), so a stage deleted since T cannot be
recreated by a restore. Its pipeline is matched (config.py's `pipe_map`), its stage is not
(`stage_map` live_id NULL: no live stage of that pipeline with its id or its name). The
opportunities the backup holds at that stage are not written (HighLevel refuses an opportunity
at a stage its pipeline does not have, 400) and not failed: the preview counts
(`opportunities_waiting_for_stage`) and names them, lists each missing stage with its pipeline
and position (`stages_to_rebuild_by_hand`, and in `configuration.md`), and once someone adds a
stage of that name to the pipeline again the next preview restores them at it, like
opportunities waiting for a deleted pipeline.

Input TEMP TABLEs (config.py's load_config, the diff): pipe_backup, pipe_map, stage_map,
opp_backup_all, changes. Output: TEMP TABLE stage_waiting (backup_id, stage_id).
"""

from __future__ import annotations

import json

import duckdb

from assets.recovery.restore.runner import cell

SHOWN = 50
STAGES = ("SELECT p.id AS pid, json_extract_string(p._raw, '$.name') AS pipeline, "
          "unnest(json_transform(json_extract(p._raw, '$.stages'), "
          "'[{\"id\": \"VARCHAR\", \"name\": \"VARCHAR\"}]')) AS s "
          "FROM pipe_backup p JOIN pipe_map m ON m.backup_id = p.id "
          "WHERE m.live_id IS NOT NULL")


def hold_for_missing_stages(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Take the opportunity changes at a stage with no live twin out of `changes`."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE stage_waiting AS
        SELECT DISTINCT c.backup_id, st.s.id AS stage_id
        FROM changes c JOIN opp_backup_all o ON o.id = c.backup_id
        JOIN ({STAGES}) st ON st.s.id = json_extract_string(o._raw, '$.pipelineStageId')
                          AND st.pid = json_extract_string(o._raw, '$.pipelineId')
        JOIN stage_map sm ON sm.backup_id = st.s.id
        WHERE c.entity = 'opportunities' AND sm.live_id IS NULL""")
    con.execute("DELETE FROM changes WHERE entity = 'opportunities' "
                "AND backup_id IN (SELECT backup_id FROM stage_waiting)")
    stages, waiting = con.execute(f"""SELECT
        (SELECT count(*) FROM ({STAGES}) st JOIN stage_map sm ON sm.backup_id = st.s.id
         WHERE sm.live_id IS NULL),
        (SELECT count(*) FROM stage_waiting)""").fetchone()
    return {"stages_to_rebuild_by_hand": stages, "opportunities_waiting_for_stage": waiting}


def missing_stages(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str, int,
                                                                 list[str], int]]:
    """(pipeline id, pipeline name, stage id, stage name, position (1-based, in the backed-up
    order), the pipeline's stage names in order, opportunities waiting) of each stage to add."""
    rows = con.execute("""
        SELECT p.id, json_extract_string(p._raw, '$.name'), json_extract(p._raw, '$.stages')
        FROM pipe_backup p JOIN pipe_map m ON m.backup_id = p.id
        WHERE m.live_id IS NOT NULL ORDER BY 2, 1""").fetchall()
    gone = {r[0] for r in con.execute("SELECT backup_id FROM stage_map WHERE live_id IS NULL"
                                      ).fetchall()}
    waiting = dict(con.execute("SELECT stage_id, count(*) FROM stage_waiting GROUP BY ALL"
                               ).fetchall())
    out = []
    for pid, name, stages_text in rows:
        items = json.loads(stages_text) if stages_text else []
        ordered = [s for _, s in sorted(enumerate(items),
                                        key=lambda kv: (kv[1].get("position", 0), kv[0]))]
        names = [s.get("name") or "" for s in ordered]
        out += [(pid, name, s["id"], s.get("name") or "", k, names, waiting.get(s["id"], 0))
                for k, s in enumerate(ordered, start=1) if s.get("id") in gone]
    return out


def stage_lines(stages: list[tuple], waiting_ids: list[str]) -> list[str]:
    """The preview's lines about stages to add by hand."""
    if not stages:
        return []
    out = ["", "**Stages to add by hand.** These stages were deleted from pipelines that still "
           "exist; HighLevel's API v2 cannot write pipelines or stages "
           "(specs/highlevel/opportunities.json: only `GET /opportunities/pipelines`):", ""]
    out += [f"- stage {_q(s)} (backup id `{sid}`) of pipeline {_q(p)} (`{pid}`), position "
            f"{k} of {len(names)}; {w} opportunities waiting"
            for pid, p, sid, s, k, names, w in stages]
    out += ["", "Add each to its pipeline in HighLevel with the same name, then preview again: "
            "the opportunities waiting for it are restored at it."]
    if waiting_ids:
        out += ["", "Opportunities waiting for their stage (not written): "
                + ", ".join(f"`{w}`" for w in waiting_ids)]
    return out


def stage_document(stages: list[tuple]) -> list[str]:
    """configuration.md's part: each stage with its pipeline and position."""
    lines = []
    for pid, pipeline, sid, name, k, names, waiting in stages:
        after = f", after {_q(names[k - 2])}" if k > 1 else ", first"
        before = f", before {_q(names[k])}" if k < len(names) else ""
        lines += [f"## Stage: {name} (pipeline {pipeline})", "",
                  f"Backup id `{sid}`; pipeline backup id `{pid}`. Add it to the pipeline "
                  f"{_q(pipeline)} at position {k} of {len(names)}{after}{before}; "
                  f"{waiting} opportunities waiting for it. The pipeline's stages as backed "
                  "up, in order:", ""]
        lines += [f"{j}. {s}" for j, s in enumerate(names, start=1)] + [""]
    return lines


def waiting_for_stage(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(f"SELECT DISTINCT backup_id FROM stage_waiting ORDER BY 1 "
                                      f"LIMIT {SHOWN}").fetchall()]


def _q(text: str | None) -> str:
    return repr(cell(text))
