"""Name normalization: vectorized Arrow compute, no Python per value.

- display form: Unicode NFKC (fullwidth `Ｊｏｈｎ` -> `John`, ligature `Steﬀen` -> `Steffen`,
  combining accents composed), whitespace collapsed and trimmed; a name typed ALL IN CAPITALS is
  title-cased (`O'BRIEN` -> `O'Brien`); other casing is kept as typed (`van der Berg`).
- matching key (`name_key`): the display form lower-cased, accents stripped, punctuation as
  spaces (`José-Luis  Núñez` -> `jose luis nunez`): what "the same name" means in dedup.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

WHITESPACE = r"[\s\p{Z}]+"


def _chunk(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def nfkc_trim(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, inner whitespace collapsed to one space, trimmed; case kept."""
    a = pc.utf8_normalize(_chunk(values), "NFKC")
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(a, WHITESPACE, " "))


def display_name(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    a = nfkc_trim(values)
    shouted = pc.and_(pc.equal(pc.utf8_upper(a), a),
                      pc.and_(pc.not_equal(pc.utf8_lower(a), a),
                              pc.greater(pc.utf8_length(a), 1)))
    out = pc.if_else(shouted, pc.utf8_title(a), a)
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def register(con: duckdb.DuckDBPyConnection) -> None:
    v = duckdb.sqltype("VARCHAR")
    con.create_function("tv_fold_keep_case", nfkc_trim, [v], v, type="arrow",
                        side_effects=False, null_handling="special")
    con.create_function("tv_display_name", display_name, [v], v, type="arrow",
                        side_effects=False, null_handling="special")
    # the matching key, in SQL on the display form
    con.execute(r"""
        CREATE OR REPLACE TEMP MACRO tv_name_key(x) AS
        nullif(trim(regexp_replace(strip_accents(lower(x)), '[^\p{L}\p{N}]+', ' ', 'g')), '')
    """)


def normalize_names(con: duckdb.DuckDBPyConnection, values_sql: str, target: str) -> int:
    """Create table `target(raw, display, key, text)` for the DISTINCT non-null `raw` values of
    `values_sql`: the display form, the matching key, and the plain NFKC-trimmed text (for
    companies and titles, whose case is kept). Returns the number of distinct values."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH d AS (SELECT DISTINCT raw FROM ({values_sql}) WHERE raw IS NOT NULL),
        n AS (SELECT raw, tv_display_name(raw) AS display, tv_fold_keep_case(raw) AS text
              FROM d)
        SELECT raw, display, tv_name_key(display) AS key, nullif(text, '') AS text FROM n
    """)
    return con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
