"""The world from a user's side: `talentvault sandbox init/tick/load/status` through the real CLI,
and `POST /_sandbox/tick` on a running sandbox server over a real socket."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sandbox import process
from sandbox.store import parse_ts
from sandbox.world import generate as world

EXAMPLES = Path(world.__file__).parents[1] / "examples"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestration.cli", "sandbox", *args],
                          capture_output=True, text=True, timeout=300)


def ok(*args: str) -> dict:
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cli_init_tick_status_load(tmp_path: Path) -> None:
    data = str(tmp_path / "sandbox")
    made = ok("init", "--candidates", "200", "--seed", "4", "--data-dir", data)
    assert made["counts"]["greenhouse"]["candidates"] == 200
    status = ok("status", "--data-dir", data)
    assert status["now"] == made["now"] == "2026-01-05T00:00:00.000Z"
    assert status["counts"] == made["counts"]

    ticked = ok("tick", "--days", "2", "--data-dir", data)
    assert parse_ts(ticked["now"]) == parse_ts(made["now"]) + timedelta(days=2)
    assert [d["date"] for d in ticked["summary"]["days"]] == ["2026-01-05", "2026-01-06"]
    after = ok("status", "--data-dir", data)
    assert after["now"] == ticked["now"]
    new = ticked["summary"]["total"]["new_candidates"]
    gone = ticked["summary"]["total"].get("merges", 0) + ticked["summary"]["total"].get(
        "deletions", 0)
    assert after["counts"]["greenhouse"]["candidates"] == 200 + new - gone

    loaded = ok("load", str(EXAMPLES), "--data-dir", data)
    assert ok("status", "--data-dir", data)["counts"] == loaded["counts"]
    assert loaded["counts"]["greenhouse"]["candidates"] == sum(
        1 for line in (EXAMPLES / "greenhouse" / "candidates.jsonl").read_text().splitlines()
        if line.strip())


def test_cli_load_reports_bad_lines_and_keeps_the_world(tmp_path: Path) -> None:
    data = str(tmp_path / "sandbox")
    ok("load", str(EXAMPLES), "--data-dir", data)
    before = ok("status", "--data-dir", data)
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLES, bad)
    with (bad / "keap" / "contacts.jsonl").open("a") as f:
        f.write('{"id": 42, "update_time": "2026-01-01T00:00:00Z"}\n')
    lines = sum(1 for line in (bad / "keap" / "contacts.jsonl").read_text().splitlines()
                if line.strip())

    done = cli("load", str(bad), "--data-dir", data)

    assert done.returncode == 2
    assert f"{bad / 'keap' / 'contacts.jsonl'}:{lines}: \"id\" must be a string" in done.stderr
    assert ok("status", "--data-dir", data) == before


@pytest.fixture
def server(tmp_path: Path):
    folder = tmp_path / "sandbox"
    world.generate(folder, candidates=150, seed=8)
    proc = process.start(folder)
    try:
        yield proc.base_url
    finally:
        proc.stop()


def test_tick_endpoint_plays_days_on_a_running_server(server: str) -> None:
    before = httpx.get(f"{server}/_sandbox/state", timeout=30).json()
    assert before["counts"]["greenhouse"]["candidates"] == 150

    r = httpx.post(f"{server}/_sandbox/tick", json={"days": 1}, timeout=120)

    assert r.status_code == 200
    body = r.json()
    assert parse_ts(body["now"]) == parse_ts(before["now"]) + timedelta(days=1)
    after = httpx.get(f"{server}/_sandbox/state", timeout=30).json()
    assert after["now"] == body["now"]
    assert after["counts"] != before["counts"]
    total = body["summary"]["total"]
    assert after["counts"]["greenhouse"]["candidates"] == 150 + total["new_candidates"] - total.get(
        "merges", 0) - total.get("deletions", 0)
    merged = httpx.get(f"{server}/_sandbox/tombstones/greenhouse/candidates", timeout=30).json()
    assert any(t["merged_into"] for t in merged)
