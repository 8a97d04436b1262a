"""`talentvault sync ...`: the Keap sync's commands; `sync preview` shows what the next push
would change, values masked (assets/sync/preview.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

sync_app = typer.Typer(
    help="The Keap sync: preview the changeset before anything is written.",
    no_args_is_help=True,
)


@sync_app.callback()
def _sync() -> None:
    """The Keap sync."""


@sync_app.command("preview")
def preview_command(
    limit: Annotated[int, typer.Option("--limit", "-n", help="Sample rows to show.")] = 20,
    day: Annotated[str | None, typer.Option(
        "--date", help="Changeset day YYYY-MM-DD (default: the latest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Counts and sample as JSON.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="The UI's markdown.")] = False,
) -> None:
    """Show what the Keap sync will change (counts per action, fields and tags touched, a
    sample by contact id with values masked) before anything is written."""
    from assets.sync import preview
    from orchestration.config import data_root

    try:
        p = preview.load(data_root(), day, limit)
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    if as_json:
        sample = [{k: v for k, v in r.items() if k != "fields"} for r in p.sample]
        typer.echo(json.dumps({"day": p.day, "counts": p.counts,
                               "fields_touched": p.fields_touched, "skipped": p.extra,
                               "sample": sample,
                               "rejects": [dict(zip(("profile_id", "contact_id", "action",
                                                     "keap_field", "scope", "reason"), r,
                                                    strict=True)) for r in p.rejects]},
                              indent=2, default=str))
    elif as_markdown:
        typer.echo(preview.markdown(p))
    else:
        preview.render(p)

