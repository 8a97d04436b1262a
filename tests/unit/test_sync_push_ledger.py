"""The sync ledger on disk (real files, real DuckDB) and the push's error classification."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from assets.sync.ledger import (
    LedgerWriter,
    PushAlreadyRunning,
    PushLock,
    attempts_so_far,
    compact_abandoned,
    compact_wal,
    dead_letter,
    ledger_relation,
    parquet_path,
    run_wals,
    succeeded_change_ids,
)
from assets.sync.push import classify, describe_error, scrub
from orchestration.http import ApiError, MalformedResponseError


def line(writer: LedgerWriter, change_id: str, status: str, attempt: int = 1, **kw) -> None:
    writer.append(change_id=change_id, changeset_date="2026-01-15", profile_id=1,
                  contact_id="7", action="update", fields=["job_title"], status=status,
                  attempt=attempt, **kw)


def rows(root: Path) -> list[dict]:
    con = duckdb.connect()
    return ledger_relation(con, root).to_arrow_table().to_pylist()


def test_wal_is_readable_before_compaction_and_once_after(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path, "r1")
    line(w, "a", "succeeded", keap_update_time="2026-01-15T10:00:00.001Z")
    line(w, "b", "failed_retryable", http_status=503, error="HTTP 503")
    assert w.path.exists() and [r["change_id"] for r in rows(tmp_path)] == ["a", "b"]
    path = w.compact()
    assert path == parquet_path(tmp_path, "r1") and not w.path.exists()
    got = rows(tmp_path)
    assert [(r["change_id"], r["status"], r["run_id"]) for r in got] == [
        ("a", "succeeded", "r1"), ("b", "failed_retryable", "r1")]
    assert got[0]["keap_update_time"].isoformat() == "2026-01-15T10:00:00.001000+00:00"
    assert oct(path.stat().st_mode & 0o777) == "0o444"


def test_a_torn_last_line_is_not_an_outcome(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path, "killed")
    line(w, "a", "succeeded")
    w.close()
    with open(w.path, "ab") as f:  # a writer killed mid-line
        f.write(b'{"change_id": "b", "sta')
    assert [r["change_id"] for r in rows(tmp_path)] == ["a"]
    assert compact_abandoned(tmp_path) == ["killed"]
    assert [r["change_id"] for r in rows(tmp_path)] == ["a"]


def test_compaction_killed_between_rename_and_unlink_counts_nothing_twice(
        tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path, "r1")
    line(w, "a", "succeeded")
    w.close()
    wal_copy = w.path.read_bytes()
    compact_wal(tmp_path, w.path)
    w.path.write_bytes(wal_copy)  # as if the WAL removal never happened
    assert len(rows(tmp_path)) == 1  # readers skip a WAL whose Parquet exists
    # and a compaction killed before its rename leaves a temp file that is cleaned up
    tmp = parquet_path(tmp_path, "r1").parent / ".part-00000.dead.tmp"
    tmp.write_bytes(b"partial")
    assert compact_abandoned(tmp_path) == ["r1"]
    assert not w.path.exists() and not tmp.exists() and len(rows(tmp_path)) == 1


def test_a_live_writers_wal_is_not_compacted_by_another(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path, "alive")
    line(w, "a", "succeeded")
    assert compact_abandoned(tmp_path) == []
    assert w.path.exists()
    w.compact()
    assert run_wals(tmp_path) == []


def test_attempts_succeeded_and_dead_letter(tmp_path: Path) -> None:
    w1 = LedgerWriter(tmp_path, "r1")
    line(w1, "a", "failed_retryable", 1)
    line(w1, "b", "failed_permanent", 1, http_status=400, error="HTTP 400 on email_addresses")
    line(w1, "c", "failed_permanent", 1)
    w1.compact()
    w2 = LedgerWriter(tmp_path, "r2")
    line(w2, "a", "succeeded", 2)
    line(w2, "c", "succeeded", 2)  # a later success wins over a failure
    con = duckdb.connect()
    assert succeeded_change_ids(con, tmp_path) == {"a", "c"}
    assert attempts_so_far(con, tmp_path) == {"a": 2, "b": 1, "c": 2}
    dead = dead_letter(con, tmp_path).to_arrow_table().to_pylist()
    assert [(d["change_id"], d["error"]) for d in dead] == [("b",
                                                             "HTTP 400 on email_addresses")]


def test_one_push_at_a_time(tmp_path: Path) -> None:
    with PushLock(tmp_path):
        with pytest.raises(PushAlreadyRunning, match="another Keap push is running"):
            with PushLock(tmp_path):
                pass
    with PushLock(tmp_path):  # released
        pass


def test_run_ids_are_used_once_and_must_name_a_file(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path, "r1")
    line(w, "a", "succeeded")
    w.compact()
    with pytest.raises(ValueError, match="used once"):
        line(LedgerWriter(tmp_path, "r1"), "b", "succeeded")
    with pytest.raises(ValueError, match="cannot name a ledger file"):
        LedgerWriter(tmp_path, "../x")
    with pytest.raises(ValueError, match="status"):
        line(LedgerWriter(tmp_path, "r3"), "c", "done")


def api_error(status: int | None, body: dict | None = None) -> ApiError:
    return ApiError("keap: PATCH /rest/v2/contacts/7 failed", method="PATCH",
                    url="/rest/v2/contacts/7", status=status,
                    body=json.dumps(body) if body else None)


@pytest.mark.parametrize(("status", "expected"), [
    (None, "failed_retryable"), (429, "failed_retryable"), (500, "failed_retryable"),
    (503, "failed_retryable"), (408, "failed_retryable"), (409, "failed_retryable"),
    (401, "failed_retryable"), (400, "failed_permanent"), (404, "failed_permanent"),
    (422, "failed_permanent")])
def test_classification(status: int | None, expected: str) -> None:
    assert classify(api_error(status)) == expected


def test_malformed_reply_is_retryable_and_errors_carry_no_personal_values() -> None:
    e = MalformedResponseError("keap: cut", method="POST", url="/x", status=200)
    assert classify(e) == "failed_retryable"
    status, reason = describe_error(api_error(400, {
        "code": 400, "message": "Invalid email address 'ann.lee@example.com' in EMAIL1: bad",
        "details": [{"domain": "contact", "resource": "email_addresses[EMAIL1]"}]}))
    assert status == 400
    assert reason == "HTTP 400 on email_addresses[EMAIL1]: Invalid email address <value> in " \
                     "EMAIL1: bad"
    assert "ann" not in scrub("call ann@example.com or +1 (415) 555-0100 now")
    assert "555" not in scrub("call +1 (415) 555-0100 now")


def test_the_sql_catalog_shows_the_lines_of_uncompacted_logs(tmp_path: Path) -> None:
    """`sync.ledger` / `sync.dead_letter` in SQL see what `ledger_relation` sees in Python: a
    killed run's log before the next push compacts it, without counting a leftover log twice,
    with the compacted files' column types; and the view survives the logs being compacted."""
    from assets.catalog.views import open_catalog

    r1 = LedgerWriter(tmp_path, "r1")
    line(r1, "a", "succeeded")
    line(r1, "b", "failed_permanent", http_status=400, error="HTTP 400 on given_name")
    r1.close()
    leftover = r1.path.read_bytes()
    r1.compact()
    r1.path.write_bytes(leftover)  # a compaction killed between its rename and the unlink
    killed = LedgerWriter(tmp_path, "killed")
    line(killed, "c", "failed_permanent", http_status=404, error="HTTP 404")
    line(killed, "d", "succeeded", keap_update_time="2026-01-15T10:00:00.001Z")
    killed.close()
    with open(killed.path, "ab") as f:
        f.write(b'{"change_id": "e", "sta')  # torn by the kill

    def in_python() -> list[tuple]:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        ledger_relation(con, tmp_path)
        return con.execute("SELECT * FROM ledger ORDER BY change_id").fetchall()

    con = open_catalog(tmp_path)
    sql = "SELECT * FROM sync.ledger ORDER BY change_id"
    assert [r[0] for r in con.execute(sql).fetchall()] == ["a", "b", "c", "d"]
    assert con.execute(sql).fetchall() == in_python()
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE sync.ledger)")
                 .fetchall())
    assert types["at"] == types["keap_update_time"] == "TIMESTAMP WITH TIME ZONE"
    assert (types["changeset_date"], types["http_status"], types["fields"]) == (
        "DATE", "INTEGER", "VARCHAR[]")
    assert con.execute("SELECT change_id, http_status FROM sync.dead_letter ORDER BY 1"
                       ).fetchall() == [("b", 400), ("c", 404)]
    # the next push compacts the logs: the same view, same rows, nothing twice
    assert sorted(compact_abandoned(tmp_path)) == ["killed", "r1"]
    assert run_wals(tmp_path) == []
    assert [r[0] for r in con.execute(sql).fetchall()] == ["a", "b", "c", "d"]
    assert open_catalog(tmp_path).execute(sql).fetchall() == in_python()
