"""`talentvault sandbox ...`: the built-in sandbox's commands (serve, init, tick, load, stop,
status). The one product module that may reach past the sandbox's entry points (process.py,
credentials.py) into its world, store and fixtures: these commands exist to manage them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.config import DEFAULT_SANDBOX_PORT, sandbox_dir

sandbox_app = typer.Typer(
    help="The built-in sandbox: local emulators of the Greenhouse, Keap and HighLevel APIs "
    "over a synthetic recruiting world.",
    no_args_is_help=True,
)
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Sandbox folder (default: $TALENTVAULT_DATA_DIR/sandbox)."),
]


def _dir(data_dir: Path | None) -> Path:
    return (data_dir or sandbox_dir()).resolve()


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = DEFAULT_SANDBOX_PORT,
    data_dir: DataDir = None,
    faults: Annotated[str | None, typer.Option(
        envvar="TALENTVAULT_SANDBOX_FAULTS",
        help="Fault rates, e.g. 'keap:500=0.1,drop=0.05;*:429=0.02'. Kinds: 429, "
        "429_no_retry_after, 429_retry_after_zero, 500, 502, 503, slow, drop, malformed, "
        "expired_token.")] = None,
    rate_limits: Annotated[bool, typer.Option(
        help="Enforce the vendors' published rate limits (off for benchmarks).")] = True,
    token_ttl: Annotated[float, typer.Option(
        help="Lifetime of issued access tokens, seconds.")] = 3600.0,
    candidates: Annotated[int, typer.Option(
        help="World size to generate when the folder holds no world yet.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of a world generated at start.")] = 42,
) -> None:
    """Serve the three emulated APIs on localhost (generates a world first if there is none).

    Base URLs: http://127.0.0.1:PORT/greenhouse (Harvest v3), /keap (Keap REST v2 under
    /keap/crm/rest/v2), /highlevel (LeadConnector v2), and /_sandbox (admin)."""
    from sandbox import process
    from sandbox.world import generate as world

    folder = _dir(data_dir)
    world.ensure(folder, candidates=candidates, seed=seed)
    typer.echo(f"sandbox serving {folder} on http://127.0.0.1:{port}", err=True)
    process.serve(folder, port=port, faults=faults, rate_limits=rate_limits,
                  token_ttl_seconds=token_ttl)


@sandbox_app.command("init")
def sandbox_init(
    candidates: Annotated[int, typer.Option(help="How many ATS candidates.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same world.")] = 42,
    start: Annotated[str, typer.Option(help="Simulated date the world starts at.")]
    = "2026-01-05",
    data_dir: DataDir = None,
) -> None:
    """Generate a new synthetic recruiting world (replaces the current one)."""
    from sandbox.world import generate as world

    summary = world.generate(_dir(data_dir), candidates=candidates, seed=seed, start=start)
    typer.echo(json.dumps(summary, indent=2))


@sandbox_app.command("tick")
def sandbox_tick(
    days: Annotated[int, typer.Option(help="Days of recruiting life to play.")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Play N days: applications, stage moves, offers, hires, merges, deletions, CRM edits."""
    from sandbox.store import Store, iso
    from sandbox.world import life

    try:
        store = Store(_dir(data_dir), create=False)
    except FileNotFoundError as e:    # its message names the folder and `sandbox init`
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    summary = life.tick(store, days=days)
    typer.echo(json.dumps({"now": iso(store.now()), "summary": summary}, indent=2))


@sandbox_app.command("load")
def sandbox_load(
    folder: Annotated[Path, typer.Argument(help="Fixture folder: greenhouse/, keap/, "
                                           "highlevel/ with <entity>.jsonl files.")],
    data_dir: DataDir = None,
) -> None:
    """Replace the world with JSONL fixtures in the vendors' own JSON shapes."""
    from sandbox import fixtures

    try:
        summary = fixtures.load(_dir(data_dir), folder)
    except fixtures.FixtureError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(json.dumps(summary, indent=2))


@sandbox_app.command("stop")
def sandbox_stop(data_dir: DataDir = None) -> None:
    """Stop a sandbox server that `talentvault demo` started in the background."""
    from sandbox import process

    stopped = process.stop_background(_dir(data_dir))
    typer.echo("sandbox stopped" if stopped else "no background sandbox was running")


@sandbox_app.command("status")
def sandbox_status(data_dir: DataDir = None) -> None:
    """The simulated clock and record counts of the world."""
    from sandbox.store import Store, iso

    store = Store(_dir(data_dir), create=False)
    typer.echo(json.dumps({"now": iso(store.now()), "seed": store.get_meta("seed"),
                           "counts": store.counts()}, indent=2))
