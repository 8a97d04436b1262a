"""Three processes calling Keap with one API key share one rate budget: against the sandbox with
Keap's published limits on (10/s, 240/min per key), no 429 and close to the limit together;
each pacing alone (the budget off), the same three overrun it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

SECONDS = 4.0
LIMIT_PER_SECOND = 10  # the sandbox's Keap PAT limit (Keap's published one)

WORKER = """
import json, sys, time
from orchestration.resources.keap import KeapResource
start, seconds = float(sys.argv[1]), float(sys.argv[2])
client = KeapResource(max_attempts=20).open()
time.sleep(max(0.0, start - time.time()))
while time.time() < start + seconds:
    client.http.request("GET", "/rest/v2/tags", params={"page_size": 1})
print(json.dumps({"calls": client.http.calls, "rate_limited": client.http.rate_limited}))
client.close()
"""


def run_three(sandbox, data_dir, budget: str) -> list[dict]:
    env = {**os.environ, "TALENTVAULT_SANDBOX_URL": sandbox.base_url,
           "TALENTVAULT_DATA_DIR": str(data_dir), "TALENTVAULT_RATE_BUDGET": budget}
    start = time.time() + 6  # every process imported and ready before the clock starts
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(start), str(SECONDS)],
                              env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.parametrize("budget", ["shared", "off"])
def test_three_processes_share_one_keap_budget(sandbox, tmp_path, budget):
    sandbox.rate_limits(True)
    setting = str(tmp_path / "budget.sqlite") if budget == "shared" else "off"
    results = run_three(sandbox, tmp_path / "data", setting)
    refused = sum(r["rate_limited"] for r in results)
    sent = sum(r["calls"] for r in results) - refused
    if budget == "shared":
        assert refused == 0
        # 9/s client windows; a budget that throttled beyond the limit would fall far lower
        # (a loaded 2-core machine measured 7.5/s: the exact rate is bench/'s business)
        assert sent / SECONDS >= 0.6 * LIMIT_PER_SECOND
        assert all(r["calls"] > 0 for r in results)      # nobody starved
    else:
        assert refused > 0  # what the shared budget prevents
