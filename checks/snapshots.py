"""Data-quality checks on the snapshot partition an extract asset has just written.

Every extract asset declares these checks (in-asset `check_specs`) and runs them right after its
partition lands: DuckDB reads the partition (and, for references, the backed-up state of the
entities it points at), builds small frames holding only the columns each rule reads, and Great
Expectations judges them (`checks/gx.py`). The rules per entity are data in
`checks/<source>/rules.py`; the meaning of each check is in `docs/checks.md`.

Severity: the structural checks of entities the Keap push reads (`EntityRules.guards_push`) are
ERROR and blocking: a failing partition stops the sync downstream. Everything else warns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from checks import gx
from checks.greenhouse.rules import RULES as GREENHOUSE
from checks.highlevel.rules import RULES as HIGHLEVEL
from checks.keap.rules import RULES as KEAP
from checks.rules import (
    ENUMERATIONS_KNOWN,
    INCREMENTALS_CONTIGUOUS,
    PRIMARY_KEY_UNIQUE,
    REFERENCES_RESOLVE,
    REQUIRED_FIELDS_PRESENT,
    ROW_COUNT_MATCHES_MANIFEST,
    TIMESTAMPS_NOT_IN_FUTURE,
    TIMESTAMPS_PARSEABLE,
    EntityRules,
    Enum,
    Ref,
)
from orchestration.clock import reference_clock
from orchestration.resources import VendorClient, VendorResource
from orchestration.storage import parquet
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path
from orchestration.storage.schema import TS, EntitySchema
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.state_sql import history_sql, state_sql
from orchestration.times import iso

__all__ = [
    "ENUMERATIONS_KNOWN", "INCREMENTALS_CONTIGUOUS", "PRIMARY_KEY_UNIQUE", "REFERENCES_RESOLVE",
    "REQUIRED_FIELDS_PRESENT", "ROW_COUNT_MATCHES_MANIFEST", "TIMESTAMPS_NOT_IN_FUTURE",
    "TIMESTAMPS_PARSEABLE", "RULES", "check_specs", "evaluate_partition", "run_checks",
]

RULES: dict[tuple[str, str], EntityRules] = {
    **{("greenhouse", e): r for e, r in GREENHOUSE.items()},
    **{("keap", e): r for e, r in KEAP.items()},
    **{("highlevel", e): r for e, r in HIGHLEVEL.items()},
}

# Clocks drift; a vendor's clock may run a little ahead of ours.
FUTURE_SKEW = timedelta(minutes=5)
# Checks that observe the data rather than its structure: they never block.
OBSERVATIONS = frozenset({TIMESTAMPS_NOT_IN_FUTURE})

DESCRIPTIONS = {
    PRIMARY_KEY_UNIQUE: "One row per record version in the partition: (`id`, "
    "`_source_updated_at`) is unique.",
    REQUIRED_FIELDS_PRESENT: "Every upserted record carries the fields the product relies on.",
    TIMESTAMPS_PARSEABLE: "Every timestamp (and date) the vendor sent could be read.",
    TIMESTAMPS_NOT_IN_FUTURE: "No timestamp lies after the clock (the sandbox's simulated clock "
    "against the sandbox, else the real one, plus 5 minutes of skew); appointments excepted.",
    ENUMERATIONS_KNOWN: "Statuses and other enumerated fields hold values the vendor documents.",
    REFERENCES_RESOLVE: "Ids this record points at exist in the backed-up state of the "
    "referenced entity (rows newer than that entity's last backup are not judged).",
    ROW_COUNT_MATCHES_MANIFEST: "The partition's files hold exactly the rows its manifest "
    "records, per file and in total.",
    INCREMENTALS_CONTIGUOUS: "Every day from the last full snapshot up to this incremental one "
    "has a partition.",
}


def rules_for(source: str, entity: str) -> EntityRules:
    return RULES.get((source, entity), EntityRules())


def timestamp_columns(schema: EntitySchema) -> list[str]:
    return [c.name for c in schema.columns if c.type == TS]


def applicable_checks(schema: EntitySchema, incremental: bool = True) -> list[str]:
    """The checks that mean something for an entity, in a stable order."""
    r = rules_for(schema.source, schema.entity)
    ts = timestamp_columns(schema)
    checks = [PRIMARY_KEY_UNIQUE, ROW_COUNT_MATCHES_MANIFEST]
    checks += [REQUIRED_FIELDS_PRESENT] if r.required else []
    checks += [TIMESTAMPS_PARSEABLE] if ts or r.dates else []
    checks += [TIMESTAMPS_NOT_IN_FUTURE] if set(ts) - set(r.appointments) else []
    checks += [ENUMERATIONS_KNOWN] if r.enums else []
    checks += [REFERENCES_RESOLVE] if r.refs else []
    checks += [INCREMENTALS_CONTIGUOUS] if incremental else []
    return checks


def severity(source: str, entity: str, check: str) -> dg.AssetCheckSeverity:
    r = rules_for(source, entity)
    if r.guards_push and check not in OBSERVATIONS and check not in r.informative:
        return dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckSeverity.WARN


def check_specs(schema: EntitySchema, incremental: bool = True) -> list[dg.AssetCheckSpec]:
    """The in-asset check specs of an extract asset: blocking exactly where failures are ERROR."""
    key = dg.AssetKey([schema.source, schema.entity])
    return [dg.AssetCheckSpec(
        name, asset=key, description=DESCRIPTIONS[name],
        blocking=severity(schema.source, schema.entity, name) == dg.AssetCheckSeverity.ERROR)
        for name in applicable_checks(schema, incremental)]


def run_checks(context: dg.AssetExecutionContext, schema: EntitySchema, incremental: bool,
               storage: SnapshotStorage, day: date, resource: VendorResource,
               client: VendorClient | None = None) -> list[dg.AssetCheckResult]:
    """The checks an extract asset selected, on the partition it just wrote; logs counts only."""
    clock, clock_source = reference_clock(resource, client)
    selected = {k.name for k in context.selected_asset_check_keys}
    results = evaluate_partition(storage, schema, day, clock=clock, clock_source=clock_source,
                                 incremental=incremental, only=selected)
    failed = [r for r in results if not r.passed]
    context.log.info("%s/%s %s: %d checks passed, %d failed%s", schema.source, schema.entity,
                     day, len(results) - len(failed), len(failed), "".join(
                         f"; {r.check_name} ({r.severity.value}): "
                         f"{r.metadata['unexpected_count'].value} unexpected" for r in failed))
    return results


# -- evaluation ----------------------------------------------------------------------------------
@dataclass
class _Frame:
    """A frame GX validates: the SQL (or rows) that build it and the expectations over it."""

    expects: list[gx.Expect]
    sql: str | None = None
    rows: list[dict[str, Any]] | None = None
    index: str = "id"


@dataclass
class _Target:
    table: str | None                  # temp table of ids, None when never backed up
    covered_to: str | None             # the latest window end of its backups (ISO)


def evaluate_partition(storage: SnapshotStorage, schema: EntitySchema, day: date | str, *,
                       clock: datetime | None = None, clock_source: str = "real",
                       incremental: bool = True,
                       only: set[str] | None = None) -> list[dg.AssetCheckResult]:
    """Run every applicable check on one landed partition; `only` restricts to some checks."""
    source, entity = schema.source, schema.entity
    day = day if isinstance(day, str) else day.isoformat()
    manifest = storage.manifest(source, entity, day)
    if manifest is None:
        raise FileNotFoundError(f"{source}/{entity} has no landed partition for {day}")
    names = [c for c in applicable_checks(schema, incremental) if only is None or c in only]
    clock = clock or datetime.now(UTC)
    part = storage.partition_dir(source, entity, day)
    con = connect_duckdb(config={"threads": 2, "memory_limit": "2GB"})
    try:
        con.execute("SET TimeZone = 'UTC'")
        if any(part.glob("*.parquet")):
            con.execute(f"CREATE VIEW part AS SELECT * FROM "
                        f"read_parquet('{duck_path(_q(part))}/*.parquet')")
        else:   # every part file lost: judge an empty partition (the manifest check fails)
            con.register("part", schema.arrow_schema().empty_table())
        r = rules_for(source, entity)
        targets = _targets(con, storage, source, r, manifest) if REFERENCES_RESOLVE in names \
            else {}
        frames = _frames(schema, r, manifest, part, storage, clock, clock_source, targets,
                         set(names))
        import pandas as pd

        outcomes: list[gx.Outcome] = []
        for f in frames:
            if f.expects:
                df = con.execute(f.sql).df() if f.sql is not None else pd.DataFrame(f.rows)
                outcomes += gx.validate(df, f.expects, f.index)
        extra = _extra(con, r, manifest, clock, clock_source, targets, names)
    finally:
        con.close()
    checks = {n: severity(source, entity, n) for n in names}
    common = {"snapshot_date": day, "partition_mode": manifest["mode"]}
    return gx.check_results(outcomes, checks, dg.AssetKey([source, entity]), common, extra)


def _frames(schema: EntitySchema, r: EntityRules, manifest: dict[str, Any], part: Path,
            storage: SnapshotStorage, clock: datetime, clock_source: str,
            targets: Mapping[Ref, _Target], names: set[str]) -> list[_Frame]:
    frames = [_versions(manifest), _upserts(schema, r, manifest, clock, clock_source, targets)]
    frames += [_exploded_enum(e) for e in r.enums if e.many]
    frames += [_exploded_ref(ref, targets[ref]) for ref in r.refs if ref.many and ref in targets]
    frames.append(_files(manifest, part))
    if INCREMENTALS_CONTIGUOUS in names:
        frames.append(_chain(storage, schema, manifest))
    for f in frames:
        f.expects = [e for e in f.expects if e.check in names]
    return frames


def _versions(manifest: dict[str, Any]) -> _Frame:
    """Every row (upserts and deletes): key uniqueness and the manifest's total. The key is a
    record version: a day may hold several versions of a record, and a full listing may catch a
    record twice when it changes mid-listing (the state takes the newer). Two rows of one id at
    one instant (say, an upsert and a delete) contradict each other."""
    key = gx.Expect(PRIMARY_KEY_UNIQUE, "(id, _source_updated_at) is unique",
                    "ExpectCompoundColumnsToBeUnique",
                    {"column_list": ["id", "_source_updated_at"]})
    total = gx.Expect(ROW_COUNT_MATCHES_MANIFEST,
                      f"rows in the partition = manifest rows ({manifest['rows']})",
                      "ExpectTableRowCountToEqual", {"value": int(manifest["rows"])})
    return _Frame([key, total], sql="SELECT id, _source_updated_at FROM part")


def _upserts(schema: EntitySchema, r: EntityRules, manifest: dict[str, Any], clock: datetime,
             clock_source: str, targets: Mapping[Ref, _Target]) -> _Frame:
    """Upserted records: one column per rule (deletes carry ids only, so no rule reads them)."""
    ts = timestamp_columns(schema)
    cols: dict[str, str] = {"id": "p.id"}
    ex: list[gx.Expect] = []
    for c in r.required:
        if c in ts:   # a timestamp sent but unreadable is present (TIMESTAMPS_PARSEABLE says so)
            name = f"{c}__present"
            cols[name] = (f"CASE WHEN p.{_i(c)} IS NOT NULL THEN TRUE "
                          f"WHEN {_raw(c)} IS NOT NULL THEN TRUE END")
        else:
            name, cols[c] = c, f"p.{_i(c)}"
        ex.append(gx.Expect(REQUIRED_FIELDS_PRESENT, f"{c} is present",
                            "ExpectColumnValuesToNotBeNull", {"column": name}))
    for c in ts:
        cols[f"{c}__parsed"] = (f"CASE WHEN p.{_i(c)} IS NOT NULL THEN TRUE "
                                f"WHEN {_raw(c)} IS NOT NULL THEN FALSE END")
        ex.append(_is_true(TIMESTAMPS_PARSEABLE, f"{c} is an ISO-8601 timestamp", f"{c}__parsed"))
    for c in r.dates:
        cols[f"{c}__parsed"] = (f"CASE WHEN p.{_i(c)} IS NOT NULL THEN "
                                f"TRY_CAST(p.{_i(c)} AS DATE) IS NOT NULL END")
        ex.append(_is_true(TIMESTAMPS_PARSEABLE, f"{c} is a date (YYYY-MM-DD)", f"{c}__parsed"))
    limit = clock + FUTURE_SKEW
    for c in ts:
        if c not in r.appointments:
            cols[c] = f"p.{_i(c)}"
            ex.append(gx.Expect(
                TIMESTAMPS_NOT_IN_FUTURE, f"{c} is not after {iso(limit)} ({clock_source} clock)",
                "ExpectColumnValuesToBeBetween", {"column": c, "max_value": limit}))
    for e in r.enums:
        if not e.many:
            cols[e.name] = e.sql or f"p.{_i(e.name)}"
            ex.append(_known(e))
    for ref in r.refs:
        if not ref.many and ref in targets:
            name = f"{ref.column}__resolves"
            cols[name] = _resolves(f"p.{_i(ref.column)}", "p._source_updated_at", targets[ref])
            ex.append(_is_true(REFERENCES_RESOLVE, ref.label, name))
    ex.append(gx.Expect(ROW_COUNT_MATCHES_MANIFEST,
                        f"upsert rows = manifest upserts ({manifest['upserts']})",
                        "ExpectTableRowCountToEqual", {"value": int(manifest["upserts"])}))
    select = ", ".join(f"{expr} AS {_i(name)}" for name, expr in cols.items())
    return _Frame(ex, sql=f"SELECT {select} FROM part p WHERE p._op = 'upsert'")


def _exploded_enum(e: Enum) -> _Frame:
    sql = (f"SELECT id, unnest({e.sql or _i(e.name)}) AS {_i(e.name)} "
           "FROM part WHERE _op = 'upsert'")
    return _Frame([_known(e)], sql=sql)


def _exploded_ref(ref: Ref, target: _Target) -> _Frame:
    """A list of ids per row (Keap tag ids): one frame row per reference."""
    name = f"{ref.column}__resolves"
    sql = f"""
        SELECT id, {_resolves('ref', 'ts', target)} AS {_i(name)} FROM (
            SELECT id, unnest({_i(ref.column)}) AS ref, _source_updated_at AS ts
            FROM part WHERE _op = 'upsert')
    """
    return _Frame([_is_true(REFERENCES_RESOLVE, f"each of {ref.label}", name)], sql=sql)


def _files(manifest: dict[str, Any], part: Path) -> _Frame:
    """One row per part file, in the manifest or on disk: rows recorded vs rows found."""

    listed = {f["file"]: int(f["rows"]) for f in manifest["files"]}
    on_disk = {p.name: parquet.num_rows(p) for p in sorted(part.glob("*.parquet"))}
    rows = [{"file": name, "rows_in_manifest": listed.get(name, -1),
             "rows_on_disk": on_disk.get(name, -1)} for name in sorted(listed.keys() | on_disk)]
    return _Frame([gx.Expect(
        ROW_COUNT_MATCHES_MANIFEST, "each part file holds the rows its manifest records "
        "(-1: file missing on disk or absent from the manifest)",
        "ExpectColumnPairValuesToBeEqual",
        {"column_A": "rows_in_manifest", "column_B": "rows_on_disk"})],
        rows=rows or [{"file": "-", "rows_in_manifest": 0, "rows_on_disk": 0}], index="file")


def _chain(storage: SnapshotStorage, schema: EntitySchema, manifest: dict[str, Any]) -> _Frame:
    """One row per day from the last full snapshot (or the first partition, when none is full)
    to this partition: landed, and the first of them full."""
    day = manifest["snapshot_date"]
    modes = {m["snapshot_date"]: m["mode"]
             for m in storage.manifests(schema.source, schema.entity) if m["snapshot_date"] <= day}
    modes[day] = manifest["mode"]
    fulls = [d for d, mode in modes.items() if mode == "full"]
    start = max(fulls) if fulls else min(modes)
    first = date.fromisoformat(start)
    rows = []
    for n in range((date.fromisoformat(day) - first).days + 1):
        d = (first + timedelta(days=n)).isoformat()
        ok = d in modes and (d != start or modes[d] == "full")
        rows.append({"snapshot_date": d, "chain_ok": ok})
    rule = (f"every day from the last full snapshot ({start}) to {day} has a partition"
            if fulls else f"the chain ending {day} starts with a full snapshot (none found)")
    return _Frame([_is_true(INCREMENTALS_CONTIGUOUS, rule, "chain_ok")], rows=rows,
                  index="snapshot_date")


def _targets(con: duckdb.DuckDBPyConnection, storage: SnapshotStorage, source: str,
             r: EntityRules, manifest: dict[str, Any]) -> dict[Ref, _Target]:
    """The ids each reference may point at: the target's current state, plus ids deleted after
    this partition's window (they existed then; this matters when re-running an old day)."""
    out: dict[Ref, _Target] = {}
    window_end = manifest["window"]["updated_to"]
    for n, ref in enumerate(r.refs):
        landed = storage.manifests(source, ref.target)
        ends = [m["window"]["updated_to"] for m in landed if m["window"]["updated_to"]]
        if not ends:
            out[ref] = _Target(None, None)
            continue
        history = history_sql(storage.entity_dir(source, ref.target))
        table = f"target_{n}"
        later = ""
        if ref.target_ids == "id" and window_end:
            later = (f"UNION SELECT id FROM ({history}) "
                     f"WHERE _op = 'delete' AND _source_updated_at > {_ts(window_end)}")
        con.execute(f"""
            CREATE TEMP TABLE {table} AS
            SELECT DISTINCT {ref.target_ids} AS id
            FROM ({state_sql(history, entity_dir=storage.entity_dir(source, ref.target))})
            {later}
        """)
        out[ref] = _Target(table, max(ends))
    return out


def _resolves(value: str, updated: str, target: _Target) -> str:
    """TRUE/FALSE when judged; NULL (GX counts it missing, not failing) when the reference is
    empty or the row is newer than the target's last backup."""
    if target.table is None:
        return "CAST(NULL AS BOOLEAN)"
    return (f"CASE WHEN {value} IS NULL OR {updated} > {_ts(target.covered_to)} THEN NULL "
            f"ELSE {value} IN (SELECT id FROM {target.table}) END")


def _extra(con: duckdb.DuckDBPyConnection, r: EntityRules, manifest: dict[str, Any],
           clock: datetime, clock_source: str, targets: Mapping[Ref, _Target],
           names: list[str]) -> dict[str, dict[str, Any]]:
    """Context per check that GX does not compute (no personal data: names, dates, counts)."""
    extra: dict[str, dict[str, Any]] = {
        TIMESTAMPS_NOT_IN_FUTURE: {"clock": iso(clock), "clock_source": clock_source},
        ROW_COUNT_MATCHES_MANIFEST: {"rows_in_manifest": int(manifest["rows"]),
                                     "files_in_manifest": len(manifest["files"])},
    }
    if REFERENCES_RESOLVE in names and targets:
        lines = ["| reference | target backed up to | rows not judged |", "|---|---|---:|"]
        for ref, t in targets.items():
            if t.table is None:
                lines.append(f"| {ref.label} | never | all |")
                continue
            col = f"list_aggregate({_i(ref.column)}, 'count') > 0" if ref.many \
                else f"{_i(ref.column)} IS NOT NULL"
            newer = con.execute(
                f"SELECT count(*) FROM part WHERE _op = 'upsert' AND {col} "
                f"AND _source_updated_at > {_ts(t.covered_to)}").fetchone()[0]
            lines.append(f"| {ref.label} | {t.covered_to} | {newer} |")
        extra[REFERENCES_RESOLVE] = {"targets": dg.MetadataValue.md("\n".join(lines))}
    return extra


def _known(e: Enum) -> gx.Expect:
    shown = ", ".join(e.values) if len(e.values) <= 6 else f"{len(e.values)} documented values"
    return gx.Expect(ENUMERATIONS_KNOWN, f"{e.name} is one of: {shown}",
                     "ExpectColumnValuesToBeInSet",
                     {"column": e.name, "value_set": list(e.values)}, show_values=True)


def _is_true(check: str, rule: str, column: str) -> gx.Expect:
    return gx.Expect(check, rule, "ExpectColumnValuesToBeInSet",
                     {"column": column, "value_set": [True]})


def _raw(column: str) -> str:
    """The text the vendor sent for a top-level field, NULL when absent, null or '' (as the
    column parser reads it). `_raw` is compact JSON (`"key":value`): a regular expression finds
    the rows where the key occurs with a non-null value, and only those are parsed."""
    key = json.dumps(column)
    return (f"CASE WHEN regexp_matches(p._raw, '{_q(re.escape(key))}:[^n]') "
            f"THEN nullif(json_extract_string(p._raw, '$.{_q(key)}'), '') END")


def _i(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _q(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _ts(text: str | None) -> str:
    return f"CAST('{_q(text or '')}' AS TIMESTAMPTZ)"
