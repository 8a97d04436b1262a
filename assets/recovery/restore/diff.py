"""The set-based heart of a restore preview: backup-as-of-T against live, in DuckDB.

Input temp tables in the connection (all with backup-row columns, `_raw` included):
  backup_all   every record of the backup as of T (suppressed people already removed)
  backup_sel   the selected ones
  live_all     the live records read from the API
  live_sel     the selected live records
and the ledger views (`restore_idmap`). Output: TEMP TABLE `changes`, one row per change
(in memory with every value; the saved plan keeps values of non-personal fields only).

Matching: a backup record's live twin is the record with the same id, or, for a record an
earlier restore recreated, the id the vendor gave it then (`restore_idmap`).
- create: selected backup record without a live twin (create-missing)
- update: one row per field whose canonical value differs (update-existing)
- delete: selected live record nobody in the backup-as-of-T knows, created after T
  (delete-new); one created before T but unknown to the backup (the backup began later, or
  missed it) is never deleted: it is counted as `unknown_before_as_of`
- tag_add / tag_remove: tags of a matched record that differ (informational for HighLevel,
  whose tags travel in the contact update as the `tags` field)
"""

from __future__ import annotations

import duckdb

from assets.recovery.restore.fields import (
    OPPORTUNITY_CONTACT,
    OPPORTUNITY_CREATED,
    OPPORTUNITY_FIELDS,
    Field,
    SourceSpec,
)

CHANGES_DDL = """
CREATE OR REPLACE TEMP TABLE changes (
    change_id VARCHAR, entity VARCHAR, action VARCHAR, backup_id VARCHAR, live_id VARCHAR,
    parent_backup_id VARCHAR, field VARCHAR, old_value VARCHAR, new_value VARCHAR,
    value_hash VARCHAR, personal BOOLEAN, tag VARCHAR, live_updated_at TIMESTAMPTZ,
    live_version VARCHAR)
"""
# live_version: what apply compares when the vendor gives a record no update time (HighLevel
# notes and tasks): a hash of the live record as read (restore/children.py); NULL otherwise
CHANGE_ID = ("substr(sha256(concat_ws('|', '{source}', entity, action, coalesce(backup_id, ''), "
             "coalesce(live_id, ''), coalesce(field, ''), coalesce(tag, ''))), 1, 32)")


COLUMNS = ("entity, action, backup_id, live_id, parent_backup_id, field, old_value, "
           "new_value, value_hash, personal, tag, live_updated_at")


def insert_changes(con: duckdb.DuckDBPyConnection, source: str, select_sql: str,
                   columns: str = COLUMNS) -> None:
    con.execute(f"INSERT INTO changes (change_id, {columns}) SELECT "
                f"{CHANGE_ID.format(source=source)}, * FROM ({select_sql}) AS x({columns})")


def long_values(rel: str, key: str, fields: tuple[Field, ...]) -> str:
    """(key, field, value, personal) for every field of every record of `rel`."""
    return " UNION ALL ".join(
        f"SELECT {key} AS rid, '{f.name}' AS field, CAST({f.sql} AS VARCHAR) AS value, "
        f"{f.personal} AS personal "
        f"FROM {rel}" for f in fields)


def record_hash(fields: tuple[Field, ...]) -> str:
    """A hash of a record's restorable values (what a create sends), to notice at apply time
    that the backup changed since the preview (e.g. the person was erased)."""
    return "md5(concat_ws('\x1f', " + ", ".join(
        f"coalesce(CAST({f.sql} AS VARCHAR), '∅')" for f in fields) + "))"


def contact_changes(con: duckdb.DuckDBPyConnection, spec: SourceSpec, as_of: str,
                    modes: set[str], fields: list[str] | None) -> dict[str, int]:
    src = spec.source
    con.execute(CHANGES_DDL)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE twin AS
        SELECT b.id AS backup_id, coalesce(im.live_id, b.id) AS live_id
        FROM backup_all b LEFT JOIN restore_idmap im
          ON im.source = '{src}' AND im.entity = 'contacts' AND im.backup_id = b.id""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sel AS
        SELECT b.id AS backup_id, t.live_id, l.id IS NOT NULL AS alive,
               l._source_updated_at AS live_updated_at
        FROM backup_sel b JOIN twin t ON t.backup_id = b.id
        LEFT JOIN live_all l ON l.id = t.live_id""")
    if "create-missing" in modes:
        insert_changes(con, src, f"""(SELECT 'contacts' AS entity, 'create' AS action, s.backup_id,
            NULL AS live_id, NULL AS parent_backup_id, NULL AS field, NULL AS old_value,
            NULL AS new_value, {record_hash(spec.fields)} AS value_hash, NULL AS personal,
            NULL AS tag, NULL::TIMESTAMPTZ AS live_updated_at
            FROM sel s JOIN backup_sel b ON b.id = s.backup_id WHERE NOT s.alive)""")
    if "update-existing" in modes:
        wanted = [f for f in spec.fields if fields is None or f.name in fields]
        if wanted:
            insert_changes(con, src, f"""(
                WITH b AS ({long_values('backup_sel', 'id', tuple(wanted))}),
                     l AS ({long_values('live_all', 'id', tuple(wanted))})
                SELECT 'contacts', 'update', s.backup_id, s.live_id, NULL, b.field,
                       l.value, b.value,
                       md5(coalesce(b.value, '∅')), b.personal, NULL, s.live_updated_at
                FROM sel s JOIN b ON b.rid = s.backup_id
                JOIN l ON l.rid = s.live_id AND l.field = b.field
                WHERE s.alive AND b.value IS DISTINCT FROM l.value)""")
        if fields is None or "tags" in fields:
            insert_changes(con, src, f"""(
                WITH bt AS (SELECT id, {spec.tags_sql} AS tags FROM backup_sel),
                     lt AS (SELECT id, {spec.tags_sql} AS tags FROM live_all),
                     pairs AS (SELECT s.backup_id, s.live_id, s.live_updated_at,
                                      bt.tags AS want, lt.tags AS have
                               FROM sel s JOIN bt ON bt.id = s.backup_id
                               JOIN lt ON lt.id = s.live_id WHERE s.alive)
                SELECT 'contacts', 'tag_add', backup_id, live_id, NULL, NULL, NULL, NULL, NULL,
                       false, unnest(list_filter(want, lambda t: NOT list_contains(have, t))),
                       live_updated_at FROM pairs
                UNION ALL
                SELECT 'contacts', 'tag_remove', backup_id, live_id, NULL, NULL, NULL, NULL,
                       NULL, false,
                       unnest(list_filter(have, lambda t: NOT list_contains(want, t))),
                       live_updated_at FROM pairs)""")
    unknown = 0
    if "delete-new" in modes:
        insert_changes(con, src, f"""(SELECT 'contacts', 'delete', NULL, l.id, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, l._source_updated_at
            FROM live_sel l WHERE l.id NOT IN (SELECT live_id FROM twin)
              AND {spec.created_sql} > TIMESTAMPTZ '{as_of}')""")
        unknown = con.execute(f"""SELECT count(*) FROM live_sel l
            WHERE l.id NOT IN (SELECT live_id FROM twin)
              AND coalesce({spec.created_sql} <= TIMESTAMPTZ '{as_of}', true)""").fetchone()[0]
    return {"unknown_before_as_of": unknown}


def opportunity_changes(con: duckdb.DuckDBPyConnection, as_of: str, modes: set[str],
                        whole_location: bool) -> dict[str, int]:
    """HighLevel opportunities of the selected contacts (children after parents).

    Input temp tables `opp_backup_all`, `opp_live_all`; uses `twin`, `sel`, `changes`.
    An opportunity whose live contact is not its restored contact (the contact is being
    recreated, or it was re-pointed) is `replace`d: HighLevel cannot move an opportunity to
    another contact, so it is deleted and created again under the right one."""
    scope = "" if whole_location else (
        f"WHERE {OPPORTUNITY_CONTACT} IN (SELECT id FROM backup_sel)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE opp_sel AS
        SELECT o.id AS backup_id, coalesce(im.live_id, o.id) AS live_id,
               {OPPORTUNITY_CONTACT.replace('_raw', 'o._raw')} AS parent_backup_id
        FROM (SELECT * FROM opp_backup_all {scope}) o
        LEFT JOIN restore_idmap im ON im.source = 'highlevel' AND im.entity = 'opportunities'
          AND im.backup_id = o.id""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE opp_pairs AS
        SELECT o.*, l.id IS NOT NULL AS alive, l._source_updated_at AS live_updated_at,
               json_extract_string(l._raw, '$.contactId') AS live_contact,
               t.live_id AS parent_live_id,
               coalesce(pl.id IS NOT NULL, false) AS parent_alive,
               coalesce(c.action = 'create', false) AS parent_created
        FROM opp_sel o LEFT JOIN opp_live_all l ON l.id = o.live_id
        LEFT JOIN twin t ON t.backup_id = o.parent_backup_id
        LEFT JOIN live_all pl ON pl.id = t.live_id
        LEFT JOIN (SELECT DISTINCT backup_id, action FROM changes WHERE entity = 'contacts'
                   AND action = 'create') c ON c.backup_id = o.parent_backup_id""")
    rec = record_hash(OPPORTUNITY_FIELDS)
    if "create-missing" in modes:
        insert_changes(con, 'highlevel', f"""(SELECT 'opportunities', 'create', p.backup_id, NULL,
            p.parent_backup_id, NULL, NULL, NULL, {rec}, NULL, NULL, NULL::TIMESTAMPTZ
            FROM opp_pairs p JOIN opp_backup_all b ON b.id = p.backup_id
            WHERE NOT p.alive AND (p.parent_alive OR p.parent_created))""")
    if "update-existing" in modes:
        insert_changes(con, 'highlevel', f"""(SELECT 'opportunities', 'replace', p.backup_id,
            p.live_id, p.parent_backup_id, NULL, NULL, NULL, {rec}, NULL, NULL, p.live_updated_at
            FROM opp_pairs p JOIN opp_backup_all b ON b.id = p.backup_id
            WHERE p.alive AND (p.parent_created OR (p.parent_alive AND
                  p.live_contact IS DISTINCT FROM p.parent_live_id)))""")
        insert_changes(con, 'highlevel', f"""(
            WITH b AS ({long_values('opp_backup_all', 'id', OPPORTUNITY_FIELDS)}),
                 l AS ({long_values('opp_live_all', 'id', OPPORTUNITY_FIELDS)})
            SELECT 'opportunities', 'update', p.backup_id, p.live_id, p.parent_backup_id,
                   b.field, l.value, b.value, md5(coalesce(b.value, '∅')), false, NULL,
                   p.live_updated_at
            FROM opp_pairs p JOIN b ON b.rid = p.backup_id
            JOIN l ON l.rid = p.live_id AND l.field = b.field
            WHERE p.alive AND p.parent_alive AND NOT p.parent_created
              AND p.live_contact IS NOT DISTINCT FROM p.parent_live_id
              AND b.value IS DISTINCT FROM l.value)""")
    if "delete-new" in modes:
        live_scope = "" if whole_location else (
            "AND json_extract_string(l._raw, '$.contactId') IN (SELECT id FROM live_sel)")
        insert_changes(con, 'highlevel', f"""(SELECT 'opportunities', 'delete', NULL, l.id,
            json_extract_string(l._raw, '$.contactId'), NULL, NULL, NULL, NULL, NULL, NULL,
            l._source_updated_at
            FROM opp_live_all l
            WHERE l.id NOT IN (SELECT coalesce(im.live_id, o.id) FROM opp_backup_all o
                               LEFT JOIN restore_idmap im ON im.source = 'highlevel'
                               AND im.entity = 'opportunities' AND im.backup_id = o.id)
              AND {OPPORTUNITY_CREATED.replace('_raw', 'l._raw')} > TIMESTAMPTZ '{as_of}'
              {live_scope})""")
    orphans = con.execute("""SELECT count(*) FROM opp_pairs
        WHERE NOT alive AND NOT parent_alive AND NOT parent_created""").fetchone()[0]
    return {"opportunities_without_contact": orphans}
