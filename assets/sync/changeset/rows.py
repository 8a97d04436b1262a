"""Step 4, rows: `create` (full body), `update` (PATCH body with merged arrays and an update
mask), `tag_add`, `tag_remove`, with deterministic change ids."""

from __future__ import annotations

from typing import Any

import duckdb

from assets.sync.changeset.rejects import create_rejects


def changes(con: duckdb.DuckDBPyConnection, desired_m: dict[str, Any]) -> None:
    """`changeset`: create, update, tag_add and tag_remove rows with change ids; dead-lettered
    ones moved to `skipped`."""
    _updates(con)
    _creates(con)
    _tags(con)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE all_changes AS
        WITH u AS (
            SELECT 'update' AS action, profile_id, contact_id, d.email AS match_email,
                   fields, body, update_mask, NULL::VARCHAR AS tag, NULL::VARCHAR AS tag_id,
                   conflict, field_values
            FROM upd JOIN (SELECT profile_id, email FROM desired) d USING (profile_id)
            UNION ALL
            SELECT 'create', profile_id, NULL, match_email, fields, body, NULL, NULL, NULL,
                   NULL, field_values FROM cre
            UNION ALL
            SELECT action, profile_id, contact_id, match_email, ['tag_ids'], NULL, NULL, tag,
                   tag_id, NULL, NULL FROM tagrows),
        ids AS (
            SELECT *, sha256(concat_ws(chr(31), action, CAST(profile_id AS VARCHAR),
                         coalesce(contact_id, 'email:' || match_email),
                         to_json({'body': body, 'tag': tag, 'update_mask': update_mask})
                     ))[:32] AS change_id
            FROM u)
        SELECT i.*, c.change_id AS depends_on
        FROM ids i LEFT JOIN ids c ON i.action IN ('tag_add', 'tag_remove')
            AND i.contact_id IS NULL AND c.action = 'create' AND c.profile_id = i.profile_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE skipped AS
        SELECT * FROM all_changes
        WHERE change_id IN (SELECT change_id FROM dead)
           OR depends_on IN (SELECT change_id FROM dead)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE changeset AS
        SELECT * FROM all_changes WHERE change_id NOT IN (SELECT change_id FROM skipped)
    """)


def _updates(con: duckdb.DuckDBPyConnection) -> None:
    """`upd`: one PATCH per matched contact with differing fields."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE upd_parts AS
        -- standard fields
        SELECT contact_id, CASE WHEN key = 'company' THEN 'company' ELSE key END AS top,
               CASE WHEN key = 'company' THEN
                        CASE WHEN value IS NULL THEN 'null'
                             ELSE '{"company_name":' || to_json(value) || '}' END
                    ELSE coalesce(CAST(to_json(value) AS VARCHAR), 'null') END AS json
        FROM diff WHERE apply AND kind = 'scalar'
        UNION ALL
        -- emails: Keap's array, plus ours in the first free slot
        SELECT contact_id, 'email_addresses', json_list(list_transform(list_sort(
                   list_transform(list_append(email_slots,
                                              {'email': value, 'field': free_slot}),
                                  lambda e: {'field': e.field, 'email': e.email})),
                   lambda e: email_item(e)))
        FROM diff WHERE apply AND kind = 'email'
        UNION ALL
        SELECT contact_id, 'phone_numbers', json_list(list_transform(list_sort(
                   list_transform(list_append(phone_slots,
                                              {'number': value, 'extension': NULL,
                                               'type': NULL, 'field': free_slot}),
                                  lambda p: {'field': p.field, 'number': p.number,
                                             'extension': p.extension, 'type': p.type})),
                   lambda p: phone_item(p)))
        FROM diff WHERE apply AND kind = 'phone'
    """)
    # custom fields: every value Keap holds, ours set (one array per contact)
    con.execute("""
        INSERT INTO upd_parts
        WITH ours AS (SELECT contact_id, label_key, cf_id AS id, cf_label AS label,
                             cf_content(value, field_type) AS content
                      FROM diff WHERE apply AND kind = 'custom'),
        theirs AS (SELECT k.contact_id, k.label_key, k.id, k.label, k.content FROM k_cf k
                   WHERE k.contact_id IN (SELECT contact_id FROM ours)
                     AND NOT EXISTS (SELECT 1 FROM ours o WHERE o.contact_id = k.contact_id
                                     AND o.label_key IS NOT DISTINCT FROM k.label_key)),
        items AS (SELECT * FROM ours UNION ALL SELECT * FROM theirs)
        SELECT contact_id, 'custom_fields',
               json_list(list(cf_item(id, label, content)
                              ORDER BY id IS NULL, id_order(id), label))
        FROM items GROUP BY contact_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE upd AS
        WITH body AS (
            SELECT contact_id,
                   '{' || string_agg(to_json(top) || ':' || json, ',' ORDER BY top) || '}'
                       AS body,
                   list(top ORDER BY top) AS update_mask
            FROM upd_parts GROUP BY contact_id),
        f AS (
            SELECT contact_id, any_value(profile_id) AS profile_id,
                   list(key ORDER BY key) FILTER (WHERE apply) AS fields,
                   map(list(key ORDER BY key) FILTER (WHERE apply),
                       list(value ORDER BY key) FILTER (WHERE apply)) AS field_values,
                   string_agg(note, '; ' ORDER BY key) AS notes
            FROM diff GROUP BY contact_id)
        SELECT f.profile_id, contact_id, f.fields, b.body, b.update_mask, f.field_values,
               nullif(concat_ws('; ', m.match_conflict, f.notes), '') AS conflict
        FROM body b JOIN f USING (contact_id) JOIN matched m USING (contact_id)
    """)


def _creates(con: duckdb.DuckDBPyConnection) -> None:
    """`cre`: one upsert (POST ?duplicate_option=Email) per profile no contact holds."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE unmatched AS
        SELECT * FROM desired WHERE profile_id NOT IN (SELECT profile_id FROM pick)
    """)
    create_rejects(con)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cre AS
        WITH w AS (
            SELECT w.profile_id, w.key, w.kind, w.label_key,
                   CASE WHEN w.key = 'email' THEN coalesce(w.value, u.email) ELSE w.value END
                       AS value
            FROM want w JOIN unmatched u USING (profile_id)
            WHERE NOT EXISTS (SELECT 1 FROM rejects r WHERE r.action = 'create'
                              AND r.profile_id = w.profile_id AND r.field = w.key)
            UNION ALL  -- the match email even when the mapping does not name it
            SELECT profile_id, 'email', 'email', NULL, email FROM unmatched
            WHERE NOT map_contains(fields, 'email')),
        parts AS (
            SELECT profile_id, CASE WHEN key = 'company' THEN 'company' ELSE key END AS top,
                   CASE WHEN key = 'company' THEN '{"company_name":' || to_json(value) || '}'
                        ELSE CAST(to_json(value) AS VARCHAR) END AS json
            FROM w WHERE kind = 'scalar' AND value IS NOT NULL
            UNION ALL
            SELECT profile_id, 'email_addresses',
                   json_list([email_item({'email': value, 'field': 'EMAIL1'})])
            FROM w WHERE kind = 'email'
            UNION ALL
            SELECT profile_id, 'phone_numbers',
                   json_list([phone_item({'number': value, 'extension': NULL::VARCHAR,
                                          'type': NULL::VARCHAR, 'field': 'PHONE1'})])
            FROM w WHERE kind = 'phone' AND value IS NOT NULL
            UNION ALL
            SELECT profile_id, 'custom_fields',
                   json_list(list(cf_item(cf.id, coalesce(cf.label, w.key[8:]),
                                          cf_content(w.value, coalesce(cf.field_type, 'TEXT')))
                                  ORDER BY cf.id IS NULL, id_order(cf.id), w.key))
            FROM w LEFT JOIN cf_dict cf USING (label_key)
            WHERE w.kind = 'custom' AND w.value IS NOT NULL GROUP BY profile_id),
        f AS (SELECT profile_id, list(key ORDER BY key) AS fields,
                     map(list(key ORDER BY key), list(value ORDER BY key)) AS field_values
              FROM w WHERE value IS NOT NULL GROUP BY profile_id)
        SELECT p.profile_id, u.email AS match_email, f.fields, f.field_values,
               '{' || string_agg(to_json(top) || ':' || json, ',' ORDER BY top) || '}' AS body
        FROM parts p JOIN unmatched u USING (profile_id) JOIN f USING (profile_id)
        GROUP BY ALL
    """)


def _tags(con: duckdb.DuckDBPyConnection) -> None:
    """`tagrows`: managed tags to add (any desired tag the contact lacks) and to remove
    (managed tags the contact carries and should not)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE tagrows AS
        WITH wt AS (SELECT DISTINCT ON (profile_id, tag_key) profile_id, tag,
                           lower(trim(tag)) AS tag_key
                    FROM (SELECT profile_id, unnest(tags) AS tag FROM desired)
                    WHERE nullif(trim(tag), '') IS NOT NULL),
        target AS (SELECT profile_id, m.contact_id, d.email AS match_email
                   FROM matched m JOIN (SELECT profile_id, email FROM desired) d
                       USING (profile_id)
                   UNION ALL SELECT profile_id, NULL, email FROM unmatched)
        SELECT 'tag_add' AS action, t.profile_id, t.contact_id, t.match_email, wt.tag,
               d.tag_id
        FROM target t JOIN wt USING (profile_id) LEFT JOIN tag_dict d USING (tag_key)
        WHERE NOT EXISTS (SELECT 1 FROM k_tag k WHERE k.contact_id = t.contact_id
                          AND k.tag_key = wt.tag_key)
        UNION ALL
        SELECT 'tag_remove', m.profile_id, m.contact_id, m.match_email, k.tag, d.tag_id
        FROM target m JOIN k_tag k USING (contact_id) JOIN managed USING (tag_key)
        LEFT JOIN tag_dict d USING (tag_key)
        WHERE NOT EXISTS (SELECT 1 FROM wt WHERE wt.profile_id = m.profile_id
                          AND wt.tag_key = k.tag_key)
    """)
