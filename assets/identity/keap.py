"""Keap contacts keyed by normalized email: what the sync matches profiles against, and where
Keap's own duplicates show (contacts sharing a normalized email).

Tables read: `keap` (state as of the day), `email_norm`, `phone_norm`.
Tables written: `keap_email_raw`, `keap_phone_raw` (before normalization), `keap_contacts`.
"""

from __future__ import annotations

import duckdb

from assets.identity import profiles
from assets.identity.profiles import values_by_id

KEAP_COLUMNS = ["given_name", "family_name", "emails", "phones", "update_time"]
NAME_VALUES = "SELECT given_name AS raw FROM keap UNION ALL SELECT family_name FROM keap"


def raw_values(con: duckdb.DuckDBPyConnection) -> None:
    profiles.raw_values(con, "keap")


def contacts(con: duckdb.DuckDBPyConnection) -> None:
    values_by_id(con, "keap_email_raw", "email_norm", "email", "keap_emails")
    values_by_id(con, "keap_phone_raw", "phone_norm", "e164", "keap_phones")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE keap_contacts AS
        WITH bad AS (SELECT r.id, count(*) AS n FROM keap_email_raw r JOIN email_norm n
                     USING (raw) WHERE n.email IS NULL GROUP BY r.id)
        SELECT k.id AS contact_id, e.first AS email, coalesce(e.all_values, []) AS emails,
               coalesce(bad.n, 0) AS invalid_emails, p.first AS phone,
               coalesce(p.all_values, []) AS phones,
               ng.display AS given_name, nf.display AS family_name,
               nullif(concat_ws(' ', ng.key, nf.key), '') AS name_key,
               k.update_time, k.snapshot_date AS source_snapshot_date
        FROM keap k
        LEFT JOIN keap_emails e USING (id) LEFT JOIN keap_phones p USING (id)
        LEFT JOIN bad USING (id)
        LEFT JOIN name_norm ng ON ng.raw = k.given_name
        LEFT JOIN name_norm nf ON nf.raw = k.family_name
    """)
