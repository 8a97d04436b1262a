"""`talentvault status`: the first command an on-call person runs (orchestration/status.py
gathers; this renders). Exit 0: nothing needs a person; 1: something does (listed last)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def check_counts(group: dict[str, Any]) -> str:
    """'N passed, N failed, N warnings: ...': a failed WARN check is a warning, not a failure
    (it holds nothing and pages no one)."""
    errors = [f for f in group["failed"] if f["severity"] == "ERROR"]
    warnings = [f for f in group["failed"] if f["severity"] != "ERROR"]
    listed = ", ".join(f"{f['check']} ({f['partition'] or '-'}, {f['severity']})"
                       for f in (errors + warnings)[:5])
    warned = f", {len(warnings)} warnings" if warnings else ""
    listed = f": {listed}" if listed else ""
    return f"{group['passed']} passed, {len(errors)} failed{warned}{listed}"


def source_lines(s: dict[str, Any], checks: dict[str, Any], creds: dict[str, Any]) -> list[str]:
    if s["day"] is None:
        head = "no whole day backed up yet"
    else:
        head = (f"{s['day']} ({s['modes']}), {_n(s['rows'])} rows, age {s['age_hours']} h of "
                f"RPO {s['rpo_hours']:g} h")
    verdict = "NO BACKUP" if s["day"] is None else "LATE" if s["late"] else "ok"
    lines = [f"{s['source']:<11} {head}  {verdict}"]
    lagging = [e for e in s["entities"] if e["day"] != s["day"] or e["open_day"]]
    for e in lagging:
        lines.append(f"{'':<11}   {e['entity']}: whole day {e['day'] or 'none'}"
                     + (f", open day {e['open_day']} in progress" if e["open_day"] else ""))
    group = checks.get(s["source"])
    lines.append(f"{'':<11} checks: {check_counts(group)}" if group
                 else f"{'':<11} checks: none recorded")
    present = ", ".join(creds["present"]) or "none"
    missing = "; missing " + "; ".join(creds["missing"]) if creds["missing"] else ""
    lines.append(f"{'':<11} settings present: {present}{missing}")
    return lines


def render(st: dict[str, Any]) -> str:
    mode = st["mode"] + ("" if st["setting"] else " (TALENTVAULT_MODE unset)")
    out = [f"talentvault status: mode {mode}, data {st['data_root']}, "
           f"instance {st['instance'] or 'none (set DAGSTER_HOME)'}",
           f"now {st['now'][:16]} UTC by the {st['clock']} clock", ""]
    for s in st["sources"]:
        out += source_lines(s, st["checks"], st["credentials"][s["source"]])
    other = {k: v for k, v in st["checks"].items() if k not in st["credentials"]}
    for group, c in sorted(other.items()):
        out.append(f"{group:<11} checks: {check_counts(c)}")
    out.append("")
    p = st["push"]
    if p:
        out.append(f"last push   {p['day']} (run {p['run_id'][:8]}): {_n(p['sent'])} sent, "
                   f"{_n(p['succeeded'])} succeeded, {_n(p['failed'])} failed, "
                   f"{_n(p['failed_permanent'])} new dead letters ({_n(p['dead_letters_total'])}"
                   f" in all), {_n(p['rejects'])} rejects" + (" [dry run]" if p["dry_run"] else ""))
    else:
        out.append("last push   none yet")
    v = st["verify"]
    out.append(f"verify      {v['at'][:16]} {v['status']}: {_n(v['counts'].get('files'))} files, "
               f"{_n(v['counts'].get('damaged'))} damaged" if v else "verify      never run")
    runs = st["failed_runs"]
    out.append("runs        " + (", ".join(f"{r['job']} failed (run {r['run_id'][:8]})"
                                           for r in runs) if runs
                                 else f"the latest run of each of {st['runs_for']} jobs and "
                                 "assets succeeded" if st["runs_for"] else "none yet"))
    pr = st["protection"]
    where = pr["primary"]
    out.append("protection  " + " · ".join([
        f"primary {where['bucket']} (cache {where['cache']})" if "bucket" in where
        else f"primary {where['folder']}",
        f"encrypted (key id {pr['encryption_key_id']})" if pr["encryption_key_id"]
        else "not encrypted (TALENTVAULT_ENCRYPTION_KEY)",
        f"replica {pr['replica']}" if pr["replica"]
        else "no replica (TALENTVAULT_REPLICA_URL or _DIR)",
        f"seals {pr['seals']}"]))
    sb = st["sandbox"]
    out.append(f"sandbox     {'running' if sb['running'] else 'not running'} at {sb['url']}")
    out.append("")
    if st["needs_human"]:
        out += ["NEEDS A HUMAN:", *[f"  - {n}" for n in st["needs_human"]]]
    else:
        out.append("nothing needs a human")
    return "\n".join(out)


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """One screen per source: last backup day and mode, rows, age against the RPO, check
    health; the last Keap push, the last verify, failed runs; the mode, which credentials are
    present (never their values), the sandbox. Exits 1 when something needs a person."""
    from orchestration.status import install_status

    st = install_status()
    typer.echo(json.dumps(st, indent=2, default=str) if as_json else render(st))
    if st["needs_human"]:
        raise typer.Exit(1)
