"""GDPR erasure end to end: a generated world served over a real socket, backed up for two days,
identity built with real `dg.materialize` runs; then `talentvault forget` (the CLI command) for
one person with applications and a Keap contact, and every file under the data root scanned:
raw bytes (manifests, JSON, any text) AND every decoded Parquet row cast to text (zstd hides
plaintext from a raw-bytes scan, so the decoded scan is proven to find the person first)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from assets.catalog.views import open_catalog
from assets.extract import run_extract
from assets.identity import suppressed
from assets.identity.assets import identity_assets
from assets.recovery.erasure import forget
from assets.recovery.verify import verify
from orchestration.cli import app as cli
from orchestration.resources import build_resources
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.writer import RUN_METADATA
from sandbox import process
from sandbox.store import Store
from sandbox.world import generate as world
from tests.e2e.conftest import ALL_SPECS, World

# id columns by name -> the person's id set they hold (the test's own reading of the layout)
ID_COLUMNS = {"candidate_id": "c", "candidate_ids": "c", "merged_candidate_ids": "c",
              "candidate_ids_a": "c", "candidate_ids_b": "c", "related_ids": "c",
              "application_id": "a", "application_ids": "a", "current_application_id": "a",
              "contact_id": "k", "contactId": "h", "profile_id": "p", "profile_id_a": "p",
              "profile_id_b": "p"}
ENTITY_ID = {("greenhouse", "candidates"): "c", ("greenhouse", "applications"): "a",
             ("keap", "contacts"): "k", ("highlevel", "contacts"): "h"}


@dataclass
class Erased:
    world: World
    root: Path
    email: str
    ids: dict[str, set[str]]
    before: dict[str, list[tuple[str, dict]]]   # Parquet file -> its rows before the erasure
    found_before: dict[str, int]         # file -> rows naming the person before
    hashes_before: dict[str, str]        # every file's sha256 before
    dry_run_hashes: dict[str, str]       # ... after the dry run
    output: str
    dry_output: str
    days: list[str]


def _build_identity(day: str) -> None:
    r = dg.materialize(identity_assets, partition_key=day, resources=build_resources(),
                       raise_on_error=False)
    assert r.success


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _sha(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _rows_as_text(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, dict]]:
    """Every row of a Parquet file: (the whole row as lower-cased text, {column: value})."""
    rel = con.sql(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)")
    cols = rel.columns
    out = []
    for row in rel.fetchall():
        d = dict(zip(cols, row, strict=True))
        out.append((json.dumps(d, default=str, ensure_ascii=False).lower(), d))
    return out


def _names_person(text: str, row: dict, rel: tuple[str, ...], email: str,
                  ids: dict[str, set[str]]) -> bool:
    if email in text:
        return True
    for col, kind in ID_COLUMNS.items():
        v = row.get(col)
        for x in (v if isinstance(v, list) else [v]):
            if x is not None and str(x) in ids[kind]:
                return True
    k = ENTITY_ID.get(rel[:2]) if len(rel) > 2 else None
    if k and str(row.get("id")) in ids[k]:
        return True
    if row.get("entity") in ("candidates", "applications") and "record_id" in row:
        kind = "c" if row["entity"] == "candidates" else "a"
        return str(row["record_id"]) in ids[kind]
    return False


def _scan(root: Path, email: str, ids: dict[str, set[str]]) -> dict[str, int]:
    """Decoded scan: Parquet files (every one, the audit trail and state included) -> rows
    naming the person."""
    con = duckdb.connect()
    found = {}
    for p in sorted(root.rglob("*.parquet")):
        rel = p.relative_to(root).parts
        n = sum(_names_person(t, d, rel, email, ids) for t, d in _rows_as_text(con, p))
        if n:
            found[str(p.relative_to(root))] = n
    return found


def _pick_person(root: Path) -> tuple[str, dict[str, set[str]]]:
    """A candidate with applications whose address is also a Keap contact's (and no other
    address contains it, so substring scans are exact)."""
    con = open_catalog(root)
    con.execute(r"CREATE TEMP MACRO clean(e) AS lower(regexp_replace(e, '^\s+|\s+$', '', 'g'))")
    rows = con.execute("""
        WITH c AS (SELECT id, clean(unnest(emails)) AS e FROM greenhouse.candidates_history),
             k AS (SELECT id AS kid, clean(unnest(emails)) AS e FROM keap.contacts_history),
             a AS (SELECT candidate_id, count(DISTINCT id) AS n
                   FROM greenhouse.applications_history GROUP BY 1)
        SELECT DISTINCT c.id, c.e FROM c JOIN k USING (e) JOIN a ON a.candidate_id = c.id
        WHERE a.n >= 2 ORDER BY c.id
    """).fetchall()
    assert rows, "the generated world has no candidate with applications and a Keap contact"
    cid, email = rows[0]
    every = [r[0] for r in con.execute("""
        SELECT DISTINCT clean(unnest(emails)) FROM greenhouse.candidates_history
        UNION SELECT DISTINCT clean(unnest(emails)) FROM keap.contacts_history
        UNION SELECT DISTINCT clean(email) FROM highlevel.contacts_history""").fetchall()
             if r[0]]
    assert [e for e in every if email in e] == [email]
    ids = {
        "c": {str(cid)},
        "a": {str(r[0]) for r in con.execute(
            "SELECT DISTINCT id FROM greenhouse.applications_history WHERE candidate_id = ?",
            [cid]).fetchall()},
        "k": {str(r[0]) for r in con.execute(
            "SELECT DISTINCT id FROM keap.contacts_history "
            "WHERE list_contains(list_transform(emails, lambda e: clean(e)), ?)",
            [email]).fetchall()},
        "h": {str(r[0]) for r in con.execute(
            "SELECT DISTINCT id FROM highlevel.contacts_history WHERE clean(email) = ?",
            [email]).fetchall()},
        "p": {str(r[0]) for r in con.execute(
            "SELECT DISTINCT profile_id FROM identity.candidate_profiles_by_day "
            "WHERE list_contains(candidate_ids, ?)", [cid]).fetchall()},
    }
    assert ids["a"] and ids["k"] and ids["p"]
    return email, ids


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Erased]:
    base = tmp_path_factory.mktemp("erasure")
    folder = base / "sandbox"                     # the emulated vendors: outside the data root
    world.generate(folder, candidates=60, seed=11)
    proc = process.start(folder, rate_limits=False)
    mp = pytest.MonkeyPatch()
    root = base / "data"
    mp.setenv("TALENTVAULT_DATA_DIR", str(root))
    mp.setenv("TALENTVAULT_SANDBOX_URL", proc.base_url)
    store = Store(folder)
    try:
        w = World(proc.base_url, root, store, proc)
        days = []
        for i in range(2):
            if i:
                w.tick()
            days.append(w.day().isoformat())
            w.backup(w.day(), ALL_SPECS)   # the whole record: notes, messages, attachments ...
        _build_identity(days[-1])
        email, ids = _pick_person(root)
        # files the erasure must handle beyond the partitions: a sync ledger write-ahead log
        # (JSON lines), a restore-plan-like file naming the address, a killed run's staging
        wal = root / "sync" / "ledger" / "_wal" / "run-1.jsonl"
        wal.parent.mkdir(parents=True)
        keap_id = sorted(ids["k"])[0]
        wal.write_text(json.dumps({"change_id": "x1", "contact_id": keap_id, "profile_id": None,
                                   "status": "succeeded"}) + "\n"
                       + json.dumps({"change_id": "x2", "contact_id": "999999",
                                     "status": "succeeded"}) + "\n")
        plan = root / "restore" / "plans" / "plan-1.json"
        plan.parent.mkdir(parents=True)
        plan.write_text(json.dumps({"records": [{"email": email.upper()}]}))
        cand_dir = root / "greenhouse" / "candidates"
        stale = cand_dir / f".staging-{days[0]}-deadbeef"
        stale.mkdir()
        src = next((cand_dir / f"snapshot_date={days[0]}").glob("*.parquet"))
        (stale / "_incoming.parquet").write_bytes(src.read_bytes())
        old = time.time() - 3600
        os.utime(stale / "_incoming.parquet", (old, old))
        os.utime(stale, (old, old))

        con = duckdb.connect()
        before = {str(p.relative_to(root)): _rows_as_text(con, p)
                  for p in sorted(root.rglob("*.parquet"))}
        found_before = _scan(root, email, ids)
        hashes_before = {str(p.relative_to(root)): _sha(p) for p in _files(root)}
        dry = CliRunner().invoke(cli, ["forget", "--email", f"  {email.upper()} ", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        dry_run_hashes = {str(p.relative_to(root)): _sha(p) for p in _files(root)}
        result = CliRunner().invoke(cli, ["forget", "--email", f"  {email.upper()} "])
        assert result.exit_code == 0, result.output
        yield Erased(w, root, email, ids, before, found_before, hashes_before, dry_run_hashes,
                     result.output, dry.output, days)
    finally:
        mp.undo()
        proc.stop()
        store.close()


def test_the_scan_finds_the_person_before(erased: Erased):
    found = erased.found_before
    # backups of all three sources (history included), identity outputs, the extra files
    for entity in ("greenhouse/candidates", "greenhouse/applications", "keap/contacts",
                   "identity/candidate_profiles", "identity/keap_contacts"):
        assert any(f.startswith(entity + "/snapshot_date=") for f in found), entity
    assert any(".staging-" in f for f in found)
    assert "restore/plans/plan-1.json" in erased.hashes_before


def test_the_dry_run_writes_nothing(erased: Erased):
    changed = {f for f, h in erased.dry_run_hashes.items() if erased.hashes_before.get(f) != h}
    # only the salt (the subject's hash needs it) may appear
    assert changed <= {"state/suppression.salt"}
    assert "would remove" in erased.dry_output and "nothing written" in erased.dry_output
    assert erased.email not in erased.dry_output.lower()


def test_no_trace_left_in_any_file(erased: Erased):
    root, email = erased.root, erased.email
    assert "removed" in erased.output and email not in erased.output.lower()
    # raw bytes of every file (manifests, JSON lines, the catalog, Parquet, the list, locks)
    for p in _files(root):
        assert email.encode() not in p.read_bytes().lower(), p
    # decoded content of every Parquet file: the address and every one of the person's ids
    assert _scan(root, email, erased.ids) == {}
    # staging leftovers of killed runs are gone; the plan naming the person was deleted
    assert not list(root.rglob(".staging-*"))
    assert not (root / "restore" / "plans" / "plan-1.json").exists()
    # the ledger WAL lost the person's line only
    lines = (root / "sync" / "ledger" / "_wal" / "run-1.jsonl").read_text().splitlines()
    assert [json.loads(x)["change_id"] for x in lines] == ["x2"]


def test_other_people_are_untouched(erased: Erased):
    """Per Parquet file: the rows after = the rows before minus exactly the rows naming the
    person (the test's own scan decides which those are)."""
    con = duckdb.connect()
    root = erased.root
    for name, rows in erased.before.items():
        path = root / name
        if ".staging-" in name:
            continue
        after = sorted(t for t, _ in _rows_as_text(con, path))
        rel = Path(name).parts
        expected = sorted(t for t, d in rows
                          if not _names_person(t, d, rel, erased.email, erased.ids))
        assert len(expected) < len(rows) or name not in erased.found_before
        assert after == expected, name


def test_manifests_match_the_rewritten_files(erased: Erased):
    """A verify-style re-check: sha256, bytes, rows and content fingerprint of every partition
    against its manifest; the rewritten ones carry an erasure note; files stay read-only."""
    con = duckdb.connect()
    rewritten = 0
    for m in erased.root.rglob("_manifest.json"):
        manifest = json.loads(m.read_text())
        part = m.parent
        files = sorted(part.glob("*.parquet"))
        assert [f["file"] for f in manifest["files"]] == [f.name for f in files]
        for entry in manifest["files"]:
            f = part / entry["file"]
            assert _sha(f) == entry["sha256"] and f.stat().st_size == entry["bytes"], f
            assert con.execute(f"SELECT count(*) FROM read_parquet('{f}')").fetchone()[0] \
                == entry["rows"]
            assert not os.access(f, os.W_OK) or os.geteuid() == 0
            assert (f.stat().st_mode & 0o222) == 0, f
        assert manifest["rows"] == sum(e["rows"] for e in manifest["files"])
        backup = part.relative_to(erased.root).parts[0] in ("greenhouse", "keap", "highlevel")
        cols = [c for c in con.sql(f"SELECT * FROM read_parquet('{files[0]}', "
                                   "hive_partitioning = false) LIMIT 0").columns
                if not (backup and c in RUN_METADATA)]
        glob = "[" + ", ".join(f"'{f}'" for f in files) + "]"
        row = ", ".join(f'"{c}"' for c in cols)
        digest = con.execute(f"SELECT coalesce(sum(hash({row})::HUGEINT), 0) "
                             f"FROM read_parquet({glob}, hive_partitioning = false)").fetchone()[0]
        assert str(digest) == manifest["content_fingerprint"], part
        if "erasures" in manifest:
            rewritten += 1
            note = manifest["erasures"][-1]
            assert note["rows_removed"] > 0 and set(note) == {
                "erasure_id", "at", "rows_removed", "files_rewritten"}
    assert rewritten >= 6
    # every rewrite was sealed again and recorded, the grown suppression list too
    report = verify(erased.root, record=False)
    assert report.ok and report.unsealed == 0 and report.sealed > 20, report.summary()


def test_the_audit_trail_names_the_hash_not_the_person(erased: Erased):
    con = open_catalog(erased.root)
    rows = con.execute("""SELECT target, status, counts, details FROM audit.events
                          WHERE action = 'erasure'""").fetchall()
    assert len(rows) == 1
    target, status, counts, details = rows[0]
    subject = suppressed.identity_hash(erased.root, "email", erased.email)
    assert target == f"subject:{subject}" and status == "succeeded"
    counts = json.loads(counts)
    con = duckdb.connect()
    landed = [n for n in erased.before if ".staging-" not in n]
    assert counts["rows_removed"] == sum(len(erased.before[n]) for n in landed) - sum(
        len(_rows_as_text(con, erased.root / n)) for n in landed)
    assert counts["rows_removed"] == sum(erased.found_before[n] for n in landed
                                         if n in erased.found_before)
    assert counts["files_deleted"] == 1 and counts["leftovers_removed"] == 1
    for kind, ids in erased.ids.items():
        for i in ids:
            assert i not in details and i not in str(counts.get("ids")), kind
    assert suppressed.is_suppressed(erased.root, "email", erased.email)
    for i in erased.ids["c"]:
        assert suppressed.is_suppressed(erased.root, "greenhouse_candidate", i)
    for i in erased.ids["k"]:
        assert suppressed.is_suppressed(erased.root, "keap_contact", i)


def test_the_next_backup_does_not_bring_the_person_back(erased: Erased):
    """A full backup of every entity the next day (the person is still in the sandbox), then
    identity: nothing about the person lands; forgetting again is a no-op."""
    w, root = erased.world, erased.root
    assert any(erased.email in json.dumps(d).lower()
               for d in w.sandbox_docs("greenhouse", "candidates").values())
    w.tick()
    day = w.day()
    clients = w.clients()
    storage = SnapshotStorage(root=str(root))
    try:
        manifests = {s.key.to_user_string(): run_extract(s, clients[s.resource], storage, day,
                                                          "after-erasure", "full")
                     for s in ALL_SPECS}
    finally:
        for c in clients.values():
            c.close()
    assert manifests["greenhouse/candidates"]["suppressed_rows"] >= 1
    assert manifests["greenhouse/applications"]["suppressed_rows"] >= 2
    assert manifests["keap/contacts"]["suppressed_rows"] >= 1
    _build_identity(day.isoformat())
    assert not list(root.rglob(".staging-*"))
    for p in _files(root):
        assert erased.email.encode() not in p.read_bytes().lower(), p
    assert _scan(root, erased.email, erased.ids) == {}

    snapshot = {str(p.relative_to(root)): _sha(p) for p in _files(root)
                if p.relative_to(root).parts[0] != "audit"}
    again = forget(root, email=erased.email)
    assert again.noop and again.rows_removed == 0 and again.files_rewritten == 0
    assert again.suppression_added == 0
    assert {str(p.relative_to(root)): _sha(p) for p in _files(root)
            if p.relative_to(root).parts[0] != "audit"} == snapshot
    by_id = forget(root, source_ids={"keap": sorted(erased.ids["k"])})
    assert by_id.noop
