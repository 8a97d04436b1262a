"""Alerts: what needs a person, sent to the channels in `TALENTVAULT_ALERT_URLS`.

The channels are apprise URLs, comma-separated (https://github.com/caronc/apprise/wiki):
`mailtos://user:pass@example.com?to=oncall@example.com`, `slack://T000/B000/XXXX`,
`msteams://...`, `json://alerts.example.com/talentvault` (a webhook), ... A message names what
happened with ids, counts, check names and a link to the run in the Dagster UI
(`TALENTVAULT_UI_URL`, default http://localhost:3000): never a person's email, name or phone,
and never an error message, since a vendor's error text can quote the record it refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

ALERT_URLS_VAR = "TALENTVAULT_ALERT_URLS"
UI_URL_VAR = "TALENTVAULT_UI_URL"
DEFAULT_UI_URL = "http://localhost:3000"


class AlertError(RuntimeError):
    """An alert could not be delivered (the sensor tick fails, so the UI shows it)."""


@dataclass
class Alert:
    title: str
    lines: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)

    def body(self) -> str:
        links = [f"Run {r}: {run_link(r)}" for r in self.run_ids]
        return "\n".join([*self.lines, *links])


def alert_urls() -> list[str]:
    return [u.strip() for u in os.environ.get(ALERT_URLS_VAR, "").split(",") if u.strip()]


def run_link(run_id: str) -> str:
    base = os.environ.get(UI_URL_VAR, "").strip() or DEFAULT_UI_URL
    return f"{base.rstrip('/')}/runs/{run_id}"


def send(alert: Alert) -> bool:
    """Deliver to every configured channel. False when none is configured; AlertError when a
    channel is not understood or refuses (naming it by position: a URL can hold a token)."""
    urls = alert_urls()
    if not urls:
        return False
    import apprise

    from orchestration.config import mode

    channels = apprise.Apprise()
    for i, url in enumerate(urls, 1):
        if not channels.add(url):
            raise AlertError(f"{ALERT_URLS_VAR}: entry {i} of {len(urls)} is not an apprise URL "
                             "(see https://github.com/caronc/apprise/wiki)")
    try:
        where = mode()
    except ValueError:
        where = "misconfigured"
    if not channels.notify(title=f"talentvault [{where}]: {alert.title}", body=alert.body(),
                           body_format=apprise.NotifyFormat.TEXT):
        raise AlertError(f"an alert channel of {ALERT_URLS_VAR} did not take the alert "
                         f"{alert.title!r}; the sensor retries on its next tick")
    return True
