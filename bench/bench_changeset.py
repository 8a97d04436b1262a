"""Benchmark: the Keap changeset for 1,000,000 profiles against 1,000,000 Keap contacts.

    uv run python bench/bench_changeset.py --profiles 1000000 --contacts 1000000

Writes the changeset's inputs straight to Parquet with DuckDB, in the layouts the assets read
(not through the sandbox and the upstream assets: that would measure them, not the diff):

- `keap/contacts` (one full backup partition, `_raw` JSON with email/phone arrays, custom
  fields and tag ids, as Keap v2 returns them) + `_manifest.json` with `extracted_at`;
  `keap/tags`, `keap/custom_fields` (small, full);
- `identity/keap_contacts` (normalized emails and phones per contact);
- `sync/keap_desired` (fields map, tags) + manifest (`managed_tags`, `conflict`, ...);
- a ledger with `--ledger` succeeded writes made after the backup (an earlier push of the same
  day), whose changeset rows are laid over the backup.

The mix: `--matched` of the profiles have a contact holding their email (1 % of those emails
on two contacts: Keap duplicates); the rest are new. Of the matched: 5 % a changed name, 10 %
a changed stage custom field, 3 % a new phone (merged into the phone array), 2 % a
human-edited keap_wins job title; tags: each profile 2-3 managed tags, 10 % of contacts
carry a stale one (a remove and an add) plus a human's tag. The remaining contacts are people
not in the ATS.

Then it runs `build_changeset` exactly as the asset does, in a fresh process, and prints wall
time per phase, CPU time and peak RSS (ru_maxrss of that process) as JSON and a markdown row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DAY = "2026-01-04"
DAY2 = "2026-01-05"
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MANAGED = ["Candidate", "Active Applicant", "Past Applicant", "Stage: Screen", "Stage: Onsite",
           "Stage: Offer", "Hired", "Rejected"]
STAGES = ["Application Review", "Screen", "Onsite", "Offer", "Hired"]


def _u(key: str, col: str = "i") -> str:
    """SQL: a deterministic pseudo-random number in [0, 1) for the row."""
    return f"((hash({col}, '{key}') % 1000000)::DOUBLE / 1000000)"


def _manifest(con, folder: Path, extra: dict) -> None:
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchone()[0]
    (folder / "_manifest.json").write_text(json.dumps({"rows": rows, **extra}, indent=2))


def generate(root: Path, profiles: int, contacts: int, matched: float, ledger: int) -> dict:
    import duckdb

    from orchestration.storage.derived import write_partition

    started = time.perf_counter()
    con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB",
                                 "temp_directory": str(root / ".gen-spill")})
    con.execute("SET TimeZone = 'UTC'")
    n_match = int(profiles * matched)
    # contact i (1..contacts): the first n_match hold profile i's email; 1 % of those emails
    # also sit on an extra, newer contact (ids above n_match), the rest are other people
    con.execute(f"""
        CREATE TABLE c AS
        SELECT i, (1000 + i)::VARCHAR AS id,
               CASE WHEN i <= {n_match} THEN 'p' || i || '@example.com'
                    WHEN i <= {n_match} + {n_match // 100} THEN
                        'p' || (i - {n_match}) * 97 % {n_match} + 1 || '@example.com'
                    ELSE 'k' || i || '@example.org' END AS email,
               '+1415' || lpad((i % 10000000)::VARCHAR, 7, '0') AS phone,
               {_u('stale')} < 0.10 AS stale, {_u('jt')} < 0.02 AS human_title
        FROM range(1, {contacts} + 1) t(i)
    """)
    kdir = root / "keap" / "contacts" / f"snapshot_date={DAY}"
    kdir.mkdir(parents=True)
    extracted = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    con.execute(f"""
        COPY (SELECT id, 'Ann' AS given_name, 'Lee' || i AS family_name,
                     TIMESTAMPTZ '2026-01-03 10:00:00+00' AS update_time,
                     to_json({{
                        'id': id, 'given_name': 'Ann', 'family_name': 'Lee' || i,
                        'job_title': CASE WHEN human_title THEN 'Head of Things'
                                          ELSE 'Engineer' END,
                        'email_addresses': [{{'email': upper(email), 'field': 'EMAIL1'}}],
                        'phone_numbers': [{{'number': phone, 'field': 'PHONE1',
                                            'type': 'Mobile'}}],
                        'custom_fields': [{{'id': '7', 'content': 'Screen'}},
                                          {{'id': '9', 'content': 'human'}}],
                        'tag_ids': CASE WHEN stale THEN ['101', '102', '999']
                                        ELSE ['101', '102'] END,
                        'update_time': '2026-01-03T10:00:00Z'}})::VARCHAR AS _raw,
                     TIMESTAMPTZ '2026-01-03 10:00:00+00' AS _source_updated_at,
                     TIMESTAMPTZ '{extracted.isoformat()}' AS _extracted_at,
                     'upsert' AS _op, 'bench' AS _run_id
              FROM c ORDER BY id)
        TO '{kdir}/part-00000.parquet' (FORMAT parquet, COMPRESSION zstd)
    """)
    _manifest(con, kdir, {"extracted_at": extracted.isoformat(), "mode": "full"})
    for entity, sql in (
        ("tags", "SELECT * FROM (VALUES ('101', 'Candidate'), ('102', 'Active Applicant'), "
                 "('103', 'Stage: Screen'), ('104', 'Stage: Onsite'), ('999', 'VIP')) t(id, name)"),
        ("custom_fields", "SELECT * FROM (VALUES ('7', 'Last Stage', 'TEXT'), "
                          "('9', 'Notes', 'TEXT')) t(id, label, field_type)")):
        d = root / "keap" / entity / f"snapshot_date={DAY}"
        d.mkdir(parents=True)
        con.execute(f"""
            COPY (SELECT *, '{{}}' AS _raw,
                         TIMESTAMPTZ '2026-01-01 00:00:00+00' AS _source_updated_at,
                         TIMESTAMPTZ '{extracted.isoformat()}' AS _extracted_at,
                         'upsert' AS _op, 'bench' AS _run_id FROM ({sql}))
            TO '{d}/part-00000.parquet' (FORMAT parquet)""")
        _manifest(con, d, {"extracted_at": extracted.isoformat(), "mode": "full"})
    write_partition(con, root, "keap_contacts", DAY, """
        SELECT id AS contact_id, email, [email] AS emails, 0 AS invalid_emails, phone,
               [phone] AS phones, 'Ann' AS given_name, 'Lee' || i AS family_name,
               NULL::VARCHAR AS name_key, TIMESTAMPTZ '2026-01-03 10:00:00+00' AS update_time
        FROM c""", "contact_id", run_id="bench")
    con.execute(f"""
        CREATE TABLE p AS
        SELECT i AS profile_id, 'p' || i || '@example.com' AS email,
               {_u('name')} < 0.05 AS new_name, {_u('stage')} < 0.10 AS new_stage,
               {_u('phone')} < 0.03 AS new_phone, coalesce(i <= {n_match} AND c.stale, FALSE)
                   AS stale
        FROM range(1, {profiles} + 1) t(i) LEFT JOIN c USING (i)
    """)
    write_partition(con, root, "keap_desired", DAY, """
        SELECT *, hash(email, emails, fields, tags) AS row_hash FROM (
        SELECT profile_id, email, [email] AS emails,
               MAP(['email', 'given_name', 'family_name', 'job_title', 'phone',
                    'custom:Last Stage'],
                   [email, CASE WHEN new_name THEN 'Anna' ELSE 'Ann' END,
                    'Lee' || profile_id, 'Engineer',
                    CASE WHEN new_phone THEN '+1628' || lpad(profile_id::VARCHAR, 7, '0')
                         ELSE '+1415' || lpad((profile_id % 10000000)::VARCHAR, 7, '0') END,
                    CASE WHEN new_stage THEN 'Onsite' ELSE 'Screen' END]) AS fields,
               CASE WHEN stale THEN ['Candidate', 'Stage: Onsite']
                    ELSE ['Active Applicant', 'Candidate'] END AS tags,
               ['stage_change'] AS events
        FROM p)""", "profile_id", run_id="bench", source="sync", extra={
        "mapping_fingerprint": "bench", "managed_tags": sorted(MANAGED),
        "tag_categories": {t: None for t in MANAGED},
        "custom_fields": {"Last Stage": {"field_type": "TEXT", "on_missing": "create"}},
        "conflict": {"job_title": "keap_wins"}})
    counts = {"profiles": profiles, "contacts": contacts, "matched": n_match}
    if ledger:
        counts["ledger"] = _ledger(con, root, min(ledger, n_match))
    con.close()
    shutil.rmtree(root / ".gen-spill", ignore_errors=True)
    counts["generate_seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _ledger(con, root: Path, n: int) -> int:
    """An earlier push of the day: `n` succeeded job-title updates after the backup (their
    changeset rows in the day's partition, their ledger lines compacted to Parquet)."""
    cs = root / "sync" / "keap_changeset" / f"snapshot_date={DAY}"
    cs.mkdir(parents=True)
    con.execute(f"""
        CREATE TABLE prior AS
        SELECT md5('bench' || i) AS change_id, 'update' AS action, i::BIGINT AS profile_id,
               (1000 + i)::VARCHAR AS contact_id, 'p' || i || '@example.com' AS match_email,
               ['job_title'] AS fields, '{{"job_title":"Engineer"}}' AS body,
               ['job_title'] AS update_mask, NULL::VARCHAR AS tag, NULL::VARCHAR AS tag_id,
               NULL::VARCHAR AS depends_on, NULL::VARCHAR AS conflict,
               MAP(['job_title'], ['Engineer']) AS field_values
        FROM range(1, {n} + 1) t(i)""")
    con.execute(f"COPY prior TO '{cs}/part-00000.parquet' (FORMAT parquet)")
    (cs / "_manifest.json").write_text(json.dumps({"rows": n}))
    led = root / "sync" / "ledger" / "run_id=bench-push"
    led.mkdir(parents=True)
    con.execute(f"""
        COPY (SELECT change_id, DATE '{DAY}' AS changeset_date, profile_id, contact_id, action,
                     fields, tag, tag_id, 'succeeded' AS status, 200::INTEGER AS http_status,
                     NULL::VARCHAR AS error, 1::INTEGER AS attempt, 'bench-push' AS run_id,
                     TIMESTAMPTZ '2026-01-05 02:00:00+00' AS "at",
                     TIMESTAMPTZ '2026-01-05 02:00:00+00' AS keap_update_time FROM prior)
        TO '{led}/part-00000.parquet' (FORMAT parquet)""")
    return n


def day_after(root: Path, profiles: int, contacts: int, change: float) -> dict:
    """Day DAY2 after the base day: `change` of the contacts got a new version in Keap (a new
    family name: an incremental backup partition), `change` of the profiles a new stage in the
    desired state; tags and custom fields unchanged; identity re-derived. The base day's
    changeset (built before this runs) is the incremental build's base."""
    import duckdb

    from orchestration.storage.derived import write_partition

    con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB"})
    con.execute("SET TimeZone = 'UTC'")
    extracted = datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
    kdir = root / "keap" / "contacts" / f"snapshot_date={DAY2}"
    kdir.mkdir(parents=True)
    base = root / "keap" / "contacts" / f"snapshot_date={DAY}"
    con.execute(f"""
        COPY (SELECT id, given_name, family_name || '-b' AS family_name,
                     TIMESTAMPTZ '2026-01-05 12:00:00+00' AS update_time,
                     json_merge_patch(_raw, '{{"family_name": "' || family_name || '-b", '
                                      || '"update_time": "2026-01-05T12:00:00Z"}}')::VARCHAR
                         AS _raw,
                     TIMESTAMPTZ '2026-01-05 12:00:00+00' AS _source_updated_at,
                     TIMESTAMPTZ '{extracted.isoformat()}' AS _extracted_at,
                     'upsert' AS _op, 'bench-2' AS _run_id
              FROM read_parquet('{base}/*.parquet')
              WHERE {_u('day2', 'id')} < {change} ORDER BY id)
        TO '{kdir}/part-00000.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    _manifest(con, kdir, {"extracted_at": extracted.isoformat(), "mode": "incremental",
                          "content_fingerprint": "day2"})
    for entity in ("tags", "custom_fields"):
        shutil.copytree(root / "keap" / entity / f"snapshot_date={DAY}",
                        root / "keap" / entity / f"snapshot_date={DAY2}")
    ident = root / "identity" / "keap_contacts" / f"snapshot_date={DAY}"
    write_partition(con, root, "keap_contacts", DAY2, f"""
        SELECT * REPLACE (CASE WHEN {_u('day2', 'contact_id')} < {change}
                               THEN family_name || '-b' ELSE family_name END AS family_name)
        FROM read_parquet('{ident}/*.parquet')""", "contact_id", run_id="bench-2")
    desired = root / "sync" / "keap_desired" / f"snapshot_date={DAY}"
    extra = json.loads((desired / "_manifest.json").read_text())
    extra = {k: extra[k] for k in ("mapping_fingerprint", "managed_tags", "tag_categories",
                                   "custom_fields", "conflict")}
    write_partition(con, root, "keap_desired", DAY2, f"""
        SELECT * REPLACE (hash(email, emails, fields, tags) AS row_hash) FROM (
        SELECT * REPLACE (CASE WHEN {_u('day2p', 'profile_id')} < {change}
                               THEN map_concat(fields, MAP(['custom:Last Stage'], ['Offer']))
                               ELSE fields END AS fields)
        FROM read_parquet('{desired}/*.parquet'))""", "profile_id", run_id="bench-2",
                    source="sync", extra=extra)
    con.close()
    return {"keap_versions": change, "desired_changed": change}


def run(root: Path, memory_limit: str, day: str = "") -> dict:
    from assets.sync.changeset import build_changeset

    started = time.perf_counter()
    b = build_changeset(root, day or DAY, "bench-changeset", memory_limit=memory_limit)
    try:
        out = {"seconds": round(time.perf_counter() - started, 1), "phases": b.timings,
               "counts": b.manifest["counts"], "rows": b.manifest["rows"],
               "ledger_writes_overlaid": b.counts["ledger_writes_overlaid"],
               "build": b.manifest.get("build"),
               "dirty": {k: b.counts.get(k) for k in (
                   "profiles_changed", "contacts_changed", "profiles_dirty",
                   "profiles_computed", "contacts_read")}}
    finally:
        b.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    out["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    return out


def child(root: Path, memory_limit: str, day: str = DAY, mode: str = "auto") -> dict:
    """One build in a fresh process (its own peak RSS and CPU)."""
    proc = subprocess.run([sys.executable, __file__, "--run-only", "--dir", str(root),
                           "--memory-limit", memory_limit, "--day", day],
                          capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO),
                               "TALENTVAULT_CHANGESET": mode})
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--matched", type=float, default=0.9)
    ap.add_argument("--ledger", type=int, default=50_000)
    ap.add_argument("--memory-limit", default="1500MB")
    ap.add_argument("--dir", type=Path, default=None, help="Data root (default: a temp dir).")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--day-after", type=float, default=0.0, metavar="CHANGE",
                    help="then a next day with this share changed (e.g. 0.01), built in full "
                    "and incrementally on copies of the root, side by side")
    ap.add_argument("--run-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--day", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_only:
        print(json.dumps(run(args.dir, args.memory_limit, args.day)))
        return
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-changeset-"))
    try:
        gen = generate(root, args.profiles, args.contacts, args.matched, args.ledger)
        print(f"generated: {gen}", file=sys.stderr)
        res = child(root, args.memory_limit)
        res.update(generated=gen, machine=f"{platform.machine()}, {os.cpu_count()} cores, "
                   "shared with other workers", memory_limit=args.memory_limit)
        print(json.dumps(res, indent=2))
        c = res["counts"]
        print(f"| changeset | {args.profiles:,} profiles vs {args.contacts:,} contacts | "
              f"{res['seconds']} s | {res['cpu_seconds']} s CPU | {res['peak_rss_mb']} MB | "
              f"{c['create']:,} creates, {c['update']:,} updates, {c['tag_add']:,} tag adds, "
              f"{c['tag_remove']:,} tag removes |")
        if args.day_after:
            after = day_after(root, args.profiles, args.contacts, args.day_after)
            print(f"day after: {after}", file=sys.stderr)
            sides = {}
            for mode in ("full", "auto"):
                copy = root.parent / f"{root.name}-{mode}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(root, copy)
                try:
                    sides[mode] = child(copy, args.memory_limit, DAY2, mode)
                finally:
                    shutil.rmtree(copy, ignore_errors=True)
            print(json.dumps(sides, indent=2))
            for mode, r in sides.items():
                c = r["counts"]
                print(f"| day after ({args.day_after:.0%} changed), {mode} | {r['seconds']} s "
                      f"| {r['cpu_seconds']} s CPU | {r['peak_rss_mb']} MB | {r['build']} | "
                      f"dirty {r['dirty']} | {c['create']:,} creates, {c['update']:,} updates, "
                      f"{c['tag_add']:,} tag adds, {c['tag_remove']:,} tag removes |")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
