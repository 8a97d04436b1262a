"""Benchmark: the Keap push against the sandbox WITH Keap's real rate limits.

    uv run python bench/bench_push.py --changes 10000 --auth oauth
    uv run python bench/bench_push.py --changes 2000 --auth pat

A sandbox server is started on an empty world with rate limits on (PAT: 10/s, 240/min,
30,000/day; OAuth client: 1,500/min, spike 25/s; see sandbox/keap/vendor.py). Existing
Keap contacts are seeded straight into its store (not measured); a changeset partition of
`--changes` changes is written in the contract layout: 40% creates, 40% field updates of
existing contacts, 20% tag adds over 4 tags (half of them on contacts created in the same push).
Then `run_push` runs once (concurrency 4) and we report: duration, API calls, achieved
calls/second against the limit in force, 429s seen from the sandbox, and peak RSS. A second push
of the same partition is timed too (it must make zero calls).

Results print as markdown and are appended to bench/out/push/bench_push.md (with --write-docs:
docs/bench_push.md, folded by hand into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from outputs import add_flag, report_path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "bench_push.md"
DAY = "2026-01-15"
TAGS = ["Bench Stage A", "Bench Stage B", "Bench Stage C", "Bench Stage D"]
# the sustained limit (calls/s) each credential kind gets from Keap, and what the client paces at
LIMITS = {"pat": ("10/s, 240/min (sustained 4.0/s)", 240 / 60),
          "oauth": ("1,500/min, spike 25/s (sustained 25/s)", 1500 / 60)}


def build_changeset(root: Path, store, n: int) -> dict[str, int]:
    import duckdb
    import pyarrow as pa

    from orchestration.storage.derived import write_partition
    from sandbox import records
    from tests.e2e.sync_push_support import CHANGESET_SCHEMA, create, tag, update

    n_create, n_update = int(n * 0.4), int(n * 0.4)
    n_tag = n - n_create - n_update
    docs = [{"id": str(i), "given_name": "Given", "family_name": f"F{i}",
             "email_addresses": [{"email": f"old{i}@example.com", "field": "EMAIL1"}],
             "phone_numbers": [], "addresses": [], "tag_ids": [], "custom_fields": [],
             "create_time": "2026-01-01T00:00:00.000Z",
             "update_time": "2026-01-01T00:00:00.000Z"} for i in range(1, n_update + 1)]
    records.save_many(store, "keap", "contacts", docs)
    rows, creates = [], []
    for i in range(n_create):
        c = create(100_000 + i, f"new{i}@example.com", given_name=f"N{i}", family_name="New",
                   job_title="Applicant")
        rows.append(c)
        creates.append(c)
    for i in range(1, n_update + 1):
        rows.append(update(i, str(i), f"old{i}@example.com", {"job_title": f"Engineer {i}"}))
    for k in range(n_tag):
        name = TAGS[k % len(TAGS)]
        if k % 2 and creates:
            c = creates[k % len(creates)]
            rows.append(tag("tag_add", c["profile_id"], c["match_email"], name,
                            depends_on=c["change_id"]))
        else:
            i = 1 + k % max(1, n_update)
            rows.append(tag("tag_add", i, f"old{i}@example.com", name, contact_id=str(i)))
    # one change per change_id (a tag row can repeat when n_tag > contacts): keep the first
    seen, unique = set(), []
    for r in rows:
        if r["change_id"] not in seen:
            seen.add(r["change_id"])
            unique.append(r)
    con = duckdb.connect()
    con.register("cs", pa.Table.from_pylist(
        [{k: r.get(k) for k in CHANGESET_SCHEMA.names} for r in unique],
        schema=CHANGESET_SCHEMA))
    write_partition(con, root, "keap_changeset", DAY, "SELECT * FROM cs", "change_id",
                    run_id="bench", source="sync")
    con.close()
    return {"changes": len(unique), "creates": n_create, "updates": n_update,
            "tag_adds": len(unique) - n_create - n_update}


def open_client(base: str, auth: str, work: Path):
    import httpx

    from orchestration.http import RetryPolicy
    from orchestration.resources.keap import (
        OAUTH_WINDOWS,
        PAT_WINDOWS,
        KeapClient,
        RotatingOAuth,
    )
    from sandbox import credentials

    retry = RetryPolicy()
    if auth == "pat":
        return KeapClient(f"{base}/keap/crm", api_key=credentials.KEAP_API_KEY,
                          windows=PAT_WINDOWS, retry=retry, timeout=30)
    first = httpx.post(f"{base}/keap/token", data={
        "grant_type": "authorization_code", "code": credentials.KEAP_AUTHORIZATION_CODE,
        "client_id": credentials.KEAP_CLIENT_ID,
        "client_secret": credentials.KEAP_CLIENT_SECRET}).json()
    oauth = RotatingOAuth(f"{base}/keap/token", credentials.KEAP_CLIENT_ID,
                          credentials.KEAP_CLIENT_SECRET, first["refresh_token"],
                          work / "keap_oauth.json")
    return KeapClient(f"{base}/keap/crm", oauth=oauth, windows=OAUTH_WINDOWS, retry=retry,
                      timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=10_000)
    ap.add_argument("--auth", choices=["pat", "oauth"], default="oauth")
    ap.add_argument("--concurrency", type=int, default=4)
    add_flag(ap)
    args = ap.parse_args()

    import httpx

    from assets.sync.push import run_push
    from sandbox import process
    from sandbox.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench_push_", dir=ROOT / "bench" / "out"
                                 if (ROOT / "bench" / "out").is_dir() else None))
    folder, root = work / "sandbox", work / "data"
    folder.mkdir()
    store = Store(folder)
    proc = process.start(folder, rate_limits=True)
    try:
        shape = build_changeset(root, store, args.changes)
        client = open_client(proc.base_url, args.auth, work)
        httpx.delete(f"{proc.base_url}/_sandbox/requests")
        started = time.monotonic()
        result = run_push(client, root, DAY, "bench-1", concurrency=args.concurrency)
        seconds = time.monotonic() - started
        log = httpx.get(f"{proc.base_url}/_sandbox/requests",
                        params={"source": "keap"}, timeout=120).json()["requests"]
        calls = [r for r in log if not r["path"].endswith("/token")]
        throttled = sum(1 for r in calls if r["status"] == 429)
        window = _busiest_minute(calls)
        httpx.delete(f"{proc.base_url}/_sandbox/requests")
        t2 = time.monotonic()
        again = run_push(client, root, DAY, "bench-2", concurrency=args.concurrency)
        rerun_seconds = time.monotonic() - t2
        rerun_calls = len(httpx.get(f"{proc.base_url}/_sandbox/requests",
                                    params={"source": "keap"}).json()["requests"])
        client.close()
    finally:
        proc.stop()
        store.close()
    limit_text, sustained = LIMITS[args.auth]
    rate = len(calls) / seconds
    row = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"), "auth": args.auth,
        **shape, "succeeded": result.succeeded, "failed": result.failed,
        "api_calls": len(calls), "write_calls": result.write_calls, "seconds": round(seconds, 1),
        "calls_per_second": round(rate, 2), "limit": limit_text,
        "share_of_limit": round(rate / sustained, 3), "busiest_minute_calls": window,
        "http_429": throttled, "client_retries": client.http.retries,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rerun_calls": rerun_calls, "rerun_sent": again.sent,
        "rerun_seconds": round(rerun_seconds, 2),
    }
    print(json.dumps(row, indent=2))
    _append_doc(row, report_path(args, DOC, "push"))


def _busiest_minute(calls: list[dict]) -> int:
    times = sorted(r["t"] for r in calls)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 60:
            j += 1
        best = max(best, i - j + 1)
    return best


def _append_doc(row: dict, doc: Path = DOC) -> None:
    header = ("| when (UTC) | auth | changes (create/update/tag) | API calls | seconds | "
              "calls/s | limit | share of sustained limit | busiest 60 s | 429s | client "
              "retries | peak RSS MB | re-run calls |\n|---|---|---|---|---|---|---|---|---|---|"
              "---|---|---|\n")
    line = (f"| {row['when']} | {row['auth']} | {row['changes']} ({row['creates']}/"
            f"{row['updates']}/{row['tag_adds']}) | {row['api_calls']} | {row['seconds']} | "
            f"{row['calls_per_second']} | {row['limit']} | {row['share_of_limit']:.0%} | "
            f"{row['busiest_minute_calls']} | {row['http_429']} | {row['client_retries']} | "
            f"{row['peak_rss_mb']} | {row['rerun_calls']} |\n")
    text = doc.read_text() if doc.exists() else ""
    marker = "<!-- bench_push results -->\n"
    if marker not in text:
        text += (f"\n### Raw results ({platform.machine()}, {platform.python_version()})\n\n"
                 f"{marker}{header}")
    doc.write_text(text.replace(marker + header, marker + header + line, 1)
                   if marker + header in text else text + line)


if __name__ == "__main__":
    main()
