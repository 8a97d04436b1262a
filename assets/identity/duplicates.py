"""Possible duplicates: pairs of profiles (different emails, so never merged by the identity
step) that look like one person, for a human to review in Greenhouse. Never merged here.

A pair shares at least one E.164 phone and:
- `same_name_same_phone` (score 1.0): equal normalized names, or the same words in another
  order (`Wang Wei` / `Wei Wang`);
- `similar_name_same_phone` (score = the Jaro-Winkler similarity of the names, at least
  `name_similarity`): a typo, a nickname sharing most letters (`Jon Smith` / `John Smith`).
Phones shared by more than `max_phone_group` profiles (switchboards, placeholders such as
+10000000000) pair nobody; they are counted instead.
"""

from __future__ import annotations

from typing import Any

import duckdb

from assets.identity.config import DuplicatesConfig

NAME = "possible_duplicates"
SAME_NAME = "same_name_same_phone"
SIMILAR_NAME = "similar_name_same_phone"


def possible_duplicates(con: duckdb.DuckDBPyConnection, profiles_sql: str,
                        cfg: DuplicatesConfig) -> dict[str, Any]:
    """Create table `possible_duplicates` from the profiles in `profiles_sql`."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE dup_phones AS
        SELECT profile_id, unnest(phones) AS phone, name_key,
               array_to_string(list_sort(string_split(name_key, ' ')), ' ') AS sorted_key,
               candidate_ids
        FROM ({profiles_sql}) WHERE name_key IS NOT NULL AND len(phones) > 0
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE dup_groups AS
        SELECT phone, count(DISTINCT profile_id) AS n FROM dup_phones GROUP BY phone
        HAVING count(DISTINCT profile_id) > 1
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE possible_duplicates AS
        WITH pairs AS (
            SELECT a.profile_id AS a, b.profile_id AS b, a.phone,
                   CASE WHEN a.name_key = b.name_key OR a.sorted_key = b.sorted_key THEN 1.0
                        ELSE greatest(jaro_winkler_similarity(a.name_key, b.name_key),
                                      jaro_winkler_similarity(a.sorted_key, b.sorted_key))
                        END AS score,
                   a.candidate_ids AS ca, b.candidate_ids AS cb
            FROM dup_phones a
            JOIN dup_groups g ON g.phone = a.phone AND g.n <= {int(cfg.max_phone_group)}
            JOIN dup_phones b ON b.phone = a.phone AND a.profile_id < b.profile_id
        )
        SELECT a AS profile_id_a, b AS profile_id_b, round(max(score), 4) AS score,
               CASE WHEN max(score) >= 1.0 THEN '{SAME_NAME}' ELSE '{SIMILAR_NAME}' END AS rule,
               count(DISTINCT phone) AS shared_phones,
               any_value(ca) AS candidate_ids_a, any_value(cb) AS candidate_ids_b
        FROM pairs GROUP BY a, b
        HAVING max(score) >= {float(cfg.name_similarity)}
    """)
    by_rule = dict(con.execute(
        "SELECT rule, count(*) FROM possible_duplicates GROUP BY rule").fetchall())
    skipped = con.execute(f"""
        SELECT count(*), coalesce(sum(n), 0) FROM dup_groups
        WHERE n > {int(cfg.max_phone_group)}""").fetchall()[0]
    return {"pairs": sum(by_rule.values()), SAME_NAME: by_rule.get(SAME_NAME, 0),
            SIMILAR_NAME: by_rule.get(SIMILAR_NAME, 0),
            "phone_groups_too_large": skipped[0], "profiles_in_large_groups": int(skipped[1])}
