"""A failed write, classified (retry next run, or dead letter) and told without personal values."""

from __future__ import annotations

import json
import re

from orchestration.http import ApiError, MalformedResponseError

AUTH_STATUS = frozenset({401, 403})
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_EMAIL = re.compile(r"\S+@\S+")
_NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def scrub(text: str) -> str:
    """An error message without the values it quotes (emails, phones, names)."""
    return _NUMBER.sub("<number>", _EMAIL.sub("<email>", _QUOTED.sub("<value>", text)))[:300]


def describe_error(e: BaseException) -> tuple[int | None, str]:
    """(HTTP status, readable reason naming the field) for a failed write."""
    if not isinstance(e, ApiError):
        return None, f"{type(e).__name__}: {scrub(str(e))}"
    if e.status is None or e.status in (408, 425, 429) or e.status >= 500:
        # transport problems and outages: the client's own message (paths and attempt counts)
        return e.status, scrub(str(e).split(": ", 1)[-1])
    reason = f"HTTP {e.status}"
    try:
        body = json.loads(e.body or "")
    except (json.JSONDecodeError, TypeError):
        body = None
    if isinstance(body, dict):
        resources = [d.get("resource") for d in body.get("details") or []
                     if isinstance(d, dict) and d.get("resource")]
        if resources:
            reason += f" on {', '.join(str(r) for r in resources)}"
        if body.get("message"):
            reason += f": {scrub(str(body['message']))}"
    if isinstance(e, MalformedResponseError):
        reason += ": unreadable reply"
    return e.status, reason


def classify(e: BaseException) -> str:
    """`failed_retryable` (rate limit, outage, timeout, lost reply, auth) or `failed_permanent`
    (Keap refused the data: 400, 404, 422 ...)."""
    if not isinstance(e, ApiError):
        return "failed_retryable"
    status = e.status
    if (status is None or status >= 500 or status in RETRYABLE_4XX or status in AUTH_STATUS
            or isinstance(e, MalformedResponseError)):
        return "failed_retryable"
    return "failed_permanent"
