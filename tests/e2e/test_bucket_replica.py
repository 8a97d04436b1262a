"""The replica in a bucket (TALENTVAULT_REPLICA_URL) on a real S3-protocol server, with encryption
on: every landed partition is committed there by pointer; a partition deleted from the primary is
named by verify and comes back with `verify --repair`, SQL answering as before; a damaged bucket
object is named and uploaded again; a crashed upload's objects are collected; an erased person
and a pruned partition leave the bucket; an unreachable bucket or refused credentials are one
error naming the setting."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import obstore as obs
import pytest
from typer.testing import CliRunner

from assets.recovery.erasure import forget
from assets.recovery.verify import verify
from orchestration.cli import app
from orchestration.storage import parquet
from orchestration.storage.bucket import COMMIT, Bucket
from tests.e2e.conftest import CRM_SPECS, World
from tests.s3_server import s3_env, s3_server

runner = CliRunner()
CONTACTS = Path("keap") / "contacts"


@pytest.fixture(scope="module")
def s3():
    with s3_server("replica") as url:
        yield url


@pytest.fixture
def backed_up(sandbox_world: World, s3: str, tmp_path: Path, monkeypatch):
    for k, v in s3_env(s3).items():
        monkeypatch.setenv(k, v)
    url = f"s3://replica/{tmp_path.name}"
    root = tmp_path / "data"
    monkeypatch.setenv("TALENTVAULT_REPLICA_URL", url)
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(root))
    monkeypatch.setenv(parquet.KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    parquet.check_root.cache_clear()
    w = sandbox_world
    w.backup(w.day(), specs=CRM_SPECS, root=root)
    w.tick(1)
    w.backup(w.day(), specs=CRM_SPECS, root=root)
    return root, Bucket(url)


def objects(bucket: Bucket) -> list[str]:
    return sorted(m["path"] for batch in obs.list(bucket.store) for m in batch)


def contacts_sql() -> str:
    out = runner.invoke(app, ["sql", "--format", "csv", "SELECT id, _op, _source_updated_at "
                              "FROM keap.contacts_history ORDER BY ALL"])
    assert out.exit_code == 0, out.output
    return out.output


def test_every_partition_is_committed_in_the_bucket(backed_up):
    root, bucket = backed_up
    report = verify(root, read_data=True)
    assert report.ok, report.summary()
    assert report.replica == bucket.url
    assert report.replica_partitions == report.partitions > 0
    everything = objects(bucket)
    names = [n for n in everything if not n.startswith("_state/")]
    # one version per partition: the pointer plus exactly the files its manifest lists
    assert sum(n.endswith(f"/{COMMIT}") for n in names) == report.partitions
    assert len(names) - report.partitions == report.files
    # verify copied the root's own records too, behind their index
    assert report.replica_state_files > 0
    assert "_state/_index.json" in everything and "_state/seals/ledger.jsonl" in everything


def test_a_lost_partition_comes_back_from_the_bucket(backed_up):
    root, _ = backed_up
    before = contacts_sql()
    lost = sorted((root / CONTACTS).glob("snapshot_date=*"))[-1]
    shutil.rmtree(lost)
    rel = str(lost.relative_to(root))
    found = runner.invoke(app, ["verify"])
    assert found.exit_code == 1
    assert f"{rel}: missing here but held by the replica bucket" in found.output
    fixed = runner.invoke(app, ["verify", "--repair", "--read-data"])
    assert fixed.exit_code == 0, fixed.output
    assert f"restored from the replica: {rel}" in fixed.output
    assert contacts_sql() == before


def test_sql_straight_from_the_bucket_answers_as_the_primary_even_once_it_is_gone(backed_up):
    root, _ = backed_up
    local = contacts_sql()
    query = ["sql", "--from-replica", "--format", "csv"]
    out = runner.invoke(app, [*query, "SELECT id, _op, _source_updated_at FROM "
                              "keap.contacts_history ORDER BY ALL"])
    assert out.exit_code == 0, out.output
    assert out.output == local and local.count("\n") > 100
    as_of = ("SELECT count(*) AS n FROM keap.contacts_as_of('{t}')")
    t = "2026-01-05T12:00:00Z"
    same = [runner.invoke(app, [*q, as_of.format(t=t)]).output
            for q in (["sql", "--format", "csv"], query)]
    assert same[0] == same[1]
    shutil.rmtree(root)   # the machine is gone: the bucket still answers
    again = runner.invoke(app, [*query, "SELECT id, _op, _source_updated_at FROM "
                                "keap.contacts_history ORDER BY ALL"])
    assert again.exit_code == 0, again.output
    assert again.output == local
    # the door stays locked: nothing but the committed objects is readable
    refused = runner.invoke(app, [*query, "SELECT * FROM read_text('tvbucket://x/_commit.json')"])
    assert refused.exit_code == 2


def test_a_damaged_object_is_named_and_uploaded_again(backed_up):
    root, bucket = backed_up
    part = next(n for n in objects(bucket) if "keap/contacts" in n and n.endswith(".parquet"))
    obs.put(bucket.store, part, b"not the file any more")
    report = verify(root, read_data=True)
    assert [p.kind for p in report.problems] == ["replica_damaged"]
    fixed = runner.invoke(app, ["verify", "--repair", "--read-data"])
    assert fixed.exit_code == 0, fixed.output
    assert part not in objects(bucket)          # the damaged version was replaced whole


def test_a_crashed_upload_is_collected(backed_up):
    root, bucket = backed_up
    rel = str(sorted((root / CONTACTS).glob("snapshot_date=*"))[0].relative_to(root))
    stray = f"{rel}/_v-19990101T000000-deadbeef/part-00000.parquet"
    obs.put(bucket.store, stray, b"half an upload")   # last_modified now: inside the grace
    assert bucket.collect_garbage(rel, keep=bucket.commit_of(rel)["version"]) == 0
    from datetime import timedelta
    assert bucket.collect_garbage(rel, keep=bucket.commit_of(rel)["version"],
                                  grace=timedelta(seconds=-1)) == 1
    assert stray not in objects(bucket)
    assert verify(root, read_data=True).ok


def test_an_erased_person_and_a_pruned_partition_leave_the_bucket(backed_up):
    from datetime import date, timedelta

    from assets.recovery.retention import Policy, prune

    root, bucket = backed_up
    con = parquet.connect()
    email = con.execute(f"""SELECT min(lower(e)) FROM (SELECT unnest(emails) AS e FROM
        read_parquet('{parquet.duck_path(root / CONTACTS / '*' / '*.parquet')}'))""").fetchone()[0]
    before = set(objects(bucket))
    forget(root, email=email)
    after = set(objects(bucket))
    assert before - after, "the rewritten partitions' old versions are gone"
    assert verify(root, read_data=True).ok
    last = max(p.name.split("=")[1] for p in (root / CONTACTS).glob("snapshot_date=*"))
    report = prune(root, Policy(days=1, months=0, derived_days=1),
                   today=date.fromisoformat(last) + timedelta(days=40), apply=True)
    assert report.partitions_removed > 0
    kept = {str(p.relative_to(root)) for p in root.glob("*/*/snapshot_date=*")}
    assert set(bucket.partitions()) == kept
    assert verify(root, read_data=True).ok
    con.close()


def test_a_bucket_that_cannot_be_used_is_one_clear_error(backed_up, monkeypatch):
    root, _ = backed_up
    monkeypatch.setenv("TALENTVAULT_REPLICA_URL", "s3://no-such-bucket/x")
    out = runner.invoke(app, ["verify"])
    assert out.exit_code == 2
    assert "TALENTVAULT_REPLICA_URL=s3://no-such-bucket/x" in out.output
    assert "Traceback" not in out.output
    monkeypatch.setenv("TALENTVAULT_REPLICA_URL", "s3://replica/x")
    for name in ("AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")   # nothing listens there
    out = runner.invoke(app, ["verify"])
    assert out.exit_code == 2
    assert "TALENTVAULT_REPLICA_URL=s3://replica/x: the store is unreachable" in out.output


def test_a_primary_rebuilt_from_the_bucket_still_knows_whom_it_erased(backed_up, sandbox_world):
    """The disaster drill: the whole data root is lost after a `forget`; `verify --repair` on an
    empty root brings back the erasure list (and ledgers, audit) before the partitions, and the
    next backup of the same sandbox day does not take the person in again."""
    from orchestration.storage import suppression

    root, bucket = backed_up
    con = parquet.connect()
    contacts = parquet.duck_path(root / CONTACTS / "*" / "*.parquet")
    email = con.execute(f"""SELECT min(lower(e)) FROM (SELECT unnest(emails) AS e
        FROM read_parquet('{contacts}'))""").fetchone()[0]
    forget(root, email=email)
    suppressed = len(suppression.hashes(root))
    assert suppressed > 0
    before = contacts_sql()
    shutil.rmtree(root)
    parquet.check_root.cache_clear()   # a new process, as after a disaster
    fixed = runner.invoke(app, ["verify", "--repair", "--read-data"])
    assert fixed.exit_code == 0, fixed.output
    assert "restored from the replica bucket's records: state/suppression.parquet" in fixed.output
    assert len(suppression.hashes(root)) == suppressed
    assert contacts_sql() == before
    w = sandbox_world
    w.backup(w.day(), specs=CRM_SPECS, root=root, run_id="after-disaster")
    con = parquet.connect()
    hits = con.execute(f"""SELECT count(*) FROM read_parquet(
        '{parquet.duck_path(root / CONTACTS / '*' / '*.parquet')}')
        WHERE contains(lower(CAST(emails AS VARCHAR)) || lower(_raw), ?)""", [email]).fetchone()[0]
    assert hits == 0
    con.close()


def test_the_stores_server_side_encryption_settings_pass_through(backed_up, s3, monkeypatch):
    """On top of talentvault's own encryption: the store's SSE settings (here SSE-KMS) apply to
    every object the replica writes."""
    import boto3

    root, _ = backed_up
    monkeypatch.setenv("AWS_SERVER_SIDE_ENCRYPTION", "aws:kms")
    monkeypatch.setenv("AWS_SSE_KMS_KEY_ID", "alias/talentvault")
    bucket = Bucket("s3://replica/sse")
    folder = sorted((root / CONTACTS).glob("snapshot_date=*"))[0]
    rel = str(folder.relative_to(root))
    commit = bucket.put_partition(folder, rel)
    s3_client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1",
                             aws_access_key_id="test", aws_secret_access_key="test")
    for key in (f"sse/{rel}/_commit.json",
                f"sse/{rel}/_v-{commit['version']}/part-00000.parquet"):
        head = s3_client.head_object(Bucket="replica", Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == \
            ("aws:kms", "alias/talentvault")


def test_after_a_key_rotation_the_bucket_holds_everything_under_the_new_key(backed_up,
                                                                            monkeypatch):
    import json

    root, bucket = backed_up
    assert verify(root).ok                                  # pushes the root's records
    old, new = os.environ[parquet.KEY_ENV], base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv(parquet.OLD_KEY_ENV, old)
    monkeypatch.setenv(parquet.KEY_ENV, new)
    parquet.check_root.cache_clear()
    rotated = runner.invoke(app, ["encryption", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    monkeypatch.delenv(parquet.OLD_KEY_ENV)
    parquet.check_root.cache_clear()
    new_id = parquet.parse_key(new).key_id
    index = json.loads(bytes(obs.get(bucket.store, "_state/_index.json").bytes()))
    assert index and {e["key_id"] for e in index.values()} == {new_id}
    assert verify(root, read_data=True).ok                  # every pointer names the new files
    before = contacts_sql()
    shutil.rmtree(root)
    parquet.check_root.cache_clear()
    fixed = runner.invoke(app, ["verify", "--repair", "--read-data"])
    assert fixed.exit_code == 0, fixed.output
    assert contacts_sql() == before


def test_a_backup_while_the_bucket_is_down_fails_clearly_and_is_caught_up(backed_up,
                                                                          sandbox_world, s3,
                                                                          monkeypatch):
    """The store is unreachable during a backup: the run fails naming the setting, the
    partition is whole locally, the bucket shows nothing of it (no pointer names a half
    upload); once the store is back, verify names the gap and --repair uploads it."""
    from orchestration.storage.bucket import BucketError

    root, bucket = backed_up
    w = sandbox_world
    w.tick(1)
    for name in ("AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with pytest.raises(BucketError, match="TALENTVAULT_REPLICA_URL=.*the store is unreachable"):
        w.backup(w.day(), specs=CRM_SPECS[:1], root=root)
    for k, v in s3_env(s3).items():
        monkeypatch.setenv(k, v)
    rel = f"{CRM_SPECS[0].schema.source}/{CRM_SPECS[0].schema.entity}/snapshot_date={w.day()}"
    assert (root / rel / "_manifest.json").exists()      # landed whole on the primary
    assert rel not in bucket.partitions()                # no pointer: nothing visible there
    report = verify(root)
    assert [(p.path, p.kind) for p in report.problems] == [(f"replica:{rel}", "replica_missing")]
    fixed = runner.invoke(app, ["verify", "--repair", "--read-data"])
    assert fixed.exit_code == 0, fixed.output
    assert f"copied to the replica: {rel}" in fixed.output
