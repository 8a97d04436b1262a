"""Three processes calling Keap with one API key at once, each paced alone vs one shared budget.

    uv run python bench/bench_rate_budget.py [--seconds 75] [--processes 3]

Starts a sandbox (Keap's published PAT limits on: 10/s and 240/min per key) and runs the same
three client processes twice, side by side in one run: with TALENTVAULT_RATE_BUDGET=off (every
process paces alone, today's behaviour before the shared budget) and with the shared budget.
Prints calls sent, 429s, calls/s and the share of the per-minute limit. Writes only under
bench/out/rate_budget/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox import process
from sandbox.store import Store

OUT = Path(__file__).parent / "out" / "rate_budget"
SANDBOX_WINDOWS = [(10, 1.0), (240, 60.0)]  # the sandbox's Keap PAT limits (Keap's published)


def most_allowed(seconds: float, windows: list[tuple[int, float]] = SANDBOX_WINDOWS) -> int:
    """The most calls the vendor accepts in `seconds` (greedy: every call as early as allowed)."""
    times: list[float] = []
    t = 0.0
    while True:
        for limit, w in windows:
            inside = [u for u in times if u > t - w]
            if len(inside) >= limit:
                t = max(t, inside[-limit] + w)
        if t >= seconds:
            return len(times)
        times.append(t)

WORKER = """
import json, sys, time
from orchestration.resources.keap import KeapResource
start, seconds = float(sys.argv[1]), float(sys.argv[2])
client = KeapResource(max_attempts=50).open()
time.sleep(max(0.0, start - time.time()))
while time.time() < start + seconds:
    client.http.request("GET", "/rest/v2/tags", params={"page_size": 1})
print(json.dumps({"calls": client.http.calls, "rate_limited": client.http.rate_limited}))
client.close()
"""


def run(base_url: str, data: Path, budget: str, n: int, seconds: float) -> dict:
    httpx.post(f"{base_url}/_sandbox/reset", timeout=10).raise_for_status()  # fresh windows
    env = {**os.environ, "TALENTVAULT_SANDBOX_URL": base_url, "TALENTVAULT_DATA_DIR": str(data),
           "TALENTVAULT_RATE_BUDGET": budget}
    start = time.time() + 8
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(start), str(seconds)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    refused = sum(r["rate_limited"] for r in results)
    sent = sum(r["calls"] for r in results) - refused
    return {"budget": "shared" if budget != "off" else "each process alone",
            "calls_accepted": sent, "http_429": refused, "calls_per_second": sent / seconds,
            "share_of_limit": sent / most_allowed(seconds),
            "per_process": results}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=75.0)
    ap.add_argument("--processes", type=int, default=3)
    args = ap.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    Store(OUT / "sandbox").close()
    proc = process.start(OUT / "sandbox")
    try:
        rows = [run(proc.base_url, OUT / "data-off", "off", args.processes, args.seconds),
                run(proc.base_url, OUT / "data-shared", str(OUT / "budget.sqlite"),
                    args.processes, args.seconds)]
    finally:
        proc.stop()
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}",
              "seconds": args.seconds, "processes": args.processes, "rows": rows}
    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    for r in rows:
        print(f"{r['budget']:>20}: {r['calls_accepted']} calls accepted, {r['http_429']} x 429, "
              f"{r['calls_per_second']:.2f}/s = {r['share_of_limit']:.2f} x the most Keap "
              f"accepts in {args.seconds:g} s ({most_allowed(args.seconds)} calls at 10/s, "
              "240/min)")


if __name__ == "__main__":
    main()
