"""A readable summary of a Keap changeset partition, before anything is written.

- `markdown(preview)`: for the Dagster UI (counts per action, fields touched, a sample by
  profile and contact id, conflicts): ids, field names and counts, never a value.
- `render(preview)`: the terminal view of `talentvault sync preview [--limit N] [--date D]`
  (orchestration/cli/sync.py), which also shows each changed value masked (first character and
  length: `A…(4)`), enough to see that a value changes without showing personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from assets.sync.changeset.state import CHANGESET, SOURCE
from orchestration.storage.derived import partition_dir, partition_glob, read_manifest
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path

REJECTS = "keap_rejects"

ACTIONS = ("create", "update", "tag_add", "tag_remove")
MASK = ("CASE WHEN e.value IS NULL THEN '∅ (cleared)' "
        "ELSE left(e.value, 1) || '…(' || length(e.value) || ')' END")


@dataclass
class Preview:
    day: str
    counts: dict[str, int] = field(default_factory=dict)
    fields_touched: dict[str, int] = field(default_factory=dict)
    tags_touched: list[tuple[str, str, int]] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[tuple[int, str | None, str]] = field(default_factory=list)
    # changes not sent because Keap would refuse them: (profile, contact, action, Keap field,
    # scope, reason); `counts["rejected"]` has the total
    rejects: list[tuple[int, str | None, str, str, str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.get(a, 0) for a in ACTIONS)


def from_connection(con: duckdb.DuckDBPyConnection, day: str, limit: int = 10,
                    relation: str = "changeset", extra: dict[str, Any] | None = None,
                    rejects: str | None = None) -> Preview:
    """The preview of the changeset rows in `relation` (a table or a subquery), and of the
    reject list in `rejects` (same; None: no reject list)."""
    rel = relation if relation.isidentifier() else f"({relation})"
    p = Preview(day, extra=dict(extra or {}))
    _rejects(con, p, rejects, limit)
    return _changes(con, p, rel, limit)


def _rejects(con: duckdb.DuckDBPyConnection, p: Preview, relation: str | None,
             limit: int) -> None:
    if relation is None:
        p.counts["rejected"] = 0
        return
    rel = relation if relation.isidentifier() else f"({relation})"
    p.counts["rejected"] = con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
    p.rejects = con.execute(f"""
        SELECT profile_id, contact_id, action, keap_field, scope, reason FROM {rel}
        ORDER BY scope = 'field', profile_id, keap_field
        LIMIT {max(int(limit), 10)}""").fetchall()


def _changes(con: duckdb.DuckDBPyConnection, p: Preview, rel: str, limit: int) -> Preview:
    p.counts |= {a: 0 for a in ACTIONS} | dict(con.execute(
        f"SELECT action, count(*) FROM {rel} GROUP BY action").fetchall())
    p.fields_touched = dict(con.execute(f"""
        SELECT f, count(*) FROM (SELECT unnest(fields) AS f FROM {rel}
                                 WHERE action IN ('create', 'update'))
        GROUP BY f ORDER BY count(*) DESC, f""").fetchall())
    p.tags_touched = con.execute(f"""
        SELECT tag, action, count(*) FROM {rel} WHERE tag IS NOT NULL
        GROUP BY ALL ORDER BY count(*) DESC, tag, action LIMIT 20""").fetchall()
    rows = con.execute(f"""
        WITH s AS (
            SELECT *, row_number() OVER (PARTITION BY action ORDER BY profile_id, tag) AS rn
            FROM {rel})
        SELECT action, profile_id, contact_id, fields, tag, tag_id, depends_on, conflict,
               CASE WHEN field_values IS NULL THEN NULL ELSE list_transform(
                   map_entries(field_values), lambda e: e.key || '=' || {MASK}) END AS masked,
               update_mask
        FROM s WHERE rn <= greatest(1, ceil({int(limit)} / 4))
        ORDER BY rn, CASE action WHEN 'create' THEN 0 WHEN 'update' THEN 1
                               WHEN 'tag_remove' THEN 2 ELSE 3 END
        LIMIT {int(limit)}""").fetchall()
    keys = ("action", "profile_id", "contact_id", "fields", "tag", "tag_id", "depends_on",
            "conflict", "masked", "update_mask")
    p.sample = [dict(zip(keys, r, strict=True)) for r in rows]
    p.conflicts = con.execute(f"""
        SELECT profile_id, contact_id, conflict FROM {rel} WHERE conflict IS NOT NULL
        ORDER BY profile_id LIMIT {max(int(limit), 10)}""").fetchall()
    p.counts["conflicts"] = con.execute(
        f"SELECT count(*) FROM {rel} WHERE conflict IS NOT NULL").fetchone()[0]
    return p


def load(root: Path, day: str | None = None, limit: int = 20) -> Preview:
    """The preview of partition `day` (default: the latest) of sync/keap_changeset."""
    day = day or latest_day(root)
    if day is None or read_manifest(root, CHANGESET, day, SOURCE) is None:
        what = f"partition {day}" if day else "any partition"
        raise FileNotFoundError(f"sync/keap_changeset has no {what} under {root}: materialize "
                                "sync/keap_changeset for that day first")
    manifest = read_manifest(root, CHANGESET, day, SOURCE) or {}
    rejects = ("SELECT * FROM read_parquet("
               f"'{duck_path(partition_glob(root, REJECTS, day, SOURCE))}')"
               if read_manifest(root, REJECTS, day, SOURCE) is not None else None)
    con = connect_duckdb()
    try:
        if manifest.get("rows", 0):
            rel = ("SELECT * FROM read_parquet("
                   f"'{duck_path(partition_glob(root, CHANGESET, day, SOURCE))}')")
            return from_connection(con, day, limit, rel, extra=manifest.get("counts"),
                                   rejects=rejects)
        p = Preview(day, counts={a: 0 for a in ACTIONS} | {"conflicts": 0},
                    extra=manifest.get("counts") or {})
        _rejects(con, p, rejects, limit)
        return p
    finally:
        con.close()


def latest_day(root: Path) -> str | None:
    base = partition_dir(root, CHANGESET, "x", SOURCE).parent
    days = sorted(d.name.split("=", 1)[1] for d in base.glob("snapshot_date=*")
                  if (d / "_manifest.json").exists()) if base.is_dir() else []
    return days[-1] if days else None


def _skipped(p: Preview) -> str:
    dead = p.extra.get("skipped_dead_letter", 0)
    shared = p.extra.get("skipped_shared_contact", 0)
    kept = p.extra.get("fields_kept_keap_wins", 0)
    return (f"skipped: {dead} dead-lettered change(s), {shared} profile(s) whose contact "
            f"another profile holds; {kept} field(s) kept: set in Keap outside the sync "
            "(keap_wins)")


def markdown(p: Preview) -> str:
    """For the Dagster UI: ids, field and tag names, counts; no values."""
    if p.total == 0:
        return f"**{p.day}: nothing to change in Keap.**\n\n{_skipped(p)}" + _rejects_md(p)
    lines = [f"**{p.day}: {p.total} change(s)**", "",
             "| create | update | tag add | tag remove | with a conflict note |",
             "|---|---|---|---|---|",
             f"| {p.counts['create']} | {p.counts['update']} | {p.counts['tag_add']} | "
             f"{p.counts['tag_remove']} | {p.counts.get('conflicts', 0)} |", "", _skipped(p)]
    if p.fields_touched:
        lines += ["", "| field | changes |", "|---|---|"]
        lines += [f"| {f} | {n} |" for f, n in p.fields_touched.items()]
    if p.tags_touched:
        lines += ["", "| tag | action | contacts |", "|---|---|---|"]
        lines += [f"| {t} | {a} | {n} |" for t, a, n in p.tags_touched]
    lines += ["", "| action | profile | contact | fields / tag | note |", "|---|---|---|---|---|"]
    for r in p.sample:
        what = r["tag"] if r["tag"] else ", ".join(r["fields"] or [])
        contact = r["contact_id"] or ("(new)" if r["action"] == "create" else "(being created)")
        note = (r["conflict"] or "").replace("|", "/")
        lines.append(f"| {r['action']} | {r['profile_id']} | {contact} | {what} | {note} |")
    return "\n".join(lines) + _rejects_md(p)


def _rejects_md(p: Preview) -> str:
    if not p.counts.get("rejected"):
        return ""
    lines = ["", "", f"**{p.counts['rejected']} change(s) not sent: Keap would refuse them** "
             "(all in `sync.keap_rejects`)", "",
             "| profile | contact | action | Keap field | not sent | reason |",
             "|---|---|---|---|---|---|"]
    for profile_id, contact_id, action, keap_field, scope, reason in p.rejects:
        what = "the whole contact" if scope == "contact" else "this field"
        lines.append(f"| {profile_id} | {contact_id or '(new)'} | {action} | {keap_field} | "
                     f"{what} | {reason.replace('|', '/')} |")
    return "\n".join(lines)


def render(p: Preview) -> None:
    """Print the preview to the terminal (rich tables), values masked."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]Keap changeset {p.day}[/bold]: {p.total} change(s)")
    counts = Table("create", "update", "tag add", "tag remove", "conflict notes")
    counts.add_row(*(str(p.counts.get(k, 0)) for k in (*ACTIONS, "conflicts")))
    console.print(counts)
    console.print(_skipped(p))
    if p.fields_touched:
        t = Table("field", "changes", title="fields touched")
        for f, n in p.fields_touched.items():
            t.add_row(f, str(n))
        console.print(t)
    if p.tags_touched:
        t = Table("tag", "action", "contacts", title="tags touched")
        for tag, action, n in p.tags_touched:
            t.add_row(tag, action, str(n))
        console.print(t)
    if p.sample:
        t = Table("action", "profile", "contact", "changes (values masked)", "note",
                  title=f"sample ({len(p.sample)})")
        for r in p.sample:
            if r["tag"]:
                what = f"{r['tag']} (tag id {r['tag_id'] or 'new'})"
            else:
                what = ", ".join(r["masked"] or r["fields"] or [])
            contact = r["contact_id"] or ("(new)" if r["action"] == "create"
                                          else "(being created)")
            t.add_row(r["action"], str(r["profile_id"]), contact, what, r["conflict"] or "")
        console.print(t)
    if p.conflicts:
        t = Table("profile", "contact", "note", title="conflict notes")
        for profile_id, contact_id, note in p.conflicts:
            t.add_row(str(profile_id), contact_id or "(new)", note)
        console.print(t)
    if p.rejects:
        t = Table("profile", "contact", "action", "Keap field", "not sent", "reason",
                  title=f"not sent, Keap would refuse them ({p.counts['rejected']}; "
                        "all in sync.keap_rejects)")
        for profile_id, contact_id, action, keap_field, scope, reason in p.rejects:
            t.add_row(str(profile_id), contact_id or "(new)", action, keap_field,
                      "the whole contact" if scope == "contact" else "this field", reason)
        console.print(t)
