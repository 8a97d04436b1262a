"""Step 2, matching: which Keap contact each profile is (by its emails), and the field policies
of the mapping."""

from __future__ import annotations

from typing import Any

import duckdb


def match(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """`matched(profile_id, contact_id, match_conflict)`, `shared(profile_id, contact_id,
    winner)`: which Keap contact each profile updates."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE hits AS
        WITH pe AS (SELECT profile_id, email AS primary_email,
                           unnest(list_distinct(list_prepend(email, emails))) AS email
                    FROM desired),
             ke AS (SELECT contact_id, unnest(emails_norm) AS email FROM k_contact)
        SELECT pe.profile_id, ke.contact_id, bool_or(pe.email = pe.primary_email) AS primary_hit
        FROM pe JOIN ke USING (email) GROUP BY ALL
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE pick AS
        SELECT profile_id,
               arg_min(contact_id, (NOT primary_hit, id_order(contact_id))) AS contact_id,
               bool_or(primary_hit) AS primary_hit, bool_and(primary_hit) AS all_primary,
               count(*) AS n,
               list(contact_id ORDER BY id_order(contact_id)) AS ids
        FROM hits GROUP BY profile_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE matched AS
        SELECT profile_id, contact_id,
               CASE WHEN n > 1 AND all_primary THEN
                        'contacts ' || array_to_string(ids, ', ') || ' share this email; '
                        || contact_id || ' chosen (oldest)'
                    WHEN n > 1 THEN
                        'contacts ' || array_to_string(ids, ', ') || ' hold this profile''s '
                        || 'emails; ' || contact_id
                        || ' chosen (holds the primary email, then oldest)'
               END AS match_conflict
        FROM pick
        QUALIFY row_number() OVER (PARTITION BY contact_id
                                   ORDER BY NOT primary_hit, profile_id) = 1
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE shared AS
        SELECT p.profile_id, p.contact_id, m.profile_id AS winner
        FROM pick p JOIN matched m USING (contact_id) WHERE p.profile_id <> m.profile_id
    """)
    n = con.execute("""SELECT (SELECT count(*) FROM matched),
                              (SELECT count(*) FROM matched WHERE match_conflict IS NOT NULL),
                              (SELECT count(*) FROM shared)""").fetchone()
    return {"profiles_matched": n[0], "keap_duplicate_matches": n[1],
            "skipped_shared_contact": n[2]}


def policies(con: duckdb.DuckDBPyConnection, desired_m: dict[str, Any]) -> None:
    """`policy(key, policy)` from the mapping's conflict section; `managed(tag_key)`."""
    conflict = desired_m.get("conflict") or {}
    con.execute("CREATE OR REPLACE TEMP TABLE policy (key VARCHAR, policy VARCHAR)")
    if conflict:
        con.executemany("INSERT INTO policy VALUES (?, ?)", sorted(conflict.items()))
    bad = con.execute("SELECT key, policy FROM policy WHERE policy NOT IN "
                      "('ats_wins', 'keap_wins')").fetchall()
    if bad:
        raise ValueError(f"sync/keap_desired manifest: conflict policy {bad[0][1]!r} for field "
                         f"{bad[0][0]!r} is neither ats_wins nor keap_wins: fix the mapping")
    con.execute("CREATE OR REPLACE TEMP TABLE managed (tag_key VARCHAR)")
    tags = desired_m.get("managed_tags") or []
    if tags:
        con.executemany("INSERT INTO managed VALUES (?)",
                        [(t.strip().lower(),) for t in sorted(set(tags))])
