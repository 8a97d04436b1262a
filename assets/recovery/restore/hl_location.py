"""HighLevel location tags and custom values in a restore (specs/highlevel/locations.json).

- **Location tags** (`POST /locations/{locationId}/tags`, a name): HighLevel tags are names, and
  contacts carry them by name, so a backed-up tag is matched to a live one by name (case and
  spaces around it aside), never by id. A tag the backup holds as of T and the location no
  longer has is recreated before any contact is written.
- **Custom values** (`POST /locations/{locationId}/customValues`, name and value; `PUT .../{id}`
  the same): matched by id, then through the ledger (a value an earlier restore recreated),
  then by name (a create whose reply was lost). A missing one is recreated; one whose value (or
  name) was edited since T is put back by PUT (mode update-existing). A live custom value a plan
  puts back is compared at apply time by a hash of it as read (`live_version`): edited since the
  preview, the apply refuses.

Only a whole-location restore writes them (a granular restore is about the selected contacts;
a tag a restored contact carries is created with it by HighLevel). Nothing here is deleted:
a tag or custom value created since T stays. Values of custom values are location settings
(no person's data), shown in the preview like any other change.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb

from assets.recovery.restore.config import NAME_KEY, load_tables
from assets.recovery.restore.diff import COLUMNS, insert_changes
from assets.recovery.restore.runner import Runner, Write, cell

if TYPE_CHECKING:
    from orchestration.resources.highlevel import HighLevelClient

VALUE = "json_extract_string({t}._raw, '$.value')"
BODY = {"tags": "json_object('name', trim(json_extract_string(b._raw, '$.name')))",
        "custom_values": "json_object('name', trim(json_extract_string(b._raw, '$.name')), "
                         "'value', coalesce(json_extract_string(b._raw, '$.value'), ''))"}
LIVE_VERSION = "md5(CAST(l._raw AS VARCHAR))"


def _key(t: str) -> str:
    return NAME_KEY.replace("_raw", f"{t}._raw")


def load_location(con: duckdb.DuckDBPyConnection, client: HighLevelClient, as_of: str) -> None:
    """Backup (as of T) and live tags and custom values (TEMP TABLEs ltag_*, cv_*) and the
    custom values' backup -> live map (cv_map; live_id NULL = no live twin)."""
    load_tables(con, as_of, (("tags", "ltag", client.tags()),
                             ("custom_values", "cv", client.custom_values())))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cv_map AS
        WITH by_name AS (SELECT {_key('cv_live')} AS k, min(id) AS id FROM cv_live
                         WHERE id NOT IN (SELECT id FROM cv_backup) GROUP BY ALL)
        SELECT b.id AS backup_id, coalesce(same.id, led.id, n.id) AS live_id
        FROM cv_backup b
        LEFT JOIN cv_live same ON same.id = b.id
        LEFT JOIN (SELECT im.backup_id, l.id FROM restore_idmap im JOIN cv_live l
                   ON l.id = im.live_id WHERE im.source = 'highlevel'
                   AND im.entity = 'custom_values') led ON led.backup_id = b.id
        LEFT JOIN by_name n ON n.k = {_key('b')}""")


def location_changes(con: duckdb.DuckDBPyConnection, modes: set[str],
                     whole_location: bool) -> None:
    """Tag and custom value creates, custom value updates, into `changes`."""
    if not whole_location:
        return
    columns = f"{COLUMNS}, live_version"
    if "create-missing" in modes:
        insert_changes(con, "highlevel", f"""(
            SELECT 'tags', 'create', b.id, NULL, NULL, trim(json_extract_string(b._raw,
                '$.name')), NULL, CAST({BODY['tags']} AS VARCHAR),
                md5(CAST({BODY['tags']} AS VARCHAR)), false, NULL, NULL::TIMESTAMPTZ, NULL
            FROM ltag_backup b
            WHERE {_key('b')} <> '' AND {_key('b')} NOT IN (
                SELECT {_key('l')} FROM ltag_live l WHERE {_key('l')} IS NOT NULL)
            QUALIFY row_number() OVER (PARTITION BY {_key('b')} ORDER BY b.id) = 1)""",
                       columns)
        insert_changes(con, "highlevel", f"""(
            SELECT 'custom_values', 'create', b.id, NULL, NULL,
                json_extract_string(b._raw, '$.name'), NULL,
                CAST({BODY['custom_values']} AS VARCHAR),
                md5(CAST({BODY['custom_values']} AS VARCHAR)), false, NULL, NULL::TIMESTAMPTZ,
                NULL
            FROM cv_backup b JOIN cv_map m ON m.backup_id = b.id WHERE m.live_id IS NULL)""",
                       columns)
    if "update-existing" in modes:
        insert_changes(con, "highlevel", f"""(
            SELECT 'custom_values', 'update', b.id, l.id, NULL, 'value',
                CAST(json_object('name', json_extract_string(l._raw, '$.name'),
                                 'value', {VALUE.format(t='l')}) AS VARCHAR),
                CAST({BODY['custom_values']} AS VARCHAR),
                md5(CAST({BODY['custom_values']} AS VARCHAR)), false, NULL, NULL::TIMESTAMPTZ,
                {LIVE_VERSION}
            FROM cv_backup b JOIN cv_map m ON m.backup_id = b.id
            JOIN cv_live l ON l.id = m.live_id
            WHERE {VALUE.format(t='b')} IS DISTINCT FROM {VALUE.format(t='l')}
               OR trim(json_extract_string(b._raw, '$.name'))
                  IS DISTINCT FROM json_extract_string(l._raw, '$.name'))""", columns)


def live_versions_sql() -> str:
    """(entity, id, update time, version) of the live custom values a plan may put back, for
    apply's check that nothing it touches changed since the preview."""
    return f"SELECT 'custom_values', l.id, NULL::TIMESTAMPTZ, {LIVE_VERSION} FROM cv_live l"


def location_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The preview's list of tags and custom values to recreate or put back, by name."""
    rows = con.execute("""SELECT entity, action, coalesce(backup_id, '-'), coalesce(live_id, '-'),
                          json_extract_string(new_value, '$.name') FROM changes
                          WHERE entity IN ('tags', 'custom_values')
                          ORDER BY entity DESC, action, 5, 3""").fetchall()
    if not rows:
        return []
    what = {("tags", "create"): "tag to recreate", ("custom_values", "create"):
            "custom value to recreate", ("custom_values", "update"): "custom value to put back"}
    out = ["", "### Location tags and custom values (HighLevel)", "",
           "Written before any contact (`POST /locations/{locationId}/tags`, `POST` or `PUT "
           "/locations/{locationId}/customValues`):", "",
           "| what | name | backup id | live id |", "|---|---|---|---|"]
    out += [f"| {what[(e, a)]} | {cell(n)} | {b} | {li} |" for e, a, b, li, n in rows]
    return out


def restore_location(con: duckdb.DuckDBPyConnection, client: HighLevelClient,
                     runner: Runner) -> None:
    """Recreate the plan's missing tags and custom values, put edited values back."""
    rows = con.execute("""SELECT change_id, entity, action, backup_id, live_id, new_value
                          FROM todo WHERE entity IN ('tags', 'custom_values')
                          ORDER BY entity DESC, action, backup_id""").fetchall()
    writes = []
    for wid, entity, action, backup_id, live_id, body_text in rows:
        body = json.loads(body_text)

        def call(entity: str = entity, action: str = action, live_id: str | None = live_id,
                 body: dict = body, wid: str = wid) -> str:
            if action == "update":
                return client.update_custom_value(live_id or "", body)["id"]
            if runner.tried_before(wid):     # a create whose reply was lost: found by name
                live = client.tags() if entity == "tags" else client.custom_values()
                found = [d["id"] for d in live if (d.get("name") or "").strip().lower()
                         == body["name"].strip().lower()]
                if found:
                    return found[0]
            made = (client.create_tag(body["name"]) if entity == "tags"
                    else client.create_custom_value(body))
            return made["id"]
        fields = ["value"] if action == "update" else sorted(body)
        writes.append(Write(wid, entity, action, backup_id, live_id, fields, call))
    runner.run(writes)
