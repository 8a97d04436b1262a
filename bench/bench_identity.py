"""Benchmark: candidate profiles + quarantine + their checks at 1,000,000 candidates.

    uv run python bench/bench_identity.py --candidates 1000000 --applications 3000000

Writes synthetic snapshot partitions straight to Parquet with DuckDB (not through the sandbox:
generating and serving a million-candidate world over HTTP would measure the sandbox, not the
identity step), in exactly the backups' schema (`EntitySchema.arrow_schema()`, `_raw` JSON
included), one full partition per entity: Greenhouse candidates and applications and Keap
contacts. The data carries the sandbox's documented messiness at its fractions (duplicates
differing in case/spacing, no or invalid emails, second emails, every phone format, accented /
NFD / fullwidth / CJK names, shouted and padded names); phone numbers are random (mostly
distinct) to price the normalizer at its worst.

Then it runs the identity step exactly as the Dagster asset does (`build_identity` +
`evaluate_profile_checks`) in a fresh process, and prints wall time per phase, GX's share
(import and validation), CPU time and peak RSS (ru_maxrss) as JSON and as a markdown row.

    uv run python bench/bench_identity.py --candidates 1000000 --applications 1500000 \
        --keap-contacts 600000 --day-after 0.01

builds that day (the base), lands the next day's incremental partitions with that fraction of
the records changed (`day_after`), and builds the next day twice, each in a fresh process: in
full on a copy of the data root (TALENTVAULT_IDENTITY=full) and incrementally on the root. It
fails unless both wrote the same rows (the outputs' content fingerprints).
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
from pathlib import Path

DAY = "2026-01-04"
NEXT = "2026-01-05"
BATCH = 200_000
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _lit(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _pick(values: list[str], key: str, col: str = "i") -> str:
    """SQL: a deterministic pseudo-random element of `values` for the row (hash of `key`)."""
    values = [v for v in values if v]
    return f"{_lit(values)}[1 + (hash({col}, '{key}') % {len(values)})::INT]"


def _u(key: str, col: str = "i") -> str:
    """SQL: a deterministic pseudo-random number in [0, 1) for the row."""
    return f"((hash({col}, '{key}') % 1000000)::DOUBLE / 1000000)"


def candidates_sql(n: int) -> str:
    from sandbox.world import people as wp

    first = wp.FIRST_NAMES
    last = wp.LAST_NAMES
    accented_f = [f for f, _ in wp.ACCENTED_FIRST]
    accented_l = [la for la, _ in wp.ACCENTED_LAST]
    cjk_f = [f for (f, _), _ in wp.CJK_NAMES]
    cjk_l = [la for _, (la, _) in wp.CJK_NAMES]
    nfkc_f = [f for f, _ in wp.NFKC_FIRST]
    domains = wp.EMAIL_DOMAINS
    work = wp.WORK_DOMAINS
    # p: the person behind record i (3 % of records re-enter an earlier person)
    return f"""
    WITH base AS (
        SELECT i, CASE WHEN {_u('dup')} < 0.03 AND i > 1000
                       THEN i - 1 - (hash(i, 'back') % 1000)::BIGINT ELSE i END AS p
        FROM range({n}) t(i)
    ),
    person AS (
        SELECT i, p, {_u('name', 'p')} AS ns, {_u('mail', 'p')} AS ms,
               {_u('case')} AS cs, {_u('phone', 'p')} AS ps,
               {_u('fmt', 'p')} AS fs, {_u('pad')} AS pads
        FROM base
    ),
    named AS (
        SELECT *,
            CASE WHEN ns < 0.80 THEN {_pick(first, 'f', 'p')}
                 WHEN ns < 0.90 THEN {_pick(accented_f, 'f', 'p')}
                 WHEN ns < 0.94 THEN {_pick(cjk_f, 'f', 'p')}
                 WHEN ns < 0.96 THEN 'محمد'
                 WHEN ns < 0.98 THEN nfd_first
                 ELSE {_pick(nfkc_f, 'f', 'p')} END AS first_raw,
            CASE WHEN ns < 0.80 THEN {_pick(last, 'l', 'p')}
                 WHEN ns < 0.90 THEN {_pick(accented_l, 'l', 'p')}
                 WHEN ns < 0.94 THEN {_pick(cjk_l, 'l', 'p')}
                 WHEN ns < 0.96 THEN 'حداد'
                 ELSE {_pick(last, 'l', 'p')} END AS last_raw,
            'user' || p::VARCHAR || '.' || (hash(p, 'x') % 97)::VARCHAR AS local,
            {_pick(domains, 'd', 'p')} AS domain,
            {_pick(work, 'w', 'p')} AS work_domain,
            (200 + hash(p, 'a') % 800)::VARCHAR AS area,
            (200 + hash(p, 'e') % 800)::VARCHAR AS exch,
            lpad((hash(p, 'n') % 10000)::VARCHAR, 4, '0') AS line
        FROM (SELECT *, 'Jose' || chr(769) AS nfd_first FROM person)
    ),
    typed AS (
        SELECT *,
            CASE WHEN pads < 0.03 THEN ' ' || first_raw || '  '
                 WHEN pads < 0.04 THEN upper(first_raw) ELSE first_raw END AS first_name,
            CASE WHEN pads < 0.03 THEN last_raw || ' '
                 WHEN pads < 0.04 THEN upper(last_raw) ELSE last_raw END AS last_name,
            CASE WHEN ms < 0.04 THEN NULL
                 WHEN ms < 0.06 THEN [local || '@' || domain || ' x', local || '@@' || domain,
                                      local || '@' || split_part(domain, '.', 1),
                                      local || '@' || replace(domain, '.', '..'),
                                      local || '@'][1 + (hash(p, 'inv') % 5)::INT]
                 WHEN p <> i THEN [upper(local || '@' || domain), ' ' || local || '@' || domain,
                                   local || '@' || domain || '  '][1 + (hash(i, 'v') % 3)::INT]
                 WHEN cs < 0.10 THEN upper(local[1]) || local[2:] || '@' || upper(domain[1])
                                     || domain[2:]
                 WHEN cs < 0.12 THEN '  ' || local || '@' || domain
                 ELSE local || '@' || domain END AS email,
            CASE WHEN ms >= 0.06 AND ms < 0.16 THEN 'w' || p::VARCHAR || '@' || work_domain
                 END AS work_email,
            CASE WHEN fs < 0.16 THEN '+1 (' || area || ') ' || exch || '-' || line
                 WHEN fs < 0.28 THEN area || '.' || exch || '.' || line
                 WHEN fs < 0.40 THEN '(' || area || ') ' || exch || '-' || line
                 WHEN fs < 0.52 THEN area || '-' || exch || '-' || line
                 WHEN fs < 0.60 THEN area || exch || line
                 WHEN fs < 0.70 THEN '+1' || area || exch || line
                 WHEN fs < 0.74 THEN '1-' || area || '-' || exch || '-' || line
                 WHEN fs < 0.78 THEN '(' || area || ') ' || exch || '-' || line || ' x'
                                     || (hash(p, 'x') % 999)::VARCHAR
                 WHEN fs < 0.80 THEN '1-' || area || '-' || exch || '-HIRE'
                 WHEN fs < 0.84 THEN '0044 20 7946 ' || line
                 WHEN fs < 0.88 THEN '+44 20 7946 ' || line
                 WHEN fs < 0.93 THEN '07700 9' || lpad((hash(p, 'm') % 100000)::VARCHAR, 5, '0')
                 WHEN fs < 0.96 THEN '+33 1 ' || exch[1:2] || ' ' || line[1:2] || ' '
                                     || line[3:4] || ' ' || area[1:2]
                 WHEN fs < 0.98 THEN '04' || line || ' ' || exch
                 ELSE ['n/a', 'call me', '000'][1 + (hash(p, 'j') % 3)::INT] END AS phone,
            TIMESTAMPTZ '2025-10-06 00:00:00+00'
                + to_milliseconds((hash(i, 'c') % 7603200000)::BIGINT) AS created
        FROM named
    )
    SELECT 10000001 + i AS id, created AS created_at,
           created + to_milliseconds((hash(i, 'u') % 86400000::BIGINT)::BIGINT) AS updated_at,
           first_name, last_name, NULL::VARCHAR AS preferred_name,
           {_pick(wp.COMPANIES, 'co')} AS company, {_pick(wp.TITLES, 'ti')} AS title,
           created + to_milliseconds((hash(i, 'u') % 86400000::BIGINT)::BIGINT) AS last_activity_at,
           false AS private, true AS can_email,
           nullif(trim(email), '') AS primary_email,
           list_filter([email, work_email], lambda x: x IS NOT NULL) AS emails,
           CASE WHEN ps < 0.15 THEN [] WHEN ps < 0.23
                THEN [phone, '+1 415 555 01' || lpad((hash(p, 'q') % 100)::VARCHAR, 2, '0')]
                ELSE [phone] END AS phones,
           [{_pick(wp.CANDIDATE_TAGS, 'tag')}] AS tags
    FROM typed
    """


def candidates_raw_sql(inner: str) -> str:
    """Add the record's JSON as Harvest v3 returns it (`_raw`) and the snapshot metadata."""
    return f"""
    SELECT *, to_json({{
        'id': id, 'created_at': strftime(created_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z',
        'updated_at': strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z',
        'first_name': first_name, 'last_name': last_name, 'preferred_name': NULL,
        'company': company, 'title': title,
        'last_activity_at': strftime(last_activity_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z',
        'private': false, 'can_email': true,
        'time_zone': 'Eastern Time (US & Canada)', 'tags': tags, 'linked_user_ids': [],
        'phone_numbers': list_transform(phones, lambda x: {{'value': x, 'type': 'mobile'}}),
        'addresses': [{{'value': '438 Sunset Blvd, Toronto, ON M5H 2N2', 'type': 'home'}}],
        'email_addresses': list_transform(emails, lambda x: {{'value': x, 'type': 'personal'}}),
        'website_addresses': [], 'social_media_addresses': [],
        'custom_fields': {{'candidate_status': {{'name': 'Candidate Status',
                                                'type': 'short_text', 'value': NULL}}}}
    }})::VARCHAR AS _raw, updated_at AS _source_updated_at, now() AS _extracted_at,
    'upsert' AS _op, 'bench' AS _run_id
    FROM ({inner})
    """


def applications_sql(n: int, candidates: int) -> str:
    statuses = ["in_process"] * 5 + ["rejected"] * 4 + ["hired", "converted"]
    stages = ["Application Review", "Recruiter Screen", "Phone Interview", "Onsite",
              "On-site", "Reference Check", "Offer"]
    return f"""
    WITH a AS (
        SELECT i, 10000001 + (hash(i, 'cand') % {candidates})::BIGINT AS candidate_id,
               {_pick(statuses, 'st')} AS status,
               TIMESTAMPTZ '2025-10-06 00:00:00+00'
                   + to_milliseconds((hash(i, 'c') % 7603200000)::BIGINT) AS created_at
        FROM range({n}) t(i)
    )
    SELECT 50000001 + i AS id, created_at, created_at + INTERVAL 2 DAY AS updated_at,
           candidate_id, 100001 + (hash(i, 'job') % 10000)::BIGINT AS job_id,
           CASE WHEN status = 'in_process' THEN 1000001 + (hash(i, 'sg') % 60000)::BIGINT END
               AS stage_id,
           CASE WHEN status = 'in_process' THEN {_pick(stages, 'sn')} END AS stage_name,
           status, status = 'converted' AS prospect,
           CASE WHEN status = 'rejected' THEN created_at + INTERVAL 2 DAY END AS rejected_at,
           created_at + INTERVAL 2 DAY AS last_activity_at,
           1 + (hash(i, 'r') % 40)::BIGINT AS recruiter_id,
           1 + (hash(i, 'o') % 40)::BIGINT AS coordinator_id,
           30001 + (hash(i, 's') % 8)::BIGINT AS source_id,
           to_json({{'id': 50000001 + i, 'candidate_id': candidate_id, 'status': status,
                     'answers': [], 'custom_fields': {{}},
                     'location_address': 'Toronto, ON M5H 2N2'}})::VARCHAR AS _raw,
           created_at + INTERVAL 2 DAY AS _source_updated_at, now() AS _extracted_at,
           'upsert' AS _op, 'bench' AS _run_id
    FROM a
    """


def keap_sql(n: int, candidates: int) -> str:
    return f"""
    WITH k AS (
        -- a person each (4 % a second contact of an earlier person, as in the sandbox)
        SELECT i, CASE WHEN {_u('kdup')} < 0.04 AND i > 1000
                       THEN (i - 1 - (hash(i, 'kback') % 1000)::BIGINT)
                       ELSE i END * {candidates} // {max(n, 1)} AS p, {_u('kd')} AS kd
        FROM range({n}) t(i)
    )
    SELECT (1001 + i)::VARCHAR AS id, 'Given' AS given_name, 'Family' AS family_name,
           NULL::VARCHAR AS middle_name, NULL::VARCHAR AS job_title,
           NULL::VARCHAR AS company_id,
           CASE WHEN kd < 0.04 THEN upper('user' || p || '.' || (hash(p, 'x') % 97) || '@k.example')
                ELSE 'user' || p || '.' || (hash(p, 'x') % 97) || '@k.example' END
               AS primary_email,
           [CASE WHEN kd < 0.04 THEN upper('user' || p || '.' || (hash(p, 'x') % 97)
                                          || '@k.example')
                 ELSE 'user' || p || '.' || (hash(p, 'x') % 97) || '@k.example' END]
               AS emails,
           ['(' || (200 + hash(p, 'a') % 800) || ') 555-01' || lpad((i % 100)::VARCHAR, 2, '0')]
               AS phones,
           ['101'] AS tag_ids, '8' AS owner_id, 'MANUAL' AS source_type,
           TIMESTAMPTZ '2025-10-06 00:00:00+00' AS create_time,
           TIMESTAMPTZ '2025-11-06 00:00:00+00' + to_milliseconds(i) AS update_time,
           '{{}}' AS _raw,
           TIMESTAMPTZ '2025-11-06 00:00:00+00' + to_milliseconds(i) AS _source_updated_at,
           now() AS _extracted_at, 'upsert' AS _op, 'bench' AS _run_id
    FROM k
    """


def write_entity(root: Path, schema, sql: str, day: str = DAY, mode: str = "full") -> dict:
    """Stream a query into a partition with the backups' schema and a manifest."""
    import duckdb
    import pyarrow.parquet as pq

    from orchestration.storage.seals import sha256_file

    folder = root / schema.source / schema.entity / f"snapshot_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    target = schema.arrow_schema()
    con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB"})
    con.execute("SET TimeZone = 'UTC'")
    files, total, part = [], 0, 0
    reader = con.sql(sql).to_arrow_reader(BATCH)
    for batch in reader:
        path = folder / f"part-{part:05d}.parquet"
        cols = [batch.column(batch.schema.get_field_index(f.name)).cast(f.type, safe=False)
                for f in target]
        import pyarrow as pa

        pq.write_table(pa.Table.from_arrays(cols, schema=target), path, compression="zstd")
        files.append({"file": path.name, "rows": batch.num_rows, "sha256": sha256_file(path),
                      "bytes": path.stat().st_size})
        total += batch.num_rows
        part += 1
    con.close()
    manifest = {"source": schema.source, "entity": schema.entity, "snapshot_date": day,
                "mode": mode, "rows": total, "files": files,
                "content_fingerprint": f"bench-{day}", "tool_version": "bench"}
    (folder / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"rows": total, "mb": round(sum(f["bytes"] for f in files) / 2 ** 20, 1)}


def generate(root: Path, candidates: int, applications: int, keap: int) -> dict:
    from assets.greenhouse import schemas as gh
    from assets.keap import schemas as kp

    started = time.perf_counter()
    out = {
        "greenhouse/candidates": write_entity(
            root, gh.candidates, candidates_raw_sql(candidates_sql(candidates))),
        "greenhouse/applications": write_entity(
            root, gh.applications, applications_sql(applications, candidates)),
        "keap/contacts": write_entity(root, kp.contacts, keap_sql(keap, candidates)),
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _day_files(root: Path, source: str, entity: str) -> str:
    return f"read_parquet('{root}/{source}/{entity}/snapshot_date={DAY}/*.parquet')"


def day_after(root: Path, fraction: float) -> dict:
    """The next day's incremental partitions: `fraction` of the candidates edited (a tenth of
    them take a neighbour's email too: two profiles join; a tenth move to a new address: a
    profile may split), half that many new candidates (half of them a second record of an
    existing person), a twentieth deleted; `fraction` of the applications moved to another
    stage and half that many new; `fraction` of the Keap contacts edited. Typed columns change,
    `_raw` is the earlier version's (the identity step reads the typed columns)."""
    from assets.greenhouse import schemas as gh
    from assets.keap import schemas as kp

    started = time.perf_counter()
    at = f"TIMESTAMPTZ '{NEXT} 10:00:00+00' + to_milliseconds(id % 3600000)"
    c_at = at.replace("(id ", "(c.id ")
    k = int(fraction * 1_000_000)
    cands = _day_files(root, "greenhouse", "candidates")
    top = f"(SELECT max(id) FROM {cands})"
    cand_sql = f"""
        SELECT c.* REPLACE (
            CASE WHEN hash(c.id, 'j') % 10 = 0 THEN list_concat(c.emails, n.emails)
                 WHEN hash(c.id, 'j') % 10 = 1 THEN ['moved' || c.id || '@new.example']
                 ELSE c.emails END AS emails,
            'Edited ' || c.id AS title, {c_at} AS updated_at, {c_at} AS _source_updated_at)
        FROM {cands} c LEFT JOIN {cands} n ON n.id = c.id + 1
        WHERE hash(c.id, 'chg') % 1000000 < {k}
        UNION ALL
        SELECT * REPLACE (id + {top} AS id,
                          CASE WHEN hash(id, 'same') % 2 = 0 THEN emails
                               ELSE ['new' || id || '@fresh.example'] END AS emails,
                          {at} AS created_at, {at} AS updated_at, {at} AS _source_updated_at)
        FROM {cands} WHERE hash(id, 'new') % 1000000 < {k // 2}
        UNION ALL
        SELECT * REPLACE (NULL::VARCHAR[] AS emails, 'delete' AS _op, {at} AS _source_updated_at)
        FROM {cands} WHERE hash(id, 'del') % 1000000 < {k // 20}
          AND hash(id, 'chg') % 1000000 >= {k}
    """
    apps = _day_files(root, "greenhouse", "applications")
    app_sql = f"""
        SELECT * REPLACE ('Onsite' AS stage_name, {at} AS updated_at, {at} AS last_activity_at,
                          {at} AS _source_updated_at)
        FROM {apps} WHERE hash(id, 'chg') % 1000000 < {k}
        UNION ALL
        SELECT * REPLACE (id + (SELECT max(id) FROM {apps}) AS id,
                          candidate_id + 1 AS candidate_id, {at} AS created_at,
                          {at} AS updated_at, {at} AS _source_updated_at)
        FROM {apps} WHERE hash(id, 'new') % 1000000 < {k // 2}
    """
    keap = _day_files(root, "keap", "contacts")
    k_at = at.replace("(id ", "(id::BIGINT ")
    keap_sql_ = f"""
        SELECT * REPLACE (list_append(emails, 'k' || id || '@edited.example') AS emails,
                          {k_at} AS update_time, {k_at} AS _source_updated_at)
        FROM {keap} WHERE hash(id, 'chg') % 1000000 < {k}
    """
    out = {
        "greenhouse/candidates": write_entity(root, gh.candidates, cand_sql, NEXT,
                                              "incremental"),
        "greenhouse/applications": write_entity(root, gh.applications, app_sql, NEXT,
                                                "incremental"),
        "keap/contacts": write_entity(root, kp.contacts, keap_sql_, NEXT, "incremental"),
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def measure(root: Path, day: str = DAY) -> dict:
    """The identity step as the asset runs it, in this fresh process. Modules a Dagster step
    process has loaded with the code location are imported before the clock starts; GX is
    not (the step imports it when the checks run, and so does this)."""
    from assets.identity.build import build_identity
    from assets.identity.config import IdentityConfig
    from checks import identity as checks

    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    result = build_identity(root, day, IdentityConfig(), run_id="bench")
    try:
        run = checks.evaluate_profile_checks(result)
    finally:
        result.close()
    me = resource.getrusage(resource.RUSAGE_SELF)
    t = run.timings
    return {
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "phases_seconds": {**result.timings, **t},
        "gx_seconds": {"import": t["gx_import"], "validate": t["gx_validate"],
                       "total": round(t["gx_import"] + t["gx_validate"], 1)},
        "peak_rss_mb": round(me.ru_maxrss / 1024),
        "load_average_before_after": [round(load, 1), round(os.getloadavg()[0], 1)],
        "counts": result.counts,
        "checks": {c.check_name: c.passed for c in run.results},
        "fingerprints": {name: m["content_fingerprint"] for name, m in result.manifests.items()},
    }


def _measure(root: Path, day: str, mode: str = "auto") -> dict:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "TALENTVAULT_IDENTITY": mode}
    out = subprocess.run([sys.executable, __file__, "--measure-only", "--data-dir", str(root),
                          "--day", day], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(label: str, r: dict) -> str:
    gx = r["gx_seconds"]
    return (f"| {label} | {r['wall_seconds']} s | {round(r['wall_seconds'] - gx['import'], 1)} s "
            f"| {r['cpu_seconds']} s | {gx['total']} s (import {gx['import']} s) | "
            f"{r['peak_rss_mb']:,} MB |")


def compare_days(root: Path, fraction: float) -> dict:
    """Day D in full (the base), then D+1's changes; D+1 built in full on a copy of the root
    and incrementally on the root, each in a fresh process; the outputs must be equal."""
    base = _measure(root, DAY)
    changes = day_after(root, fraction)
    copy = root.parent / (root.name + "-full")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    try:
        full = _measure(copy, NEXT, "full")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    inc = _measure(root, NEXT)
    if inc["fingerprints"] != full["fingerprints"]:
        raise SystemExit(f"incremental != full: {inc['fingerprints']} vs {full['fingerprints']}")
    return {"base_day": base, "changes": changes, "full": full, "incremental": inc,
            "equal": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--applications", type=int, default=3_000_000)
    parser.add_argument("--keap-contacts", type=int, default=600_000)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where to write the snapshots (default: a temporary folder)")
    parser.add_argument("--day-after", type=float, default=None, metavar="FRACTION",
                        help="also build the next day with FRACTION of the records changed, "
                        "in full and incrementally (side by side, equal outputs required)")
    parser.add_argument("--day", default=DAY, help="(internal) the day --measure-only builds")
    parser.add_argument("--measure-only", action="store_true",
                        help="(internal) run the identity step on --data-dir and print JSON")
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.data_dir, args.day)))
        return
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="tv-bench-identity-"))
    try:
        generated = generate(root, args.candidates, args.applications, args.keap_contacts)
        if args.day_after is not None:
            days = compare_days(root, args.day_after)
            print(json.dumps({"generated": generated, **days}, indent=2))
            size = (f"{args.candidates:,} / {args.applications:,} / {args.keap_contacts:,}, "
                    f"{args.day_after:.0%} changed")
            print("| build | wall | wall without the GX import | CPU | GX | peak RSS |")
            print("|---|---:|---:|---:|---:|---:|")
            print(_row(f"full ({size})", days["full"]))
            print(_row(f"incremental ({size})", days["incremental"]))
            return
        result = {"generated": generated, **_measure(root, DAY),
                  "cpus": os.cpu_count(), "python": platform.python_version()}
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))
    gx = result["gx_seconds"]
    print(f"| {args.candidates:,} candidates / {args.applications:,} applications / "
          f"{args.keap_contacts:,} Keap contacts | {result['wall_seconds']} s | "
          f"{result['cpu_seconds']} s | {gx['total']} s (import {gx['import']} s, validate "
          f"{gx['validate']} s) | {result['peak_rss_mb']:,} MB |")


if __name__ == "__main__":
    main()
