"""Restore preview: what a restore would change, saved as a plan. Writes nothing live.

    <root>/restore/plans/<plan_id>/plan.json      id, source, as_of, selection, modes, fields,
                                                  counts, live fingerprint, created_at
    <root>/restore/plans/<plan_id>/changes.parquet one row per change (ids, field names, values
                                                  of non-personal fields only, value hashes)
    <root>/restore/plans/<plan_id>/preview.md     the summary a person reads

The plan holds no personal values: `apply` takes the values to write from the backup again and
checks them against the hashes in the plan, so a person erased after the preview is not written
back, and the plan folder never needs an erasure of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from assets.catalog.read_only import check_read_only
from assets.catalog.views import open_catalog
from assets.identity import suppressed
from assets.recovery.restore import live as restore_live
from assets.recovery.restore.children import child_changes, child_report
from assets.recovery.restore.config import (
    DOC_NAME,
    ConfigReport,
    config_changes,
    config_report,
    load_config,
)
from assets.recovery.restore.diff import contact_changes, opportunity_changes
from assets.recovery.restore.fields import MACROS, SPECS, check_fields
from assets.recovery.restore.hl_location import (
    load_location,
    location_changes,
    location_lines,
)
from assets.recovery.restore.keap_config import (
    keap_config_changes,
    keap_config_report,
    load_keap_config,
)
from assets.recovery.restore.ledger import ledger_relation
from orchestration.storage import audit, primary
from orchestration.storage.parquet import write_query
from orchestration.storage.read_audit import MAX_SUBJECTS
from orchestration.times import iso, parse_ts

if TYPE_CHECKING:
    from orchestration.resources import CrmClient

MODES = ("create-missing", "update-existing", "delete-new")
DEFAULT_MODES = ("create-missing", "update-existing")
SHOWN = 50   # change rows listed in the markdown summary


@dataclass
class Selection:
    """Which records: ids (backup ids, or live ids of records created after T), a tag name,
    or a SQL condition over the backup view's columns (`<source>.contacts`). None: all."""

    ids: list[str] | None = None
    tag: str | None = None
    where: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("ids", "tag", "where") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError("choose one selection: --ids, --tag or --where")
        if self.where and ";" in self.where:
            raise ValueError("--where takes one SQL condition (no ';')")

    @property
    def everything(self) -> bool:
        return not (self.ids or self.tag or self.where)


@dataclass
class Plan:
    plan_id: str
    source: str
    as_of: str
    selection: dict[str, Any]
    modes: list[str]
    fields: list[str] | None
    counts: dict[str, int]
    live_fingerprint: str
    created_at: str
    actor: str = ""
    # the newest update time of the live records read (the vendor's clock): anything a later
    # apply creates is stamped after it (HighLevel: finding a create whose reply was lost)
    live_watermark: str = ""
    markdown: str = field(default="", repr=False)     # saved: personal values masked
    display: str = field(default="", repr=False)      # with values (--show-values): not saved
    # HighLevel configuration to rebuild by hand (saved as configuration.md in the plan folder)
    config: ConfigReport = field(default_factory=ConfigReport, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()
                if k not in ("markdown", "display", "config")}


def plans_dir(root: Path) -> Path:
    return Path(root) / "restore" / "plans"


def plan_dir(root: Path, plan_id: str) -> Path:
    return plans_dir(root) / plan_id


def load_plan(root: Path, plan_id: str) -> Plan:
    path = plan_dir(root, plan_id) / "plan.json"
    if not path.exists():
        raise FileNotFoundError(f"no restore plan {plan_id!r} under {plans_dir(root)}; run "
                                "`talentvault restore preview` first and use the id it prints")
    data = json.loads(path.read_text())
    md = plan_dir(root, plan_id) / "preview.md"
    return Plan(**data, markdown=md.read_text() if md.exists() else "")


def check_modes(modes: list[str] | None) -> list[str]:
    chosen = list(modes or DEFAULT_MODES)
    unknown = [m for m in chosen if m not in MODES]
    if unknown:
        raise ValueError(f"--mode: unknown {', '.join(unknown)}; use {', '.join(MODES)}")
    return sorted(set(chosen), key=MODES.index)


# -- the backup side -------------------------------------------------------------------------
def as_of_text(as_of: str | datetime) -> str:
    ts = as_of if isinstance(as_of, datetime) else parse_ts(str(as_of))
    return iso(ts)


def load_backup(con: duckdb.DuckDBPyConnection, root: Path, source: str, as_of: str,
                selection: Selection) -> dict[str, int]:
    """TEMP TABLEs backup_all / backup_sel (and the opportunities for HighLevel)."""
    view = f"{source}.contacts"
    exists = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND "
                         "view_name = 'contacts'", [source]).fetchone()[0]
    if not exists:
        raise ValueError(f"no backup of {source} contacts under {root}: run a backup first")
    # the first snapshot (a full one) shows the state at the end of its day: earlier points in
    # time are not known (records changed between then and that snapshot have no older version)
    first = con.execute(f"SELECT min(snapshot_date) + INTERVAL 1 DAY - INTERVAL 1 MILLISECOND "
                        f"FROM {view}_history").fetchone()[0]
    if first is not None and parse_ts(as_of) < first.replace(tzinfo=UTC):
        raise ValueError(f"--as-of {as_of} is before the first backup of {source} contacts "
                         f"(the end of {first.date()}): a restore can only go back to what "
                         "was backed up")
    counts = {"suppressed": 0}
    keep = suppressed.extraction_filter(root, source, "contacts")
    con.execute(f"CREATE OR REPLACE TEMP TABLE backup_raw AS "
                f"SELECT * FROM {view}_as_of(TIMESTAMPTZ '{as_of}')")
    cond = keep(con, "backup_raw") if keep else None
    con.execute(f"CREATE OR REPLACE TEMP TABLE backup_all AS SELECT * FROM backup_raw "
                f"{'WHERE ' + cond if cond else ''}")
    counts["suppressed"] = con.execute("SELECT (SELECT count(*) FROM backup_raw) - "
                                       "(SELECT count(*) FROM backup_all)").fetchone()[0]
    con.execute(f"CREATE OR REPLACE TEMP TABLE backup_sel AS SELECT * FROM backup_all "
                f"WHERE {selection_sql(con, source, as_of, selection, 'backup_all')}")
    if source == "highlevel":
        has_opps = con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = "
                               "'highlevel' AND view_name = 'opportunities'").fetchone()[0]
        src = (f"SELECT * FROM highlevel.opportunities_as_of(TIMESTAMPTZ '{as_of}')"
               if has_opps else "SELECT * FROM backup_all WHERE false")
        con.execute(f"CREATE OR REPLACE TEMP TABLE opp_raw AS {src}")
        keep_opp = suppressed.extraction_filter(root, "highlevel", "opportunities")
        cond = keep_opp(con, "opp_raw") if keep_opp and has_opps else None
        con.execute(f"CREATE OR REPLACE TEMP TABLE opp_backup_all AS SELECT * FROM opp_raw "
                    f"{'WHERE ' + cond if cond else ''}")
    return counts


def selection_sql(con: duckdb.DuckDBPyConnection, source: str, as_of: str,
                  selection: Selection, rel: str) -> str:
    """A condition over backup-row columns (used on backup and live rows alike)."""
    if selection.ids:
        ids = ", ".join("'" + str(i).replace("'", "''") + "'" for i in selection.ids)
        return f"id IN ({ids})"
    if selection.tag:
        name = selection.tag.strip().lower().replace("'", "''")
        if source == "highlevel":
            return (f"list_contains(list_transform(coalesce(tags, []), lambda t: lower(t)), "
                    f"'{name}')")
        tag_ids = keap_tag_ids(con, as_of, name)
        if not tag_ids:
            raise ValueError(f"--tag: the Keap backup has no tag named {selection.tag!r}")
        return "list_has_any(coalesce(tag_ids, []), [" + ", ".join(
            f"'{t}'" for t in tag_ids) + "])"
    if selection.where:
        check_read_only(con, f"SELECT id FROM {rel} WHERE {selection.where}")
        try:
            con.execute(f"SELECT count(*) FROM {rel} WHERE {selection.where}")
        except duckdb.Error as e:
            raise ValueError(f"--where does not work on the {source} contacts backup view: "
                             f"{e}") from e
        return f"({selection.where})"
    return "true"


def keap_tag_ids(con: duckdb.DuckDBPyConnection, as_of: str, name: str) -> list[str]:
    parts = []
    for view in ("keap.tags", f"keap.tags_as_of(TIMESTAMPTZ '{as_of}')"):
        parts.append(f"SELECT id FROM {view} WHERE lower(trim(name)) = '{name}'")
    try:
        return [r[0] for r in con.execute(" UNION ".join(parts)).fetchall()]
    except duckdb.CatalogException:
        return []


# -- the live side ---------------------------------------------------------------------------
def load_live(con: duckdb.DuckDBPyConnection, client: CrmClient, source: str, as_of: str,
              selection: Selection) -> None:
    """TEMP TABLEs live_all / live_sel (and opp_live_all): read through the API now."""
    ids = None
    if selection.ids:
        mapped = [r[0] for r in con.execute(
            "SELECT DISTINCT coalesce(im.live_id, s.id) FROM (SELECT unnest(?) AS id) s "
            "LEFT JOIN restore_idmap im ON im.source = ? AND im.entity = 'contacts' "
            "AND im.backup_id = s.id", [selection.ids, source]).fetchall()]
        ids = sorted(set(mapped) | set(selection.ids))
    live = (restore_live.keap_contacts(client, ids) if source == "keap"
            else restore_live.highlevel_contacts(client, ids))
    con.register("live_arrow", live)
    con.execute("CREATE OR REPLACE TEMP TABLE live_all AS SELECT * FROM live_arrow")
    con.unregister("live_arrow")
    cond = selection_sql(con, source, as_of, selection, "live_all")
    if selection.ids:
        cond = "id IN (SELECT unnest(?))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE live_sel AS SELECT * FROM live_all WHERE {cond}",
                [ids] if selection.ids else None)
    if source == "highlevel":
        opps = restore_live.highlevel_opportunities(client)
        con.register("opp_arrow", opps)
        con.execute("CREATE OR REPLACE TEMP TABLE opp_live_all AS SELECT * FROM opp_arrow")
        con.unregister("opp_arrow")


def live_fingerprint(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """sha256 over (id, update time) of every live record the preview compared."""
    rels = ["live_sel", "live_all WHERE id IN (SELECT live_id FROM sel)"]
    if source == "highlevel":
        rels.append("opp_live_all")
    union = " UNION ".join(f"SELECT id, CAST(_source_updated_at AS VARCHAR) AS v FROM {r}"
                           for r in rels)
    union += (" UNION SELECT entity || ':' || id, coalesce(CAST(_source_updated_at AS VARCHAR),"
              " live_version) FROM child_live")
    text = con.execute(f"SELECT coalesce(string_agg(id || '@' || coalesce(v, ''), ',' "
                       f"ORDER BY id), '') FROM ({union})").fetchone()[0]
    return hashlib.sha256(text.encode()).hexdigest()


def live_watermark(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """The newest `_source_updated_at` of the live records read, ISO text ('' if none)."""
    rels = ["live_all"] + (["opp_live_all"] if source == "highlevel" else [])
    union = " UNION ALL ".join(f"SELECT _source_updated_at AS t FROM {r}" for r in rels)
    # a note's update time, or its creation when that is its only time (HighLevel's dateAdded)
    union += " UNION ALL SELECT coalesce(_source_updated_at, created_at) FROM child_live"
    newest = con.execute(f"SELECT max(t) FROM ({union})").fetchone()[0]
    return iso(newest) if newest is not None else ""


# -- preview ---------------------------------------------------------------------------------
def compute(con: duckdb.DuckDBPyConnection, root: Path, client: CrmClient, source: str, as_of: str,
            selection: Selection, modes: list[str], fields: list[str] | None
            ) -> dict[str, int]:
    """Fill TEMP TABLE `changes` in `con` (an open catalog); returns side counts."""
    for stmt in MACROS:
        con.execute(stmt)
    ledger_relation(con, root)
    counts = load_backup(con, root, source, as_of, selection)
    load_live(con, client, source, as_of, selection)
    if source == "highlevel":      # before the diff: it reads configuration ids through it
        load_config(con, client, as_of)
        load_location(con, client, as_of)
    else:                          # Keap tags and custom fields, the same way
        load_keap_config(con, client, as_of)
    counts |= contact_changes(con, SPECS[source], as_of, set(modes), fields)
    if source == "keap":
        keap_config_changes(con, set(modes), selection.everything, fields)
    with_opps = source == "highlevel" and (fields is None or "opportunities" in fields)
    if with_opps:
        counts |= opportunity_changes(con, as_of, set(modes), selection.everything)
    if source == "highlevel":
        # custom fields come back when the values on them do
        config_modes = set(modes) if fields is None or {"customFields", "opportunities"} & set(
            fields) else set()
        counts |= config_changes(con, config_modes, selection.everything, with_opps)
        location_changes(con, set(modes) if fields is None else set(), selection.everything)
    # notes and tasks last: they hang on the contacts (and their recreations) diffed above
    counts |= child_changes(con, client, source, as_of, set(modes), fields, selection.everything)
    return counts


def change_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute("""SELECT entity, action, count(*), count(DISTINCT coalesce(backup_id,
                          live_id)) FROM changes GROUP BY ALL""").fetchall()
    out: dict[str, int] = {}
    for entity, action, n, records in rows:
        prefix = {"contacts": "", "custom_fields": "custom_field_", "tags": "tag_",
                  "custom_values": "custom_value_",
                  "tag_categories": "tag_category_", "notes": "note_",
                  "tasks": "task_"}.get(entity, "opportunity_")
        if action == "update":
            out[f"{prefix}update_records"] = records
            out[f"{prefix}update_fields"] = n
        else:
            out[f"{prefix}{action}"] = n
    return out


def preview(root: Path, source: str, as_of: str | datetime, selection: Selection | None = None,
            fields: list[str] | None = None, modes: list[str] | None = None, *,
            show_values: bool = False, client: CrmClient = None, run_id: str | None = None) -> Plan:
    """Compare the backup as of `as_of` with the live system and save the plan."""
    if source not in SPECS:
        raise ValueError(f"--source must be keap or highlevel, got {source!r}")
    root = Path(root)
    selection = selection or Selection()
    modes = check_modes(modes)
    fields = check_fields(source, fields)
    as_of = as_of_text(as_of)
    if selection.where:
        where_reads_only_backups(root, source, selection.where)
    own = client is None
    client = client or open_client(source)
    con = open_catalog(root)
    try:
        side = compute(con, root, client, source, as_of, selection, modes, fields)
        counts = {**change_counts(con), **side,
                  "backup_selected": con.execute("SELECT count(*) FROM backup_sel").fetchone()[0],
                  "live_read": con.execute("SELECT count(*) FROM live_all").fetchone()[0]}
        plan = Plan(plan_id=new_plan_id(), source=source, as_of=as_of,
                    selection={k: v for k, v in asdict(selection).items() if v},
                    modes=modes, fields=fields, counts=counts,
                    live_fingerprint=live_fingerprint(con, source),
                    created_at=iso(datetime.now(UTC)), actor=audit.actor(run_id),
                    live_watermark=live_watermark(con, source))
        report = config_report if source == "highlevel" else keap_config_report
        plan.config = report(con, str(plan_dir(root, plan.plan_id) / DOC_NAME))
        if source == "highlevel":
            plan.config.lines += location_lines(con)
        plan.markdown = markdown(con, plan, False)
        save(con, root, plan)
        if show_values:  # shown to whoever asked, never saved
            plan.display = markdown(con, plan, True)
        shown = [f"{source}_contact:{r[0]}" for r in con.execute(
            "SELECT DISTINCT coalesce(backup_id, live_id) FROM changes "
            "WHERE entity = 'contacts' AND coalesce(backup_id, live_id) IS NOT NULL").fetchall()]
    finally:
        con.close()
        if own:
            client.close()
    audit.record(root, "restore_preview", target=f"{source}/contacts", run_id=run_id,
                 plan_id=plan.plan_id, counts=plan.counts,
                 details={"as_of": as_of, "modes": modes, "fields": fields,
                          "selection": sorted(plan.selection), "show_values": show_values},
                 subjects=shown if len(shown) <= MAX_SUBJECTS else [])
    return plan


def where_reads_only_backups(root: Path, source: str, where: str) -> None:
    """`--where` is SQL from the person at the keyboard: it binds in the SQL door first, so it
    can read the backup files and nothing else on the host (a subquery of read_text(...) is
    refused there)."""
    from assets.catalog.sql_door import connect

    try:
        connect(root).execute(f"SELECT count(*) FROM (SELECT * FROM {source}.contacts LIMIT 0) "
                              f"WHERE {where}")
    except duckdb.PermissionException as e:
        raise ValueError(f"--where may read only the backup: {str(e).splitlines()[0]}") from e
    except duckdb.Error:
        pass    # reported with the view's own columns by selection_sql


def open_client(source: str) -> CrmClient:
    """The vendor's client as the Dagster runs get it: real credentials from the environment
    (`KEAP_*`, `HIGHLEVEL_*`), else the sandbox."""
    import dagster as dg

    from orchestration.resources import build_resources

    with dg.build_resources({source: build_resources()[source]}) as res:
        return getattr(res, source).open()


def new_plan_id() -> str:
    return f"rp-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def save(con: duckdb.DuckDBPyConnection, root: Path, plan: Plan) -> Path:
    """Write the plan folder atomically (a temp folder renamed into place)."""
    final = plan_dir(root, plan.plan_id)
    tmp = final.with_name(f".{plan.plan_id}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    write_query(con, """SELECT * REPLACE (
                        CASE WHEN personal THEN NULL ELSE old_value END AS old_value,
                        CASE WHEN personal THEN NULL ELSE new_value END AS new_value)
                    FROM changes ORDER BY entity, action, backup_id, live_id, field, tag""",
                tmp / "changes.parquet")
    (tmp / "plan.json").write_text(json.dumps(plan.to_json(), indent=2, sort_keys=True))
    (tmp / "preview.md").write_text(plan.markdown)
    if plan.config.document:
        (tmp / DOC_NAME).write_text(plan.config.document)
    os.replace(tmp, final)
    primary.sync_up(root)   # a bucket primary: a plan made here can be applied anywhere
    return final


def markdown(con: duckdb.DuckDBPyConnection, plan: Plan, show_values: bool) -> str:
    """Counts, then the first changes per record and field (personal values masked)."""
    c = plan.counts
    lines = [f"## Restore preview `{plan.plan_id}`", "",
             f"{plan.source} as of {plan.as_of}; modes {', '.join(plan.modes)}"
             + (f"; fields {', '.join(plan.fields)}" if plan.fields else ""), "",
             "| change | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(c.items())]
    mask = "NOT c.personal" if not show_values else "true"
    rows = con.execute(f"""
        SELECT c.entity, c.action, coalesce(c.backup_id, '-'), coalesce(c.live_id, '-'),
               coalesce(c.field, c.tag, ''),
               CASE WHEN {mask} THEN coalesce(c.old_value, '') ELSE '«masked»' END,
               CASE WHEN {mask} THEN coalesce(c.new_value, '') ELSE '«masked»' END
        FROM changes c
        ORDER BY c.entity, c.action, c.backup_id, c.live_id, c.field, c.tag
        LIMIT {SHOWN}""").fetchall()
    if rows:
        lines += ["", "| entity | action | backup id | live id | field / tag | live now | "
                  "restored |", "|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(str(v).replace("|", "\\|")[:60] for v in r) + " |"
                  for r in rows]
        total = con.execute("SELECT count(*) FROM changes").fetchone()[0]
        if total > SHOWN:
            lines.append(f"\n… and {total - SHOWN} more (changes.parquet of the plan).")
    elif not plan.config.lines:
        lines += ["", "Nothing to do: the live system already matches the backup."]
    lines += plan.config.lines
    lines += child_report(con, plan.source, plan.counts)
    lines += ["", f"Apply with `talentvault restore apply {plan.plan_id}`."]
    return "\n".join(lines)
