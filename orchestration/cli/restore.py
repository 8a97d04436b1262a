"""`talentvault restore preview|apply`: point-in-time restore of Keap and HighLevel
(assets/recovery/restore/: plan.py, apply.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestration.config import data_root

restore_app = typer.Typer(help="Restore Keap or HighLevel records from the backups: preview "
                          "first, then apply the saved plan.", no_args_is_help=True)


ROOT_OPTION = typer.Option(None, "--root", help="data root (default TALENTVAULT_DATA_DIR)")


def _split(text: str | None) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] if text else None


@restore_app.command("preview")
def preview_cmd(
    source: str = typer.Option(..., "--source", help="keap or highlevel"),
    as_of: str = typer.Option(..., "--as-of", help="point in time, e.g. 2025-11-20T18:00:00Z"),
    ids: str = typer.Option(None, "--ids", help="comma-separated record ids"),
    tag: str = typer.Option(None, "--tag", help="records carrying this tag (name)"),
    where: str = typer.Option(None, "--where",
                              help="SQL condition over the backup view's columns"),
    fields: str = typer.Option(None, "--fields",
                               help="only restore these fields (a,b); `notes`, `tasks` (and "
                               "HighLevel `opportunities`) name those records"),
    mode: str = typer.Option("create-missing,update-existing", "--mode",
                             help="create-missing,update-existing,delete-new"),
    show_values: bool = typer.Option(False, "--show-values",
                                     help="show personal values instead of masking them "
                                     "(on screen only; never saved)"),
    root: Path = ROOT_OPTION,
) -> None:
    """Show what a restore would change, and save it as a plan. Writes nothing to the CRM."""
    from assets.recovery.restore.plan import Selection, preview

    try:
        plan = preview(root or data_root(), source, as_of,
                       Selection(ids=_split(ids), tag=tag, where=where),
                       fields=_split(fields), modes=_split(mode), show_values=show_values)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(plan.display or plan.markdown)
    typer.echo(f"\nplan id: {plan.plan_id}")


@restore_app.command("apply")
def apply_cmd(
    plan_id: str = typer.Argument(..., help="the id `restore preview` printed"),
    root: Path = ROOT_OPTION,
) -> None:
    """Apply a saved plan exactly; refuses if the live records it touches changed since."""
    from assets.recovery.restore.apply import RestoreRefused, apply

    try:
        counts = apply(root or data_root(), plan_id)
    except RestoreRefused as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(3) from e
    except FileNotFoundError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    for key, value in sorted(counts.items()):
        typer.echo(f"{key}: {value}")
    failed = counts.get("failed_retryable", 0) + counts.get("failed_permanent", 0)
    if failed:
        typer.echo(f"{failed} writes failed: run `restore apply {plan_id}` again to retry "
                   "(what succeeded is skipped)", err=True)
        raise typer.Exit(1)
