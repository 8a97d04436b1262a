"""`talentvault webhooks ...`: serve the receiver, register hooks, look at the inbox."""

from __future__ import annotations

import json
from typing import Annotated

import typer

webhooks_app = typer.Typer(
    help="Inbound vendor webhooks: the receiver, hook registration and the inbox.",
    no_args_is_help=True,
)

Source = Annotated[str, typer.Option("--source", help="greenhouse | keap | highlevel")]


@webhooks_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8787,
) -> None:
    """Run the receiver (POST /webhooks/greenhouse | keap | highlevel, GET /health). Secrets
    from GREENHOUSE_WEBHOOK_SECRET and HIGHLEVEL_WEBHOOK_PUBLIC_KEY; events go to the inbox
    under $TALENTVAULT_DATA_DIR/webhooks."""
    import logging

    import uvicorn

    from orchestration.webhooks.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    typer.echo(f"webhook receiver on http://{host}:{port}", err=True)
    # one process: the inbox's dedup set and seq live in it (see inbox.py)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=False)


@webhooks_app.command("register")
def register(
    source: Source,
    url: Annotated[str, typer.Option(help="The receiver's public URL for this vendor, e.g. "
                                     "https://hooks.example.com/webhooks/keap.")],
    events: Annotated[list[str] | None, typer.Option(
        "--events", help="Keap event keys (repeat the option); default: contact.add|edit|"
        "delete, contactGroup.applied|removed.")] = None,
) -> None:
    """Subscribe the receiver to a vendor's webhooks. Keap: one REST hook per event key,
    created and verified through the Keap API (the receiver must be running on URL against
    this data root). Greenhouse / HighLevel: set in the vendor's web UI (against the sandbox,
    through its admin endpoints). Recorded in the audit trail."""
    import dagster as dg

    from orchestration.config import data_root
    from orchestration.http import ApiError
    from orchestration.resources import build_resources
    from orchestration.webhooks.register import (
        RegistrationError,
        register_keap,
        register_sandbox,
    )

    root = data_root()
    try:
        if source == "keap":
            with dg.build_resources({"keap": build_resources()["keap"]}) as res:
                client = res.keap.open()
                try:
                    results = register_keap(root, client, url, events)
                finally:
                    client.close()
        elif source in ("greenhouse", "highlevel"):
            results = register_sandbox(root, source, url)
        else:
            raise RegistrationError(f"unknown source {source!r}: greenhouse, keap or highlevel")
    except (RegistrationError, ApiError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps({"source": source, "url": url, "hooks": results}, indent=2))
    bad = [r for r in results
           if r["status"] not in ("Verified", "Active") and r["action"] != "not offered"]
    skipped = [r["event_key"] for r in results if r["action"] == "not offered"]
    if skipped:
        typer.echo(f"note: this Keap account offers no {', '.join(skipped)} hook: their "
                   "deletions are found by the id sweep (docs/webhooks.md)", err=True)
    if bad:
        names = ", ".join(r["event_key"] for r in bad)
        typer.echo(f"error: {len(bad)} hook(s) not verified ({names}): is the receiver "
                   "running at that URL, reachable from the vendor, and "
                   "using this data root?", err=True)
        raise typer.Exit(1)


@webhooks_app.command("unregister")
def unregister(
    url: Annotated[str, typer.Option(help="Delete every Keap hook pointing at this URL.")],
) -> None:
    """Delete Keap REST hooks of a URL (Greenhouse / HighLevel: remove them in the web UI)."""
    import dagster as dg

    from orchestration.resources import build_resources

    with dg.build_resources({"keap": build_resources()["keap"]}) as res:
        client = res.keap.open()
        try:
            gone = [h["key"] for h in client.list_hooks() if h.get("hookUrl") == url
                    and client.delete_hook(str(h["key"]))]
        finally:
            client.close()
    typer.echo(json.dumps({"deleted": gone}))


@webhooks_app.command("status")
def status() -> None:
    """What the inbox holds: events and rows per source and type, deletions, last received."""
    from orchestration.config import data_root
    from orchestration.webhooks.inbox import inbox_summary

    typer.echo(json.dumps(inbox_summary(data_root()), indent=2, default=str))


@webhooks_app.command("compact")
def compact() -> None:
    """Compact closed days of the inbox from JSONL to Parquet (the receiver also does it at
    each day's first event)."""
    from orchestration.config import data_root
    from orchestration.webhooks.inbox import Inbox

    typer.echo(json.dumps({"days_compacted": Inbox(data_root()).compact()}))
