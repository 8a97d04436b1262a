"""`talentvault audit`: questions to the audit trail.

    talentvault audit reads --profile-id 42     who looked at this person's records, and when
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

audit_app = typer.Typer(help="Questions to the audit trail (audit.events).",
                        no_args_is_help=True)


@audit_app.callback()
def _audit() -> None:
    """Questions to the audit trail (audit.events)."""


@audit_app.command("reads")
def reads_command(
    profile_id: Annotated[int | None, typer.Option(
        "--profile-id", help="The person's profile id (identity.candidate_profiles).")] = None,
    subject: Annotated[list[str] | None, typer.Option(
        "--subject", help="A record id instead, as kind:id (keap_contact:17, "
        "greenhouse_candidate:9, highlevel_contact:ab1); repeatable.")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only events at or after this day or time (YYYY-MM-DD[THH:MM:SSZ]).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Who looked at a person's records, and when: every SQL query whose result showed one of
    the person's ids (profile, Greenhouse candidates and applications, matched Keap contacts),
    restore previews and exports; then the reads of person data that cannot be attributed (no
    id in the result, or more people than the trail lists one by one)."""
    import duckdb

    from assets.catalog.views import open_catalog
    from orchestration.config import data_root
    from orchestration.storage.read_audit import person_subjects, reads_of

    if profile_id is None and not subject:
        typer.echo("error: give --profile-id ID or --subject kind:id", err=True)
        raise typer.Exit(2)
    bad = [s for s in subject or [] if ":" not in s or not s.split(":", 1)[1]]
    if bad:
        typer.echo(f"error: --subject {bad[0]!r} is not kind:id (e.g. keap_contact:17)", err=True)
        raise typer.Exit(2)
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        typer.echo(f"error: --since {since!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    try:
        con = open_catalog(data_root())
        ids = sorted(set(subject or []) | set(
            person_subjects(con, profile_id) if profile_id is not None else []))
        seen, maybe = reads_of(con, ids, start)
    except duckdb.Error as e:
        typer.echo(f"error: cannot read the audit trail: {str(e).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        for kind, rows in (("read", seen), ("unattributed", maybe)):
            for row in rows:
                typer.echo(json.dumps({"kind": kind, **row}, default=str, sort_keys=True))
        return
    typer.echo(f"ids of this person: {', '.join(ids)}")
    typer.echo(f"{len(seen)} event(s) showed them:")
    for row in seen:
        typer.echo(f"  {row['at']:%Y-%m-%d %H:%M:%S}Z  {row['action']:<16} {row['actor']:<24} "
                   f"{row['target']}  rows={row['counts'].get('rows', '-')}  "
                   f"ids={','.join(row['matched'])}")
    typer.echo(f"{len(maybe)} read(s) of person data that cannot be attributed to anyone (no id "
               "in the result, or too many people): they may have shown this person too"
               + (" (--json lists them)" if maybe else ""))
