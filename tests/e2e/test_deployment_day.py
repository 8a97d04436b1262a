"""Three days of the production setup, end to end: the Dagster instance on a real Postgres server
(deploy/dagster.postgres.yaml: runs, event logs, schedules) with step logs in an S3-protocol
store, the storage root itself in a bucket of that server (TALENTVAULT_DATA_DIR=s3://...),
encryption at rest on, the replica in a second bucket. Each night the schedule's run backs up the
day and the automation takes it to the Keap push (Keap ends as the mapping implies); then a
restore preview/apply, a `forget`, and `verify --read-data` over both buckets. Then the primary
bucket's copy of a partition is deleted and a new machine (empty cache) runs verify: named,
`--repair` brings it back from the replica, SQL answers as before. A raw-byte scan of the cache
and of every object in both buckets finds no address of a backed-up person, and after `forget`
not that person's, decoded Parquet included.

Slow (about 3 minutes): `uv run pytest -m slow tests/e2e/test_deployment_day.py`; results in
docs/deploy.md."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import dagster as dg
import obstore as obs
import psycopg2
import pytest
import yaml
from typer.testing import CliRunner

from assets.sync.mapping import DEFAULT_PATH, load_mapping
from orchestration.cli import app
from orchestration.config import configured_root
from orchestration.in_process import Automation
from orchestration.storage import hydrate, parquet, primary
from orchestration.storage.bucket import Bucket
from tests.e2e.conftest import served_world
from tests.e2e.keap_state import field_labels, keap_docs, mismatches, tag_names
from tests.e2e.sync_expected import expected_contacts
from tests.e2e.test_runs_by_itself import fast_vendors
from tests.instance_support import REPO
from tests.s3_server import s3_env, s3_server

pytestmark = pytest.mark.slow
runner = CliRunner()


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z.]{2,}")


def all_emails(store) -> set[str]:
    """Every address of a person in the sandbox's vendors (candidates and contacts)."""
    out: set[str] = set()
    for source, entity in (("greenhouse", "candidates"), ("keap", "contacts"),
                           ("highlevel", "contacts")):
        for doc in store.iter_docs(source, entity):
            out.update(e.lower() for e in EMAIL.findall(json.dumps(doc)))
    return out


def holding(blobs: dict[str, bytes], needles: set[str]) -> list[str]:
    return sorted(name for name, raw in blobs.items()
                  if any(n.encode() in raw.lower() for n in needles))


def root_blobs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def bucket_blobs(bucket: Bucket) -> dict[str, bytes]:
    names = [m["path"] for batch in obs.list(bucket.store) for m in batch]
    return {n: bytes(obs.get(bucket.store, n).bytes()) for n in names}


def test_three_days_on_postgres_with_the_root_in_a_bucket_encrypted_and_replicated(
        tmp_path, monkeypatch):
    pgserver = pytest.importorskip("pgserver")
    from orchestration.definitions import defs

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE dagster;")
    socket_dir = server.get_uri().split("host=")[1]
    with s3_server("compute-logs", "primary", "replica") as s3, \
            served_world(tmp_path / "world", candidates=25, seed=11) as w:
        for k, v in {**s3_env(s3), "DAGSTER_COMPUTE_LOGS_BUCKET": "compute-logs",
                     "DAGSTER_PG_URL": f"postgresql+psycopg2://postgres@/dagster?host={socket_dir}",
                     "TALENTVAULT_REPLICA_URL": "s3://replica/talentvault",
                     parquet.KEY_ENV: base64.b64encode(os.urandom(32)).decode()}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("TALENTVAULT_DATA_DIR", "s3://primary/talentvault")
        monkeypatch.setenv(primary.CACHE_ENV, str(tmp_path / "cache"))
        parquet.check_root.cache_clear()
        root = configured_root()
        home = tmp_path / "home"
        home.mkdir()
        config = yaml.safe_load((REPO / "deploy" / "dagster.postgres.yaml").read_text())
        config["compute_logs"]["config"]["allow_http"] = True   # the test's plain-http S3
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        mapping = load_mapping(DEFAULT_PATH)
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            automation = Automation(fast_vendors(defs, w), instance)
            automation.tick(w.store.now())
            days = []
            for i in range(3):
                if i:
                    w.tick(1)
                day, before = w.day().isoformat(), keap_docs(w.store)
                assert automation.nightly(day).success, day
                runs = automation.settle(w.store.now())
                assert runs and all(r.success for r in runs), day
                wrong, _ = mismatches(expected_contacts(w.store, mapping), before,
                                      keap_docs(w.store), tag_names(w.store),
                                      field_labels(w.store))
                assert wrong == [], (day, wrong[:5])
                days.append(day)
            run_ids = {r.run_id for r in instance.get_runs()}

        # the run history is in Postgres, nothing of it on the local disk
        con = psycopg2.connect(host=socket_dir, user="postgres", dbname="dagster")
        cur = con.cursor()
        cur.execute("SELECT run_id, status FROM runs")
        stored = dict(cur.fetchall())
        con.close()
        assert set(stored) == run_ids and set(stored.values()) == {"SUCCESS"}
        assert not list(home.rglob("*.db"))

        # a restore preview and apply (Keap as of the end of day 2), a forget, verify both copies
        preview = runner.invoke(app, ["restore", "preview", "--source", "keap", "--as-of",
                                      f"{days[1]}T23:59:59Z"])
        assert preview.exit_code == 0, preview.output
        plan = preview.output.strip().splitlines()[-1].split()[-1]
        applied = runner.invoke(app, ["restore", "apply", plan])
        assert applied.exit_code == 0, applied.output

        emails = all_emails(w.store)
        assert len(emails) > 20
        con = parquet.connect()
        person = con.execute(f"""SELECT min(lower(e)) FROM (SELECT unnest(emails) AS e FROM
            read_parquet('{parquet.duck_path(root / 'keap' / 'contacts' / '*' / '*.parquet')}'))
            """).fetchone()[0]
        con.close()
        forgot = runner.invoke(app, ["forget", "--email", person])
        assert forgot.exit_code == 0, forgot.output
        verified = runner.invoke(app, ["verify", "--read-data"])
        assert verified.exit_code == 0, verified.output
        assert "replica s3://replica/talentvault" in verified.output
        assert "primary bucket s3://primary/talentvault" in verified.output

        # no address in clear anywhere: the cache (the sandbox lives outside it) and both
        # buckets; and the forgotten person not even decoded
        bucket, main = Bucket("s3://replica/talentvault"), Bucket("s3://primary/talentvault")
        assert holding(root_blobs(root), emails) == []
        assert holding(bucket_blobs(bucket), emails) == []
        assert holding(bucket_blobs(main), emails) == []

        # the primary bucket loses a partition, and a new machine (empty cache) runs verify
        query = ["sql", "--format", "csv", "SELECT id, _op, _source_updated_at FROM "
                 "keap.contacts_history ORDER BY ALL"]
        before = runner.invoke(app, query)
        assert before.exit_code == 0, before.output
        rel = max(r for r in main.partitions() if r.startswith("keap/contacts/"))
        obs.delete(main.store, [n for n in bucket_blobs(main) if n.startswith(f"{rel}/")])
        monkeypatch.setenv(primary.CACHE_ENV, str(tmp_path / "cache-2"))
        hydrate._hydrated.clear()
        parquet.check_root.cache_clear()
        named = runner.invoke(app, ["verify"])
        assert named.exit_code == 1 and rel in named.output, named.output
        fixed = runner.invoke(app, ["verify", "--repair", "--read-data"])
        assert fixed.exit_code == 0, fixed.output
        assert f"committed to the primary bucket: {rel}" in fixed.output
        after = runner.invoke(app, query)
        assert after.exit_code == 0 and after.output == before.output
        out = runner.invoke(app, ["sql", "--from-replica", "--format", "csv",
                                  "SELECT count(*) AS n FROM keap.contacts_history WHERE "
                                  f"contains(lower(_raw), '{person}')"])
        assert out.exit_code == 0, out.output
        assert out.output.strip().splitlines()[-1] == "0"
