"""Benchmark: event-to-Keap latency of the real-time path on the sandbox.

    uv run python bench/bench_webhook_latency.py --events 20 --candidates 200

A world is generated and served (sandbox rate limits off; the clients pace at Keap's and
Greenhouse's published limits), the webhook receiver runs on its own port and the sandbox's
Greenhouse webhook points at it. The sandbox's day is backed up and synced once (the nightly run
and its automation; not measured). Then, one at a time, a person applies in Greenhouse (the
sandbox's own `new_candidate` life event, at the sandbox's clock on the open day); the sandbox
delivers its webhook to the receiver over a socket; and this process plays the daemon in a loop:
`webhook_sensor`'s evaluation on the real instance, its backup run of the open day, then the
automation sensor's ticks and their runs (identity, desired state, changeset, push), until the
candidate's email is on a contact in the sandbox's Keap. Latency = from the event's commit to
that moment.

The loop ticks back to back: a daemon evaluates `webhook_sensor` every 30 s and the automation
sensor every 30 s, so add up to a minute (30 s on average) of waiting to the measured times for a
deployment; both are reported. Runs execute in this process (in-process executor), as the demo
does; a daemon's run launcher would add its process start-up per run.

Results print as markdown and are appended to bench/out/webhook_latency/ (with --write-docs:
docs/bench_webhook_latency.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from outputs import add_flag, report_path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "bench_webhook_latency.md"
SECRET = "bench-greenhouse-secret"
DAEMON_WAIT = 60  # at most one webhook_sensor interval plus one automation sensor interval


def start_receiver(root: Path):
    import uvicorn

    from orchestration.webhooks.app import Settings, create_app
    from sandbox import process

    port = process.free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings.from_env(root)), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


def keap_emails(store) -> set[str]:
    from assets.identity.emails import reference_email

    return {e for d in store.iter_docs("keap", "contacts")
            for a in d.get("email_addresses") or [] if (e := reference_email(a.get("email")))}


def apply_once(store, rng: random.Random) -> tuple[int, str] | None:
    """One person applies now (the sandbox's life event); returns the candidate id and email,
    or None when the event made no syncable new person (invalid email, a duplicate)."""
    from assets.identity.emails import reference_email
    from sandbox.world import life_ats as gh
    from sandbox.world.day import Day

    before = {str(d["id"]) for d in store.iter_docs("greenhouse", "candidates")}
    with store.transaction():
        now = store.now() + timedelta(seconds=30)
        day = Day(store, rng, 1000)
        day.begin(now, now + timedelta(seconds=20))
        ok = gh.new_candidate(day)
        store.set_now(now + timedelta(seconds=20))
    if not ok:
        return None
    new = [d for d in store.iter_docs("greenhouse", "candidates") if str(d["id"]) not in before]
    emails = [reference_email(e.get("value")) for e in new[0].get("email_addresses") or []]
    email = next((e for e in emails if e), None)
    return (int(new[0]["id"]), email) if email and email not in keap_emails(store) else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    add_flag(ap)
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="tv-latency-"))
    os.environ["TALENTVAULT_DATA_DIR"] = str(base / "data")
    os.environ["GREENHOUSE_WEBHOOK_SECRET"] = SECRET
    os.environ.setdefault("TALENTVAULT_FIRST_DAY", "2025-10-01")
    for name in ("GREENHOUSE_BASE_URL", "KEAP_BASE_URL", "HIGHLEVEL_BASE_URL"):
        os.environ.pop(name, None)

    from sandbox import process
    from sandbox.store import Store
    from sandbox.world import generate as world

    world.generate(base / "sandbox", candidates=args.candidates, seed=args.seed)
    proc = process.start(base / "sandbox", rate_limits=False)
    os.environ["TALENTVAULT_SANDBOX_URL"] = proc.base_url
    import dagster as dg
    import httpx

    from orchestration.definitions import defs
    from orchestration.in_process import Automation
    from orchestration.storage.snapshots import SnapshotStorage
    from orchestration.webhooks.sensor import webhook_sensor

    store = Store(base / "sandbox")
    server, url = start_receiver(base / "data")
    httpx.put(f"{proc.base_url}/_sandbox/webhooks/greenhouse",
              json={"url": f"{url}/webhooks/greenhouse", "secret": SECRET},
              timeout=10).raise_for_status()
    instance = dg.DagsterInstance.ephemeral()
    auto = Automation(defs, instance)
    storage = SnapshotStorage(root=str(base / "data"))
    rng = random.Random(args.seed)
    latencies: list[float] = []
    try:
        day = (store.now() - timedelta(milliseconds=1)).date().isoformat()
        auto.tick(store.now())
        t = time.monotonic()
        auto.nightly(day)
        auto.settle(store.now())
        setup = time.monotonic() - t
        cursor = None
        while len(latencies) < args.events:
            made = apply_once(store, rng)
            if made is None:
                continue
            t0 = time.monotonic()
            _, email = made
            while email not in keap_emails(store):
                ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                              resources={"storage": storage}, definitions=defs)
                result = webhook_sensor(ctx)
                cursor = result.cursor
                for request in result.run_requests:
                    auto.launch(request)
                auto.settle(store.now())
                if time.monotonic() - t0 > 600:
                    raise RuntimeError("the event did not reach Keap in 10 minutes")
                time.sleep(0.2)
            latencies.append(time.monotonic() - t0)
            print(f"event {len(latencies)}: {latencies[-1]:.1f} s", flush=True)
    finally:
        server.should_exit = True
        proc.stop()
        store.close()
        shutil.rmtree(base, ignore_errors=True)
    report(args, latencies, setup)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(args, latencies: list[float], setup: float) -> None:
    p50, p95 = statistics.median(latencies), _pct(latencies, 95)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    text = f"""
## Webhook to Keap latency ({datetime.now(UTC).date().isoformat()})

{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python
{platform.python_version()}; world of {args.candidates} candidates (seed {args.seed}); load
average at the end: {load}. First backup and sync of the day (not measured): {setup:.0f} s.

`uv run python bench/bench_webhook_latency.py --events {args.events} --candidates \
{args.candidates}`

| events | p50 | p95 | max | p50 + daemon wait (avg 30 s) | p95 + daemon wait (max 60 s) |
|---:|---:|---:|---:|---:|---:|
| {len(latencies)} | {p50:.1f} s | {p95:.1f} s | {max(latencies):.1f} s | {p50 + 30:.1f} s | \
{p95 + DAEMON_WAIT:.1f} s |
"""
    print(text)
    with report_path(args, DOC, "webhook_latency").open("a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
