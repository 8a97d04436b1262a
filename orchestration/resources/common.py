"""What the three vendor resources share: sandbox defaults and rate-limit header readers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from orchestration.config import (
    data_root,
    sandbox_allowed,
    sandbox_dir,
    sandbox_url,
    sandbox_url_chosen,
)


def resolve_base(configured: str, sandbox_prefix: str) -> tuple[str, bool]:
    """(base URL, is_sandbox): an empty setting means the local sandbox, started if needed, in
    sandbox mode only; in live mode it is an error naming the vendor's *_BASE_URL."""
    if configured:
        return configured.rstrip("/"), False
    sandbox_allowed(sandbox_prefix.strip("/"))  # live mode never starts the sandbox
    from sandbox.process import ensure_running

    base, _ = ensure_running(sandbox_dir(), sandbox_url(), reuse_any=sandbox_url_chosen())
    return f"{base}{sandbox_prefix}", True


def state_dir() -> Path:
    """Where clients persist state that must survive runs (e.g. rotated OAuth refresh tokens)."""
    path = data_root() / "state"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pause_when_spent(remaining_header: str, reset_header: str | None = None,
                     interval_ms_header: str | None = None, default: float = 1.0):
    """A reader of a vendor's rate-limit headers: when the server says no calls remain in the
    window, how long to pause (seconds) before the next call."""

    def read(resp: httpx.Response) -> float | None:
        remaining = resp.headers.get(remaining_header)
        if remaining is None or not remaining.strip().lstrip("-").isdigit():
            return None
        if int(remaining) > 0:
            return None
        if reset_header and (reset := resp.headers.get(reset_header)):
            try:
                value = float(reset)
            except ValueError:
                return default
            # epoch seconds or seconds-from-now, both seen in the wild
            return max(0.0, value - time.time()) if value > 1e9 else value
        if interval_ms_header and (interval := resp.headers.get(interval_ms_header)):
            try:
                return float(interval) / 1000.0
            except ValueError:
                return default
        return default

    return read
