"""`check_mapping`: the document against the latest snapshots (ATS fields whose columns are
not in the backup, stage names and statuses that nothing maps)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from assets.sync.mapping.model import Mapping, job_custom_keys
from assets.sync.mapping.positions import line_of, lines_of
from assets.sync.mapping.problems import Problem
from assets.sync.mapping.reads import ENTITIES_READ
from assets.sync.mapping.reverse import check_reverse
from assets.sync.mapping.vocabulary import ATS_FIELDS, EVENT_STATUSES, FALLBACK_KEY, OFFER_STATUSES


def latest_day(root: Path) -> str | None:
    """The latest day with a landed Greenhouse applications snapshot."""
    base = Path(root) / "greenhouse" / "applications"
    days = sorted(d.name.split("=", 1)[1] for d in base.glob("snapshot_date=*")
                  if (d / "_manifest.json").exists())
    return days[-1] if days else None


def check_mapping(mapping: Mapping, root: Path, day: str | None = None) -> list[Problem]:
    """Problems of `mapping` against the backup of `day` (default: the latest): ATS fields
    whose Greenhouse column is not in the snapshots, stage names and statuses in the backup that
    nothing maps, value maps without an entry for a value present in the backup (errors), and
    mapped stage names the backup does not hold (warnings: a typo, or a stage not used yet)."""
    from assets.identity.config import NormalizationConfig
    from assets.identity.inputs import has_partition, load_state
    from assets.identity.normalize import connect

    name = str(mapping.path)
    lines = lines_of(yaml.compose(mapping.path.read_text(encoding="utf-8"))) \
        if mapping.path.exists() else {}
    out: list[Problem] = []

    def add(path: tuple, message: str, fix: str, severity: str = "error") -> None:
        out.append(Problem(name, line_of(lines, path), message, fix, severity))

    day = day or latest_day(root)
    if day is None:
        return [Problem(name, None, f"no Greenhouse backup under {root}",
                        "back up Greenhouse first (talentvault demo or a backup run)")]
    present = {e: has_partition(root, "greenhouse", e, day) for e in ENTITIES_READ}
    columns = {e: _snapshot_columns(root, e, day) for e in ENTITIES_READ if present[e]}
    for f in mapping.fields:
        entity, column = ATS_FIELDS[f.source].backing
        if not present.get(entity):
            add(("fields", f.target, "from"), f"{f.target}: the ATS field {f.source!r} comes "
                f"from greenhouse/{entity}, which has no snapshot for {day}",
                f"back up greenhouse/{entity} for {day}, or map another field")
        elif column != "id" and column not in columns[entity]:
            add(("fields", f.target, "from"), f"{f.target}: the ATS field {f.source!r} needs "
                f"greenhouse/{entity}.{column}, which is not in the snapshot of {day}",
                "map another field, or check the Greenhouse export (the field audit shows "
                "what changed)")
    con = connect(NormalizationConfig())
    try:
        stages: dict[str, int] = {}
        if present["applications"]:
            load_state(con, root, "greenhouse", "applications", day,
                       ["stage_name", "status", "source_id"], "_app")
            for v, n in con.execute("SELECT stage_name, count(*) FROM _app WHERE stage_name "
                                    "IS NOT NULL GROUP BY ALL").fetchall():
                stages[v] = stages.get(v, 0) + n
            statuses = dict(con.execute("SELECT status, count(*) FROM _app WHERE status IS NOT "
                                        "NULL GROUP BY ALL ORDER BY ALL").fetchall())
            for status, n in statuses.items():
                if status not in EVENT_STATUSES and status not in mapping.quiet_statuses:
                    add(("events", "quiet_statuses"), f"application status {status!r} "
                        f"({n} applications) is not mapped to any event",
                        "add it to events.quiet_statuses (no event), or ask for the event "
                        "derivation to learn it")
            values = {"current_status": statuses, "current_source_id": dict(con.execute(
                "SELECT CAST(source_id AS VARCHAR), count(*) FROM _app WHERE source_id IS NOT "
                "NULL GROUP BY ALL ORDER BY ALL").fetchall())}
            for f in mapping.fields:
                for i, t in enumerate(f.transforms):
                    if t.name != "value_map" or f.source not in values or i > 0:
                        continue
                    keys = {k for k, _ in t.values}
                    if FALLBACK_KEY in keys:
                        continue
                    for v, n in values[f.source].items():
                        if v not in keys:
                            add(("fields", f.target, "transforms", i),
                                f"{f.target}: value {v!r} of {f.source} ({n} applications) "
                                "has no entry in value_map",
                                f"add `{v!r}: <Keap value>` or a fallback `\"*\": <value>`")
        if present["job_stages"]:
            load_state(con, root, "greenhouse", "job_stages", day, ["name"], "_stage")
            for v, n in con.execute("SELECT name, count(*) FROM _stage WHERE name IS NOT NULL "
                                    "GROUP BY ALL").fetchall():
                stages[v] = stages.get(v, 0) + n
        if mapping.stage_unmapped is None:
            for stage in sorted(stages):
                if stage not in mapping.stage_map:
                    add(("tags", "stages", "map"), f"stage {stage!r} is in the backup "
                        f"({stages[stage]} jobs/applications) but has no tag",
                        f"add `{stage}: <tag>` under tags.stages.map (null for no tag), or "
                        "set tags.stages.unmapped to a template like \"Stage: {stage}\"")
        if stages:
            for stage in mapping.stage_map:
                if stage not in stages:
                    add(("tags", "stages", "map", stage), f"stage {stage!r} is mapped but no "
                        f"job or application in the backup of {day} has it",
                        "check the spelling against Greenhouse (a stage not used yet is fine)",
                        "warning")
        if present["offers"]:
            load_state(con, root, "greenhouse", "offers", day, ["status"], "_offer")
            for (v,) in con.execute("SELECT DISTINCT status FROM _offer WHERE status IS NOT "
                                    "NULL ORDER BY 1").fetchall():
                if v not in OFFER_STATUSES:
                    add(("events", "cross"), f"offer status {v!r} is in the backup but no "
                        "event understands it", f"offer events read only "
                        f"{', '.join(OFFER_STATUSES)}; report this Greenhouse change")
        _job_custom_fields(con, root, day, mapping, present, add)
    finally:
        con.close()
    check_reverse(mapping.reverse, Path(root), day, add)
    return out


def _job_custom_fields(con, root: Path, day: str, mapping: Mapping, present: dict,
                       add: Callable[..., None]) -> None:
    """A job tag naming {job_custom:<key>} that no job of the backup has: a warning listing
    the custom fields the jobs do have, with sample values (what the ATS really produces)."""
    from assets.identity.inputs import load_state
    from assets.sync.mapping.names import job_custom_samples

    keys = job_custom_keys(mapping.job_template)
    if not keys or not present.get("jobs"):
        return
    load_state(con, root, "greenhouse", "jobs", day, ["_raw"], "_jobs")
    samples = job_custom_samples(con, "_jobs")
    listing = "; ".join(f"{k} (e.g. {', '.join(v) or 'no value yet'})"
                        for k, v in sorted(samples.items())) or "none"
    for key in keys:
        if key not in samples:
            add(("tags", "jobs", "template"), f"{{job_custom:{key}}}: no job in the backup of "
                f"{day} has a custom field {key!r}", f"the jobs' custom fields: {listing}",
                "warning")


def _snapshot_columns(root: Path, entity: str, day: str) -> set[str]:
    m = Path(root) / "greenhouse" / entity / f"snapshot_date={day}" / "_manifest.json"
    manifest = json.loads(m.read_text())
    return {c["name"] for c in manifest.get("schema", [])}
