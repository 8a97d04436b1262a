"""The primary storage root in a bucket (TALENTVAULT_DATA_DIR=s3://...) on a real S3-protocol
server, encryption on, a replica in a second bucket: backups land in the bucket by commit
pointer and a second machine with an empty cache answers the same SQL; the shared records
(seal ledger) lose no entry when two machines write at once; the primary bucket's copy of a
partition deleted (and the cache lost) is named by verify and comes back from the replica with
`verify --repair`, SQL answering as before; a forgotten person leaves the primary bucket and
another machine's cache; a pruned partition leaves the bucket and the other caches; an
unreachable bucket or refused credentials are one line naming TALENTVAULT_DATA_DIR."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import obstore as obs
import pytest
from typer.testing import CliRunner

from assets.extract import run_extract
from assets.recovery.verify import verify
from orchestration.cli import app
from orchestration.config import data_root
from orchestration.storage import hydrate, parquet, primary, seals
from orchestration.storage.bucket import Bucket
from orchestration.storage.snapshots import SnapshotStorage
from tests.e2e.conftest import CRM_SPECS, World
from tests.s3_server import s3_env, s3_server

runner = CliRunner()
CONTACTS = "keap/contacts"


@pytest.fixture(scope="module")
def s3():
    with s3_server("primary", "offsite") as url:
        yield url


def use_cache(monkeypatch, folder: Path, partitions: bool = True) -> Path:
    """Act as the machine whose working cache is `folder`."""
    monkeypatch.setenv(primary.CACHE_ENV, str(folder))
    hydrate._hydrated.clear()
    parquet.check_root.cache_clear()
    return data_root(partitions=partitions)


def backup(w: World, day) -> None:
    clients = w.clients()
    try:
        for spec in CRM_SPECS:
            run_extract(spec, clients[spec.resource], SnapshotStorage(), day, "test")
    finally:
        for c in clients.values():
            c.close()


@pytest.fixture
def deployed(sandbox_world: World, s3: str, tmp_path: Path, monkeypatch):
    for k, v in s3_env(s3).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", f"s3://primary/{tmp_path.name}")
    monkeypatch.setenv("TALENTVAULT_REPLICA_URL", f"s3://offsite/{tmp_path.name}")
    monkeypatch.setenv(parquet.KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    root = use_cache(monkeypatch, tmp_path / "cache-a")
    w = sandbox_world
    backup(w, w.day())
    w.tick(1)
    backup(w, w.day())
    return root, primary.bucket(), Bucket(f"s3://offsite/{tmp_path.name}")


def objects(bucket: Bucket) -> dict[str, bytes]:
    return {m["path"]: bytes(obs.get(bucket.store, m["path"]).bytes())
            for batch in obs.list(bucket.store) for m in batch}


def contacts_sql() -> str:
    out = runner.invoke(app, ["sql", "--format", "csv", "SELECT id, _op, _source_updated_at "
                              "FROM keap.contacts_history ORDER BY ALL"])
    assert out.exit_code == 0, out.output
    return out.output


def test_backups_land_in_the_bucket_and_another_machine_sees_them(deployed, tmp_path,
                                                                    monkeypatch, sandbox_world):
    root, bucket, _ = deployed
    assert root == (tmp_path / "cache-a").resolve()
    local = {primary.rel_of(root, f) for f in seals_targets(root)}
    committed = set(bucket.partitions())
    assert local and committed == local
    names = objects(bucket)
    assert "_state/seals/ledger.jsonl" in names and "_state/_encryption.json" in names
    # encrypted: no backed-up person's address anywhere in the bucket's bytes
    emails = [c["email_addresses"][0]["email"].encode() for c in
              sandbox_world.sandbox_docs("keap", "contacts").values()
              if c.get("email_addresses")]
    assert emails and not any(e in blob for blob in names.values() for e in emails)
    before = contacts_sql()
    # machine B, an analyst's laptop: `sql` reads the partitions straight from the bucket
    root_b = use_cache(monkeypatch, tmp_path / "cache-b", partitions=False)
    assert contacts_sql() == before
    assert seals_targets(root_b) == []       # not one partition downloaded for it
    # the records come from the cache (up to date with the bucket): machine A's query is there
    audit = runner.invoke(app, ["sql", "--format", "csv", "SELECT count(*) AS n FROM "
                                "audit.events WHERE action = 'sql_query'"])
    assert audit.exit_code == 0, audit.output
    assert int(audit.output.split()[-1]) >= 2
    # a run on machine B: its cache hydrates whole
    root_b = use_cache(monkeypatch, tmp_path / "cache-b")
    assert {primary.rel_of(root_b, f) for f in seals_targets(root_b)} == local
    report = verify(root_b, read_data=True)
    assert report.ok, report.summary()
    assert report.primary_partitions == len(local)
    status = runner.invoke(app, ["status"])
    assert f"protection  primary {bucket.url} (cache {root_b})" in status.output


def seals_targets(root: Path) -> list[Path]:
    from orchestration.storage.files import partition_folders
    return partition_folders(root)


def test_two_machines_writing_the_seal_ledger_lose_nothing(deployed, tmp_path):
    root, bucket, _ = deployed
    before = len(seals.read(root)[0])
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    script = ("import sys; from orchestration.config import data_root; "
              "from orchestration.storage import seals\n"
              "root = data_root()\n"
              "for i in range(8): seals.append(root, 'state', f'probe/{sys.argv[1]}-{i}')\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, name],
                              env={**env, primary.CACHE_ENV: str(tmp_path / f"cache-{name}")})
             for name in ("x", "y")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    fresh = tmp_path / "cache-z"
    os.environ[primary.CACHE_ENV] = str(fresh)
    try:
        hydrate._hydrated.clear()
        entries, broken = seals.read(data_root())
    finally:
        os.environ[primary.CACHE_ENV] = str(root)
    assert not broken
    probes = sorted(e["target"] for e in entries if e["target"].startswith("probe/"))
    assert len(probes) == 16 and len(entries) == before + 16


def test_primary_copy_deleted_comes_back_from_the_replica(deployed, tmp_path, monkeypatch):
    root, bucket, offsite = deployed
    before = contacts_sql()
    rel = sorted(r for r in bucket.partitions() if r.startswith(CONTACTS))[-1]
    doomed = [p for p in objects(bucket) if p.startswith(f"{rel}/")]
    obs.delete(bucket.store, doomed)
    # a new machine: the cache is empty too, so only the replica holds the partition
    root_c = use_cache(monkeypatch, tmp_path / "cache-c")
    report = verify(root_c)
    assert not report.ok
    assert any(rel in p.path for p in report.problems), report.summary()
    out = runner.invoke(app, ["verify", "--repair"])
    assert out.exit_code == 0, out.output
    assert bucket.commit_of(rel) is not None
    assert verify(root_c, read_data=True).ok
    assert contacts_sql() == before


def test_a_bucket_that_cannot_be_used_is_one_line(deployed, monkeypatch, tmp_path):
    monkeypatch.setenv(primary.CACHE_ENV, str(tmp_path / "cache-d"))
    hydrate._hydrated.clear()
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", "s3://no-such-bucket/x")
    out = runner.invoke(app, ["status"])
    assert out.exit_code == 2
    assert "TALENTVAULT_DATA_DIR=s3://no-such-bucket/x: the bucket does not exist" in out.output
    assert "Traceback" not in out.output
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", "s3://primary/y")
    for name in ("AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")   # nothing listens there
    primary._bucket.cache_clear()
    out = runner.invoke(app, ["verify"])
    assert out.exit_code == 2
    assert "TALENTVAULT_DATA_DIR=s3://primary/y: the store is unreachable" in out.output
    primary._bucket.cache_clear()


def test_a_forget_and_a_prune_on_one_machine_reach_the_bucket_and_the_others(
        deployed, tmp_path, monkeypatch, sandbox_world):
    from datetime import date, timedelta

    from assets.recovery.erasure import forget
    from assets.recovery.retention import Policy, prune
    from orchestration.storage import suppression

    root, bucket, offsite = deployed
    root_b = use_cache(monkeypatch, tmp_path / "cache-b")      # machine B has it all cached
    root = use_cache(monkeypatch, tmp_path / "cache-a")
    con = parquet.connect()
    email = con.execute(f"""SELECT min(lower(e)) FROM (SELECT unnest(emails) AS e FROM
        read_parquet('{parquet.duck_path(root / CONTACTS / '*' / '*.parquet')}'))""").fetchone()[0]
    forget(root, email=email)
    # machine B: its cache takes the rewritten partitions and the erasure list
    use_cache(monkeypatch, tmp_path / "cache-b")
    assert len(suppression.hashes(root_b)) == len(suppression.hashes(root)) > 0
    hits = con.execute(f"""SELECT count(*) FROM read_parquet(
        '{parquet.duck_path(root_b / CONTACTS / '*' / '*.parquet')}')
        WHERE contains(lower(CAST(emails AS VARCHAR)) || lower(_raw), ?)""", [email]).fetchone()[0]
    assert hits == 0
    assert verify(root_b, read_data=True).ok
    # prune on A: the pointers leave the bucket, B's cache drops the partitions
    root = use_cache(monkeypatch, tmp_path / "cache-a")
    last = max(p.name.split("=")[1] for p in (root / CONTACTS).glob("snapshot_date=*"))
    report = prune(root, Policy(days=1, months=0, derived_days=1),
                   today=date.fromisoformat(last) + timedelta(days=40), apply=True)
    assert report.partitions_removed > 0
    kept = {primary.rel_of(root, f) for f in seals_targets(root)}
    assert set(bucket.partitions()) == kept
    root_b = use_cache(monkeypatch, tmp_path / "cache-b")
    assert {primary.rel_of(root_b, f) for f in seals_targets(root_b)} == kept
    assert verify(root_b, read_data=True).ok
    con.close()


def test_the_lease_is_exclusive_and_a_dead_holders_lease_expires(s3, monkeypatch, tmp_path):
    import json
    from datetime import UTC, datetime, timedelta

    from orchestration.storage.bucket import BucketError

    for k, v in s3_env(s3).items():
        monkeypatch.setenv(k, v)
    b = Bucket(f"s3://primary/{tmp_path.name}", setting="TALENTVAULT_DATA_DIR")

    def lease_of(holder: str, expires: datetime) -> None:
        obs.put(b.store, primary.LEASE, json.dumps(
            {"holder": holder, "expires_at": expires.isoformat()}).encode())

    # a holder killed mid-change: its lease is taken over once expired
    lease_of("dead-pod", datetime.now(UTC) - timedelta(seconds=1))
    with primary.lease(b):
        holder = json.loads(bytes(obs.get(b.store, primary.LEASE).bytes()))["holder"]
        assert holder != "dead-pod"
        with primary.lease(b):      # re-entrant within the process
            pass
    assert primary.LEASE not in objects(b)        # released
    # a holder on this machine that was killed: taken over at once, not after the TTL
    import socket
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lease_of(f"{socket.gethostname()}:{dead.pid}:x", datetime.now(UTC) + timedelta(minutes=5))
    monkeypatch.setattr(primary, "LEASE_WAIT", timedelta(seconds=5))
    with primary.lease(b):
        pass
    # a live holder: waited for, then one clear line (never two holders)
    lease_of("busy-pod", datetime.now(UTC) + timedelta(minutes=5))
    monkeypatch.setattr(primary, "LEASE_WAIT", timedelta(seconds=1))
    with pytest.raises(BucketError, match="held by busy-pod"), primary.lease(b):
        pass
    assert json.loads(bytes(obs.get(b.store, primary.LEASE).bytes()))["holder"] == "busy-pod"


KILLED_BACKUP = """
import sys
from datetime import date
from tests.e2e.conftest import CRM_SPECS
from assets.extract import run_extract
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.resources.highlevel import HighLevelResource
from orchestration.resources.keap import KeapResource
clients = {"keap": KeapResource().open(), "highlevel": HighLevelResource().open()}
for spec in CRM_SPECS:
    run_extract(spec, clients[spec.resource], SnapshotStorage(), date.fromisoformat(sys.argv[1]),
                "killed")
"""


def test_a_backup_killed_mid_upload_leaves_nothing_visible_and_a_rerun_converges(
        deployed, tmp_path, sandbox_world):
    """SIGKILL while partitions are going up to the primary bucket: no pointer names a half
    upload, the re-run lands every partition, verify --read-data passes on a fresh machine."""
    import signal
    import time

    root, bucket, _ = deployed
    w = sandbox_world
    w.tick(1)
    day = w.day().isoformat()
    before = {r: (bucket.commit_of(r) or {}).get("version") for r in bucket.partitions()}
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BACKUP, day], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        fresh = [m["path"] for batch in obs.list(bucket.store) for m in batch
                 if f"snapshot_date={day}/_v-" in m["path"]]
        if fresh:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the backup ended before the kill"
    # whatever is committed for the day is whole; the rest is invisible
    for rel in bucket.partitions():
        commit = bucket.commit_of(rel)
        for entry in commit["manifest"]["files"]:
            assert bucket.file_sha256(rel, commit["version"], entry["file"]) == entry["sha256"]
    assert {r: v for r, v in before.items()} == \
        {r: (bucket.commit_of(r) or {}).get("version") for r in before}
    # the re-run (another process, the same cache) lands the day; a new machine verifies
    backup(w, w.day())
    assert all(any(r == f"{s.schema.source}/{s.schema.entity}/snapshot_date={day}"
                   for r in bucket.partitions()) for s in CRM_SPECS)
    os.environ[primary.CACHE_ENV] = str(tmp_path / "cache-after-kill")
    try:
        hydrate._hydrated.clear()
        parquet.check_root.cache_clear()
        report = verify(data_root(), read_data=True)
    finally:
        os.environ[primary.CACHE_ENV] = str(root)
    assert report.ok, report.summary()
