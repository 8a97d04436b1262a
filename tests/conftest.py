"""Shared fixtures: a real sandbox server process over a real socket, on a world in tmp."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import process
from sandbox.store import Store

# the sandbox's worlds start in January 2026 and tests back up days before "yesterday": a fixed
# first partition, set before any test module imports the code location (orchestration/
# partitions.py; tests/unit/test_partitions.py tests the default)
os.environ.setdefault("TALENTVAULT_FIRST_DAY", "2025-10-01")

SPECS = Path(__file__).resolve().parents[1] / "specs"   # vendored: see specs/README.md


@dataclass
class Sandbox:
    """A running sandbox server plus a handle on its world file."""

    base_url: str
    data_dir: Path
    store: Store
    proc: process.SandboxProcess

    def url(self, path: str) -> str:
        return self.base_url + path

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, f"{self.base_url}/_sandbox{path}", timeout=60, **kw)
        r.raise_for_status()
        return r.json()

    def requests(self, source: str | None = None, method: str | None = None) -> list[dict]:
        params = {k: v for k, v in {"source": source, "method": method}.items() if v}
        return self.admin("GET", "/requests", params=params)["requests"]

    def faults(self, source: str, rates: dict[str, float], **params: float) -> None:
        self.admin("PUT", "/faults", json={"source": source, "rates": rates, **params})

    def queue_faults(self, source: str, kinds: list[str]) -> None:
        self.admin("POST", "/faults/queue", json={"source": source, "faults": kinds})

    def rate_limits(self, enabled: bool) -> None:
        self.admin("PUT", "/ratelimits", json={"enabled": enabled})

    def records(self, source: str, entity: str) -> list[dict]:
        import json

        r = httpx.get(f"{self.base_url}/_sandbox/records/{source}/{entity}", timeout=120)
        r.raise_for_status()
        return [json.loads(line) for line in r.text.splitlines() if line]


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    folder = tmp_path_factory.mktemp("sandbox")
    store = Store(folder)  # an empty world: tests put what they need
    proc = process.start(folder, token_ttl_seconds=3600)
    try:
        yield Sandbox(proc.base_url, folder, store, proc)
    finally:
        proc.stop()
        store.close()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox, emptied: no records, no faults, fresh log and rate windows."""
    sandbox_server.store.wipe()
    sandbox_server.admin("POST", "/reset")
    sandbox_server.rate_limits(True)
    return sandbox_server


@pytest.fixture(scope="session")
def _closed_port() -> int:
    return process.free_port()   # bound once and released: nothing listens there


@pytest.fixture(autouse=True)
def _no_stray_sandbox(monkeypatch: pytest.MonkeyPatch, _closed_port: int) -> None:
    """No test reaches a sandbox it did not start: without this, code that asks the default
    address (http://127.0.0.1:8765) finds the one `talentvault demo` leaves running and reads
    its simulated clock (January 2026) instead of the test's. Tests and fixtures that start a
    sandbox set TALENTVAULT_SANDBOX_URL themselves."""
    if "TALENTVAULT_SANDBOX_URL" not in os.environ:
        monkeypatch.setenv("TALENTVAULT_SANDBOX_URL", f"http://127.0.0.1:{_closed_port}")
