"""Timestamps as the emulated vendors write and read them: UTC, ISO-8601, milliseconds, 'Z'.

The sandbox keeps its own copy of the format rather than the product's (orchestration/times.py):
it stands for the vendors, whose text must not change when the product's reader does."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: datetime) -> str:
    """Canonical timestamp text: UTC, milliseconds, trailing Z (sorts correctly as text)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """Parse the ISO-8601 forms the vendors send ('Z' or an offset, with or without fractions)."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
