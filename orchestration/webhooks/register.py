"""Registering talentvault's receiver with the vendors.

Keap: one REST hook per event key through the Keap v1 API; Keap verifies each one at creation by
POSTing an X-Hook-Secret to the receiver, which must be running (on the URL given) against the
same data root, so it can learn the secret while this registration's window is open. A hook left
Unverified or Inactive is verified again. Greenhouse and HighLevel webhooks are set in the
vendor's web UI (Greenhouse: Configure > Dev Center > Web Hooks, with GREENHOUSE_WEBHOOK_SECRET
as the secret key; HighLevel: the marketplace app's webhook URL); against the sandbox the same
settings go to its admin endpoints. Every registration is one audit event.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from orchestration.config import sandbox_url
from orchestration.storage import audit
from orchestration.webhooks import hook_secrets

if TYPE_CHECKING:
    from orchestration.resources.keap import KeapClient

KEAP_EVENTS = ("contact.add", "contact.edit", "contact.delete", "contactGroup.applied",
               "contactGroup.removed",
               # a contact's history: its notes, tasks, opportunities and companies (their
               # deletions reach the backups without a sweep: assets/deletions.py)
               "note.add", "note.edit", "note.delete", "task.add", "task.edit", "task.delete",
               "opportunity.add", "opportunity.edit", "opportunity.delete",
               "company.add", "company.edit", "company.delete")
AUDIT_ACTION = "webhook_register"


class RegistrationError(RuntimeError):
    pass


def register_keap(root: Path, client: KeapClient, url: str,
                  events: list[str] | None = None) -> list[dict[str, Any]]:
    """Create (or re-verify) one Keap hook per event key for `url`; returns the hooks with
    their final status and what was done."""
    results: list[dict[str, Any]] = []
    if events is None:
        # the defaults this account offers (GET /hooks/event_keys); the others are reported
        offered = set(client.hook_event_keys())
        events = [e for e in KEAP_EVENTS if e in offered]
        results += [{"event_key": e, "key": None, "status": None, "action": "not offered"}
                    for e in KEAP_EVENTS if e not in offered]
    existing = {(h.get("eventKey"), h.get("hookUrl")): h for h in client.list_hooks()}
    hook_secrets.open_window(root)
    try:
        for event in events:
            hook = existing.get((event, url))
            action = "kept"
            if hook is None:
                hook, action = client.create_hook(event, url), "created"
            if hook.get("status") != "Verified":
                hook = client.verify_hook(str(hook["key"]))
                action = "created" if action == "created" else "verified again"
            results.append({"event_key": event, "key": str(hook.get("key")),
                            "status": hook.get("status"), "action": action})
    finally:
        hook_secrets.close_window(root)
        _audit(root, "keap", url, results)
    return results


def register_sandbox(root: Path, source: str, url: str) -> list[dict[str, Any]]:
    """Greenhouse / HighLevel against the sandbox: its admin endpoints stand in for the
    vendors' web UIs."""
    if os.environ.get(f"{source.upper()}_BASE_URL"):
        raise RegistrationError(
            f"{source} webhooks are configured in {source.capitalize()}'s web UI, not through "
            f"its API: " + ("Configure > Dev Center > Web Hooks, endpoint URL " + url +
                            ", secret key = GREENHOUSE_WEBHOOK_SECRET" if source == "greenhouse"
                            else "set the marketplace app's webhook URL to " + url +
                            " and HIGHLEVEL_WEBHOOK_PUBLIC_KEY to HighLevel's Ed25519 key"))
    body: dict[str, Any] = {"url": url}
    if source == "greenhouse":
        secret = os.environ.get("GREENHOUSE_WEBHOOK_SECRET")
        if not secret:
            raise RegistrationError("set GREENHOUSE_WEBHOOK_SECRET first: the receiver checks "
                                    "each delivery's signature with it")
        body["secret"] = secret
    results: list[dict[str, Any]] = []
    try:
        r = httpx.put(f"{sandbox_url()}/_sandbox/webhooks/{source}", json=body, timeout=30)
        if r.status_code >= 400:
            raise RegistrationError(f"sandbox refused the {source} webhook: "
                                    f"{r.status_code} {r.text[:200]}")
        results.append({"event_key": "*", "key": source, "status": "Active",
                        "action": "configured"})
    finally:
        _audit(root, source, url, results)
    return results


def _audit(root: Path, source: str, url: str, results: list[dict[str, Any]]) -> None:
    ok = sum(1 for r in results if r["status"] in ("Verified", "Active"))
    audit.record(root, AUDIT_ACTION, target=f"webhooks/{source}",
                 status="succeeded" if results and ok == len(results) else "failed",
                 counts={"hooks": len(results), "verified": ok},
                 details={"url": url, "hooks": results})
