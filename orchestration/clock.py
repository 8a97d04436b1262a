"""Which clock a backup judges "now" by: the sandbox's simulated clock when the vendor is the
sandbox (its data is stamped with it), else the real one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestration.config import sandbox_url
from sandbox.process import clock_or_none

if TYPE_CHECKING:
    from orchestration.resources import VendorClient, VendorResource


def reference_clock(resource: VendorResource,
                    client: VendorClient | None = None) -> tuple[datetime, str]:
    """(now, which clock): the sandbox's simulated clock when the resource is the sandbox (no
    base URL configured, or a client that says so), else the real one. A sandbox that does not
    answer falls back to the real clock, the lenient choice."""
    sandbox = getattr(client, "sandbox", None)
    if sandbox is None:
        sandbox = not getattr(resource, "base_url", "")
    if sandbox:
        now = clock_or_none(sandbox_url())
        if now is not None:
            return now, "sandbox"
    return datetime.now(UTC), "real"
