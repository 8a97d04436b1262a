"""Benchmark: restore (recreate deleted contacts) against the sandbox WITH its real rate limits.

    uv run python bench/bench_restore.py --keap 2000 --highlevel 500

A world is generated (~0.8 Keap contacts and ~0.4 HighLevel contacts per candidate), backed up
once, then N contacts of each CRM are deleted (directly in the sandbox's store: the damage is
not what is measured), and a restore preview + apply brings them back through the vendors' APIs
at the clients' default pacing (Keap API key: 9/s and 230/min under Keap's published 10/s and
240/min; HighLevel: 95 per 10 s under its 100 per 10 s). Reported: wall time of preview and
apply, API calls, achieved write rate against the limit, and the extrapolation to 100,000
contacts. A 100,000-contact restore at Keap's API-key limit takes hours; it is extrapolated from
the measured run, not run. Results go to
bench/out/restore/bench_restore.md (with --write-docs: docs/bench_restore.md).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from outputs import add_flag, report_path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "restore"
DOC = ROOT / "docs" / "bench_restore.md"
LIMITS = {"keap": ("230/min (3.83/s; Keap API key: 10/s and 240/min, less a margin)", 230 / 60),
          "highlevel": ("95 per 10 s (9.5/s; HighLevel: 100 per 10 s)", 9.5),
          "keap (OAuth)": ("1,400/min (23.3/s; Keap OAuth: 1,500/min, less a margin)",
                           1400 / 60)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keap", type=int, default=2000)
    ap.add_argument("--highlevel", type=int, default=500)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--auth", choices=("pat", "oauth"), default="pat",
                    help="Keap credential: an API key (240 calls/min) or OAuth (1,500/min)")
    add_flag(ap)
    args = ap.parse_args()
    from sandbox import process
    from sandbox.store import Store
    from sandbox.world import generate as world

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    candidates = max(math.ceil(args.keap / 0.75), math.ceil(args.highlevel / 0.35)) + 50
    world.generate(OUT / "sandbox", candidates=candidates, seed=args.seed)
    proc = process.start(OUT / "sandbox", rate_limits=True, log_file=OUT / "sandbox.log")
    os.environ["TALENTVAULT_DATA_DIR"] = str(OUT / "data")
    os.environ["TALENTVAULT_SANDBOX_URL"] = proc.base_url
    from assets.highlevel.extract import SPECS as HL
    from assets.keap.extract import SPECS as KEAP
    from orchestration.times import iso
    from tests.e2e.conftest import World

    store = Store(OUT / "sandbox")
    w = World(proc.base_url, OUT / "data", store, proc)
    rows = []
    try:
        w.backup(w.day(), specs=[s for s in KEAP + HL if s.schema.entity in
                                 ("contacts", "opportunities", "tags")])
        as_of = iso(store.now() - timedelta(milliseconds=1))
        w.admin("POST", "/clock", json={"advance_seconds": 60})
        for source, n in (("keap", args.keap), ("highlevel", args.highlevel)):
            if n:
                client = keap_oauth_client(proc.base_url) if (
                    source == "keap" and args.auth == "oauth") else None
                rows.append(measure(w, store, source, n, as_of, client))
    finally:
        proc.stop()
        store.close()
    write_doc(rows, candidates, report_path(args, DOC, "restore"))


def keap_oauth_client(base_url: str):
    """A Keap client on the sandbox's OAuth flow (authorization code -> rotating refresh token),
    paced under the OAuth limits instead of the API key's."""
    import httpx

    from orchestration.resources import KeapResource
    from sandbox import credentials

    token_url = f"{base_url}/keap/token"
    grant = httpx.post(token_url, data={"grant_type": "authorization_code",
                                        "code": credentials.KEAP_AUTHORIZATION_CODE},
                       auth=(credentials.KEAP_CLIENT_ID, credentials.KEAP_CLIENT_SECRET),
                       timeout=30)
    grant.raise_for_status()
    return KeapResource(base_url=f"{base_url}/keap/crm", token_url=token_url,
                        client_id=credentials.KEAP_CLIENT_ID,
                        client_secret=credentials.KEAP_CLIENT_SECRET,
                        refresh_token=grant.json()["refresh_token"]).open()


def measure(w, store, source: str, n: int, as_of: str, client=None) -> dict:
    from assets.recovery.restore import preview
    from assets.recovery.restore.apply import apply

    ids = sorted(w.sandbox_docs(source, "contacts"))[:n]
    now = store.now()
    for i in ids:   # the disaster: n contacts gone
        store.delete(source, "contacts", i, at=now)
    t0 = time.monotonic()
    plan = preview(w.root, source, as_of, modes=["create-missing"], client=client)
    t1 = time.monotonic()
    counts = apply(w.root, plan.plan_id, client=client)
    t2 = time.monotonic()
    writes = counts["succeeded"]
    rate = writes / (t2 - t1)
    per_contact = (t2 - t1) / max(1, plan.counts.get("create", 0))
    label = "keap (OAuth)" if client is not None and source == "keap" else source
    row = {"source": label, "contacts": plan.counts.get("create", 0), "preview_s": t1 - t0,
           "apply_s": t2 - t1, "writes": writes, "api_calls": counts["api_calls"],
           "rate": rate, "calls_rate": counts["api_calls"] / (t2 - t1),
           "limit": LIMITS[label][0], "limit_rate": LIMITS[label][1],
           "extrapolated_h": per_contact * 100_000 / 3600,
           "failed": counts["failed_retryable"] + counts["failed_permanent"],
           "opportunities": plan.counts.get("opportunity_replace", 0)}
    print(row, flush=True)
    return row


def write_doc(rows: list[dict], candidates: int, doc: Path = DOC) -> None:
    lines = ["## Restore against the sandbox's real rate limits", "",
             f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine (2 cores, shared), "
             f"`uv run python bench/bench_restore.py`; world of {candidates} candidates. "
             "Each run deletes N contacts, then `restore preview` + `restore apply` "
             "(create-missing) brings them back through the API with the clients' default "
             "pacing.", "",
             "| source | contacts recreated | preview | apply | ledgered writes | API calls "
             "| achieved calls/s | client limit | 100,000 contacts (extrapolated) | failed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['source']} | {r['contacts']:,} | {r['preview_s']:.1f} s | "
            f"{r['apply_s']:.1f} s | {r['writes']:,} | {r['api_calls']:,} | "
            f"{r['calls_rate']:.2f} ({100 * r['calls_rate'] / r['limit_rate']:.0f}% of limit) | "
            f"{r['limit']} | {r['extrapolated_h']:.1f} h | {r['failed']} |")
    lines += ["", "The 100,000-contact figure is extrapolated linearly from the measured run "
              "(time per recreated contact × 100,000), not measured: at Keap's API-key limit "
              "(240 calls/min) one create per contact plus batched tag calls is hours by "
              "construction. With Keap OAuth (1,500/min; the client paces at 1,400/min) the "
              "same restore is about six times faster. Ledgered writes count one row per "
              "contact and per (contact, tag); tags go to Keap 1,000 contacts a call, so API "
              "calls are fewer than ledger rows.", ""]
    doc.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
