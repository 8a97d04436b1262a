"""What every step of the changeset shares: its names and columns, and the DuckDB connection
with the SQL macros the steps use."""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.sync.changeset import state
from orchestration.storage.parquet import connect as connect_duckdb

NAME = state.CHANGESET
SOURCE = state.SOURCE
REJECTS = "keap_rejects"
ACTIONS = ("create", "update", "tag_add", "tag_remove")
ORDER = ("profile_id, CASE action WHEN 'create' THEN 0 WHEN 'update' THEN 1 "
         "WHEN 'tag_remove' THEN 2 ELSE 3 END, tag, change_id")
COLUMNS = ("change_id, action, profile_id, contact_id, match_email, fields, body, update_mask, "
           "tag, tag_id, depends_on, conflict, field_values")
MEMORY_LIMIT = "1500MB"   # peak RSS stays under 2 GB at 1M x 1M (docs/bench_changeset.md)

# JSON of one email / phone array item as Keap's request takes it (nulls left out)
ITEM_MACROS = [
    """CREATE OR REPLACE TEMP MACRO email_item(e) AS
        '{"email":' || to_json(e.email) || ',"field":' || to_json(e.field) || '}'""",
    """CREATE OR REPLACE TEMP MACRO phone_item(p) AS
        '{' || CASE WHEN p.extension IS NOT NULL
                    THEN '"extension":' || to_json(p.extension) || ',' ELSE '' END
            || '"field":' || to_json(p.field) || ',"number":' || to_json(p.number)
            || CASE WHEN p.type IS NOT NULL THEN ',"type":' || to_json(p.type) ELSE '' END
            || '}'""",
    """CREATE OR REPLACE TEMP MACRO cf_item(id, label, content) AS
        '{"content":' || coalesce(CAST(content AS VARCHAR), 'null') ||
        CASE WHEN id IS NOT NULL THEN ',"id":' || to_json(id)
             ELSE ',"label":' || to_json(label) END || '}'""",
    """CREATE OR REPLACE TEMP MACRO json_list(items) AS
        '[' || array_to_string(items, ',') || ']'""",
    """CREATE OR REPLACE TEMP MACRO first_free(used, slots) AS
        list_filter(slots, lambda s: NOT list_contains(used, s))[1]""",
    """CREATE OR REPLACE TEMP MACRO id_order(id) AS (TRY_CAST(id AS BIGINT), id)""",
]


def connect(spill: Path, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    spill.mkdir(parents=True, exist_ok=True)
    con = connect_duckdb(config={"threads": 2, "memory_limit": memory_limit,
                                 "temp_directory": str(spill),
                                 "preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    state.register_macros(con)
    for m in ITEM_MACROS:
        con.execute(m)
    return con
