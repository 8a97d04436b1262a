"""The suppression list: salted hashes, SQL and Python agree, the extraction filter."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.identity import suppressed
from orchestration.storage import suppression


def test_salt_created_once_private(tmp_path):
    s1 = suppression.salt(tmp_path)
    path = tmp_path / "state" / "suppression.salt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert suppression.salt(tmp_path) == s1 and len(s1) == 64
    # another installation has another salt: the same email hashes differently
    other = tmp_path / "other"
    assert suppressed.identity_hash(other, "email", "a@b.co") != \
        suppressed.identity_hash(tmp_path, "email", "a@b.co")
    assert not list(path.parent.glob(".suppression.salt.*"))  # no temporary left


def test_salt_race_one_winner(tmp_path):
    with ThreadPoolExecutor(8) as ex:
        salts = set(ex.map(lambda _: suppression.salt(tmp_path), range(16)))
    assert len(salts) == 1


def test_damaged_salt_is_named(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "suppression.salt").write_text("short")
    with pytest.raises(RuntimeError, match="suppression.salt is damaged"):
        suppression.salt(tmp_path)


def test_add_is_suppressed_idempotent(tmp_path):
    assert not suppressed.is_suppressed(tmp_path, "email", "Jane.Doe@Example.COM ")
    assert suppressed.add(tmp_path, "email", " Jane.Doe@Example.com")
    assert not suppressed.add(tmp_path, "email", "jane.doe@example.com")   # same person
    assert suppressed.is_suppressed(tmp_path, "email", "JANE.DOE@example.com")
    assert not suppressed.is_suppressed(tmp_path, "email", "john@example.com")
    assert suppressed.add(tmp_path, "greenhouse_candidate", 42)
    assert suppressed.is_suppressed(tmp_path, "greenhouse_candidate", "42")
    assert not suppressed.is_suppressed(tmp_path, "keap_contact", "42")  # kinds are distinct
    table = pq.read_table(tmp_path / "state" / "suppression.parquet")
    assert table.num_rows == 2
    raw = (tmp_path / "state" / "suppression.parquet").read_bytes()
    assert b"jane" not in raw.lower()
    with pytest.raises(ValueError, match="unknown suppression kind"):
        suppressed.add(tmp_path, "phone", "1")


def test_concurrent_adds_lose_nothing(tmp_path):
    with ThreadPoolExecutor(6) as ex:
        list(ex.map(lambda i: suppressed.add(tmp_path, "keap_contact", i), range(30)))
    assert pq.read_table(tmp_path / "state" / "suppression.parquet").num_rows == 30


def test_sql_macro_matches_python(tmp_path):
    suppressed.add(tmp_path, "email", "a@b.co")
    suppressed.add(tmp_path, "highlevel_contact", "hl_1")
    con = duckdb.connect()
    assert suppression.register(con, tmp_path) == 2
    got = con.execute("""
        SELECT tv_identity_hash('email', 'a@b.co') IN (SELECT hash FROM suppressed_hashes),
               tv_identity_hash('highlevel_contact', 'hl_1')
                   IN (SELECT hash FROM suppressed_hashes),
               tv_identity_hash('email', 'c@b.co') IN (SELECT hash FROM suppressed_hashes),
               tv_identity_hash('greenhouse_candidate', 7)
    """).fetchone()
    assert got[:3] == (True, True, False)
    assert got[3] == suppressed.identity_hash(tmp_path, "greenhouse_candidate", 7)


def test_register_without_list_is_empty(tmp_path):
    con = duckdb.connect()
    assert suppression.register(con, tmp_path) == 0
    assert con.execute("SELECT count(*) FROM suppressed_hashes").fetchone()[0] == 0


def test_extraction_filter(tmp_path):
    assert suppressed.extraction_filter(tmp_path, "greenhouse", "jobs") is None
    f = suppressed.extraction_filter(tmp_path, "greenhouse", "candidates")
    con = duckdb.connect()
    page = pa.table({"id": [1, 2, 3, 4],
                         "emails": [["X@Erased.example "], ["keep@x.co"], None, ["b@x.co"]]})
    con.register("page", page)
    con.execute("CREATE TEMP VIEW incoming AS SELECT * FROM page")
    assert f(con, "incoming") is None           # nothing suppressed yet: no filter
    suppressed.add(tmp_path, "email", "x@erased.example")
    suppressed.add(tmp_path, "greenhouse_candidate", 4)
    where = f(con, "incoming")
    kept = con.execute(f"SELECT id FROM incoming WHERE {where} ORDER BY id").fetchall()
    assert kept == [(2,), (3,)]
    # dependents by candidate id and application id
    apps = suppressed.extraction_filter(tmp_path, "greenhouse", "applications")
    suppressed.add(tmp_path, "greenhouse_application", 11)
    con.execute("""CREATE TEMP TABLE a AS SELECT * FROM (VALUES (10, 4), (11, 9), (12, 9),
                   (13, NULL)) t(id, candidate_id)""")
    assert not suppressed.is_suppressed(tmp_path, "greenhouse_application", 10)
    kept = con.execute(f"SELECT id FROM a WHERE {apps(con, 'a')} ORDER BY id").fetchall()
    assert kept == [(12,), (13,)]
    # the dropped application of the suppressed candidate is suppressed itself from now on,
    # so its stages and interviews (application id only) are dropped too
    assert suppressed.is_suppressed(tmp_path, "greenhouse_application", 10)
    assert not suppressed.is_suppressed(tmp_path, "greenhouse_application", 12)
    stages = suppressed.extraction_filter(tmp_path, "greenhouse", "interviews")
    con.execute("CREATE TEMP TABLE s AS SELECT * FROM (VALUES (1, 10), (2, 12)) "
                "t(id, application_id)")
    assert con.execute(f"SELECT id FROM s WHERE {stages(con, 's')}").fetchall() == [(2,)]


def test_every_backed_up_entity_that_names_a_person_is_filtered_after_an_erasure() -> None:
    """An entity whose rows name a candidate, application or contact must say how (PERSON_KEYS),
    or the next backup after `forget` would land the erased person's records again (the notes,
    messages and appointments of issue 17 were missing at first)."""
    from assets.greenhouse.extract import SPECS as GREENHOUSE
    from assets.highlevel.extract import SPECS as HIGHLEVEL
    from assets.identity.suppressed import PERSON_KEYS
    from assets.keap.extract import SPECS as KEAP

    person_columns = {"candidate_id", "application_id", "contact_id", "contactId"}
    missing = [f"{s.schema.source}/{s.schema.entity}" for s in (*GREENHOUSE, *KEAP, *HIGHLEVEL)
               if {c.name for c in s.schema.columns} & person_columns
               and (s.schema.source, s.schema.entity) not in PERSON_KEYS]
    assert missing == []
