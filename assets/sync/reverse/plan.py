"""The reverse sync's plan for day D, set-based in DuckDB: per declared field and per Greenhouse
candidate of every synced person, Keap's value (the keap/contacts backup as of D) against
Greenhouse's (the greenhouse/candidates backup as of D, with our own writes since that backup laid
over it from the reverse ledger), the field's conflict rule, and the two echo rules:

- a Keap value that holds only since a write of the forward push (the contact version it
  appeared in is one the push's ledger recorded by its `keap_update_time`) is not a Keap-side
  change: nothing is written for it, whatever the rule;
- a Greenhouse value equal to the reverse sync's own last write (ledger `value_sha256`) is ours,
  not a Greenhouse-side change: the Keap side is followed, whatever the rule.

Who is who: the forward sync's people (sync/keap_desired D) matched to Keap contacts by the
forward changeset's own rule (`assets/sync/changeset/match.py`), each person's Greenhouse
candidates from identity/candidate_profiles D."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from assets.identity.inputs import (
    current_keys,
    end_of_day,
    load_state,
    require_partition,
    versions,
)
from assets.sync.changeset.match import match
from assets.sync.ledger import FORWARD, ledger_relation
from assets.sync.mapping.reverse import OPT_OUT_STATUSES, ReverseField
from assets.sync.reverse.base import BOOK, NULL_TEXT
from orchestration.storage.derived import partition_glob
from orchestration.storage.parquet import duck_path

MACROS = [
    f"CREATE OR REPLACE TEMP MACRO vsha(v) AS sha256(coalesce(v, '{NULL_TEXT}'))",
    # a JSON value as the text the plan compares (true/false, digits, the string; '' = none)
    """CREATE OR REPLACE TEMP MACRO jtext(j) AS CASE
        WHEN j IS NULL OR json_type(j) = 'NULL' THEN NULL
        WHEN json_type(j) = 'VARCHAR' THEN nullif(trim(json_extract_string(j, '$')), '')
        ELSE CAST(j AS VARCHAR) END""",
]
KEAP_JSON = json.dumps({"email_addresses": [{"field": "VARCHAR", "email_opt_status": "VARCHAR"}],
                        "tag_ids": ["VARCHAR"],
                        "custom_fields": [{"id": "VARCHAR", "content": "JSON"}]})


def extracted_at(root: Path, source: str, entity: str, day: str) -> str | None:
    """Wall-clock start of the newest backup of `source/entity` up to `day`."""
    days = sorted(p.parent.name.split("=", 1)[1] for p in
                  (root / source / entity).glob("snapshot_date=*/_manifest.json"))
    days = [d for d in days if d <= day]
    if not days:
        return None
    m = root / source / entity / f"snapshot_date={days[-1]}" / "_manifest.json"
    return json.loads(m.read_text()).get("extracted_at")


def _history(root: Path, source: str, entity: str, day: str, current: str, cols: str) -> str:
    """Every version (up to each record's current one) of the records in table `current`."""
    return f"""
        SELECT DISTINCT ON (v.id, v._source_updated_at) v.id, v._source_updated_at AS t, {cols}
        FROM ({versions(root, source, entity, day)}) v JOIN {current} c USING (id)
        WHERE v._source_updated_at <= {end_of_day(day)}
          AND v._source_updated_at <= c._source_updated_at"""


def _since(con: duckdb.DuckDBPyConnection, values: str, key: str, target: str) -> None:
    """`target(key, field, v, t_since)`: each record's current value per field and since when it
    has held it without a break (the first version of the last run of equal values)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH cur AS (SELECT {key}, field, arg_max_null(v, t) AS v FROM {values} GROUP BY ALL),
             diff AS (SELECT x.{key}, x.field, max(x.t) AS t_diff FROM {values} x
                      JOIN cur USING ({key}, field) WHERE x.v IS DISTINCT FROM cur.v
                      GROUP BY ALL)
        SELECT x.{key}, x.field, any_value(cur.v) AS v, min(x.t) AS t_since
        FROM {values} x JOIN cur USING ({key}, field) LEFT JOIN diff USING ({key}, field)
        WHERE diff.t_diff IS NULL OR x.t > diff.t_diff GROUP BY ALL""")


def plan(con: duckdb.DuckDBPyConnection, root: Path, day: str, fields: list[ReverseField],
         desired_glob: str) -> dict[str, Any]:
    """Table `plan`: one row per write to make (change_id, field, action, profile_id,
    contact_id, candidate_id, target_kind, target, value, value_sha256, value_type, tag_id,
    conflict), and `outcomes(field, outcome, n)`. Returns counts."""
    for source, entity in (("keap", "contacts"), ("greenhouse", "candidates")):
        require_partition(root, source, entity, day)
    for m in MACROS:
        con.execute(m)
    con.register("_rf", pa.table({
        "field": [f.name for f in fields], "source_kind": [f.source_kind for f in fields],
        "source": [f.source for f in fields], "target_kind": [f.target_kind for f in fields],
        "target": [f.target for f in fields], "conflict": [f.conflict for f in fields]}))
    con.execute("CREATE OR REPLACE TEMP TABLE rf AS SELECT * FROM _rf")
    con.unregister("_rf")
    # -- who is who: the forward sync's people, their contact, their candidates --------------
    con.execute(f"CREATE OR REPLACE TEMP TABLE desired AS SELECT profile_id, email, emails "
                f"FROM read_parquet('{desired_glob}')")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE k_contact AS SELECT contact_id,
        emails AS emails_norm FROM read_parquet('{duck_path(partition_glob(
            root, "keap_contacts", day, "identity"))}')""")
    matched = match(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pc AS
        SELECT m.profile_id, m.contact_id, unnest(p.candidate_ids) AS candidate_id
        FROM matched m JOIN read_parquet('{duck_path(partition_glob(
            root, "candidate_profiles", day, "identity"))}') p USING (profile_id)""")
    # -- Keap: every version of the matched contacts, the value of each field in it ----------
    load_state(con, root, "keap", "tags", day, ["name"], "k_tags")
    load_state(con, root, "keap", "custom_fields", day, ["label"], "k_fields")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE rf_ids AS
        SELECT rf.field, list(DISTINCT CAST(x.id AS VARCHAR)) FILTER (x.id IS NOT NULL) AS ids
        FROM rf LEFT JOIN (SELECT id, lower(name) AS k FROM k_tags UNION ALL
                           SELECT id, 'custom:' || lower(label) FROM k_fields) x
          ON x.k = CASE rf.source_kind WHEN 'tag' THEN lower(rf.source)
                                       ELSE 'custom:' || lower(rf.source) END
        GROUP BY rf.field""")
    current_keys(con, root, "keap", "contacts", day, "k_cur",
                 ids="SELECT DISTINCT contact_id FROM pc")
    statuses = ", ".join(f"'{s}'" for s in OPT_OUT_STATUSES)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE k_vals AS
        WITH v AS (SELECT id AS contact_id, t, from_json(_raw, '{KEAP_JSON}') AS j FROM (
                       {_history(root, "keap", "contacts", day, "k_cur", "v._raw")}))
        SELECT v.contact_id, v.t, rf.field, CASE rf.source_kind
            WHEN 'email_opt_out' THEN CAST(coalesce(
                list_filter(j.email_addresses, lambda e: e.field = 'EMAIL1')[1].email_opt_status
                IN ({statuses}), false) AS VARCHAR)
            WHEN 'tag' THEN CAST(len(list_intersect(coalesce(j.tag_ids, []),
                                                    coalesce(i.ids, []))) > 0 AS VARCHAR)
            ELSE jtext(list_filter(j.custom_fields,
                                   lambda c: list_contains(i.ids, c.id))[1].content) END AS v
        FROM v CROSS JOIN rf JOIN rf_ids i USING (field)""")
    _since(con, "k_vals", "contact_id", "k_since")
    # a Keap value the forward push introduced (the contact version it appeared in is one the
    # push wrote) is our own echo
    ledger_relation(con, root, "fwd_ledger", FORWARD)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE k_own AS
        SELECT DISTINCT contact_id, CAST(keap_update_time AS TIMESTAMPTZ) AS t FROM fwd_ledger
        WHERE status = 'succeeded' AND keap_update_time IS NOT NULL""")
    # -- Greenhouse: every version of the candidates, the value of each target in it ----------
    current_keys(con, root, "greenhouse", "candidates", day, "g_cur",
                 ids="SELECT DISTINCT candidate_id FROM pc")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE g_vals AS
        WITH v AS ({_history(root, "greenhouse", "candidates", day, "g_cur",
                             "v.tags, v._raw")})
        SELECT v.id AS candidate_id, v.t, rf.field, CASE rf.target_kind
            WHEN 'tag' THEN CAST(list_contains(list_transform(coalesce(v.tags, []),
                                               lambda x: lower(x)), lower(rf.target)) AS VARCHAR)
            ELSE jtext(json_extract(v._raw, '$.custom_fields."' || rf.target || '".value'))
            END AS v
        FROM v CROSS JOIN rf""")
    _since(con, "g_vals", "candidate_id", "g_since")
    load_state(con, root, "greenhouse", "custom_fields", day,
               ["name_key", "value_type", "field_type"], "g_fields", required=False)
    load_state(con, root, "greenhouse", "candidate_tags", day, ["name"], "g_tags",
               required=False)
    # -- our own writes: the latest per candidate and field, and those the backup may miss ----
    ledger_relation(con, root, "rev_ledger", BOOK)
    after = extracted_at(root, "greenhouse", "candidates", day)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ours AS
        SELECT candidate_id, field, arg_max(value_sha256, "at") AS w_sha,
               arg_max(value_sha256, "at") FILTER (WHERE "at" > {
                   f"TIMESTAMPTZ '{after}'" if after else "TIMESTAMPTZ '-infinity'"})
                   AS overlay_sha
        FROM rev_ledger WHERE status = 'succeeded' GROUP BY ALL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE dead AS
        SELECT change_id FROM rev_ledger
        QUALIFY row_number() OVER (PARTITION BY change_id ORDER BY attempt DESC, "at" DESC) = 1
            AND status = 'failed_permanent'
            AND change_id NOT IN (SELECT change_id FROM rev_ledger WHERE status = 'succeeded')""")
    # -- the decision ----------------------------------------------------------------------
    con.execute("""
        CREATE OR REPLACE TEMP TABLE decide AS
        WITH d AS (
            SELECT pc.profile_id, pc.contact_id, pc.candidate_id, rf.*, k.v AS value,
                   k.t_since AS keap_since, g.v AS gh_value, g.t_since AS gh_since,
                   vsha(k.v) AS value_sha256, coalesce(o.overlay_sha, vsha(g.v)) AS g_sha,
                   o.w_sha, o.overlay_sha,
                   k.t_since IN (SELECT t FROM k_own WHERE k_own.contact_id = pc.contact_id)
                       AS keap_echo
            FROM pc CROSS JOIN rf
            JOIN k_since k ON k.contact_id = pc.contact_id AND k.field = rf.field
            JOIN g_since g ON g.candidate_id = pc.candidate_id AND g.field = rf.field
            LEFT JOIN ours o ON o.candidate_id = pc.candidate_id AND o.field = rf.field)
        SELECT *, CASE
            WHEN value_sha256 = g_sha THEN 'in_sync'
            WHEN keap_echo THEN 'keap_value_is_our_echo'
            WHEN conflict = 'keap_wins' OR g_sha = w_sha THEN 'write'
            WHEN conflict = 'ats_wins' AND w_sha IS NULL AND overlay_sha IS NULL
                 AND gh_value IS NOT DISTINCT FROM
                     CASE target_kind WHEN 'tag' THEN 'false' END THEN 'write'
            WHEN conflict = 'ats_wins' THEN 'kept_ats_wins'
            WHEN keap_since > gh_since THEN 'write'
            ELSE 'kept_ats_newer' END AS outcome
        FROM d""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE plan AS
        WITH w AS (
            SELECT d.*, CASE WHEN target_kind = 'custom' THEN 'custom_set'
                             WHEN value = 'true' THEN 'tag_add' ELSE 'tag_remove' END AS action
            FROM decide d WHERE outcome = 'write')
        SELECT substr(sha256(action || '|' || candidate_id || '|' || target_kind || ':'
                             || target || '|' || value_sha256), 1, 32) AS change_id,
               field, action, profile_id, contact_id, candidate_id, target_kind, target, value,
               value_sha256, f.value_type,
               (SELECT min(t.id) FROM g_tags t WHERE lower(t.name) = lower(w.target)
                  AND w.target_kind = 'tag') AS tag_id, conflict
        FROM w LEFT JOIN (SELECT name_key, any_value(value_type) AS value_type FROM g_fields
                          WHERE field_type = 'candidate' GROUP BY ALL) f
          ON w.target_kind = 'custom' AND f.name_key = w.target""")
    skipped_dead = con.execute(
        "SELECT count(*) FROM plan WHERE change_id IN (SELECT change_id FROM dead)").fetchone()[0]
    con.execute("DELETE FROM plan WHERE change_id IN (SELECT change_id FROM dead)")
    con.execute("""CREATE OR REPLACE TEMP TABLE outcomes AS
                   SELECT field, outcome, count(*) AS n FROM decide GROUP BY ALL ORDER BY ALL""")
    n = con.execute("SELECT count(*), count(DISTINCT candidate_id) FROM plan").fetchone()
    return {"writes": n[0], "candidates": n[1], "skipped_dead_letter": skipped_dead,
            "contacts_matched": matched["profiles_matched"],
            "candidates_compared": con.execute("SELECT count(DISTINCT candidate_id) FROM pc"
                                               ).fetchone()[0],
            "gh_extracted_at": after}
