"""`mapping check --names`: the names the latest backup holds that a mapping can use, with how
often each occurs and sample values (what the ATS really produces): sources, departments,
offices, stages, rejection reasons, job custom fields."""

from __future__ import annotations

import json
from pathlib import Path

# family -> (entity, how a mapping uses it)
FAMILIES = {
    "sources": ("sources", "current_source_name"),
    "departments": ("departments", "{department_name}, current_department_name"),
    "offices": ("offices", "{office_name}, current_office_name"),
    "stages": ("applications", "{stage}, tags.stages.map, current_stage_name"),
    "rejection reasons": ("rejection_reasons", "{reason}, tags.rejection_reasons.map"),
    "job custom fields": ("jobs", "{job_custom:<key>}"),
}


def available_names(root: Path, day: str) -> dict[str, list[tuple[str, str]]]:
    """family -> [(name, how often or sample values)], for the backup of `day` (a family whose
    backup is missing that day is absent)."""
    from assets.identity.config import NormalizationConfig
    from assets.identity.inputs import has_partition, load_state
    from assets.identity.normalize import connect

    con = connect(NormalizationConfig())
    out: dict[str, list[tuple[str, str]]] = {}
    try:
        def state(entity: str, cols: list[str]) -> bool:
            if not has_partition(root, "greenhouse", entity, day):
                return False
            load_state(con, root, "greenhouse", entity, day, cols, f"_n_{entity}")
            return True

        have_apps = state("applications", ["source_id", "stage_name"])
        if state("sources", ["name"]):
            used = "(SELECT count(*) FROM _n_applications a WHERE a.source_id = s.id)" \
                if have_apps else "NULL"
            out["sources"] = [(n, f"{c} applications" if c is not None else "")
                              for n, c in con.execute(f"SELECT name, {used} FROM _n_sources s "
                                                      "ORDER BY 2 DESC NULLS LAST, 1").fetchall()]
        have_jobs = state("jobs", ["department_id", "_raw"])
        if state("departments", ["name"]):
            used = "(SELECT count(*) FROM _n_jobs j WHERE j.department_id = d.id)" \
                if have_jobs else "NULL"
            out["departments"] = [(n, f"{c} jobs" if c is not None else "")
                                  for n, c in con.execute(
                                      f"SELECT name, {used} FROM _n_departments d "
                                      "ORDER BY 2 DESC NULLS LAST, 1").fetchall()]
        if state("offices", ["name"]):
            out["offices"] = [(n, "") for (n,) in con.execute(
                "SELECT name FROM _n_offices ORDER BY 1").fetchall()]
        if have_apps:
            out["stages"] = [(n, f"{c} applications") for n, c in con.execute(
                "SELECT stage_name, count(*) FROM _n_applications WHERE stage_name IS NOT NULL "
                "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()]
        if state("rejection_reasons", ["name"]):
            out["rejection reasons"] = [(n, "") for (n,) in con.execute(
                "SELECT name FROM _n_rejection_reasons ORDER BY 1").fetchall()]
        if have_jobs:
            out["job custom fields"] = [(k, "e.g. " + ", ".join(v) if v else "no value yet")
                                        for k, v in sorted(job_custom_samples(con,
                                                                              "_n_jobs").items())]
    finally:
        con.close()
    return out


def job_custom_samples(con, table: str) -> dict[str, list[str]]:
    """Each custom field key of the jobs in `table` (a state with `_raw`) -> up to 3 values."""
    samples: dict[str, list[str]] = {}
    for (fields,) in con.execute(f"SELECT CAST(json_extract(_raw, '$.custom_fields') AS VARCHAR) "
                                 f"FROM {table}").fetchall():
        for key, field in ((json.loads(fields) if fields else None) or {}).items():
            value = field.get("value") if isinstance(field, dict) else None
            seen = samples.setdefault(key, [])
            if value is not None and str(value) not in seen and len(seen) < 3:
                seen.append(str(value))
    return samples


def names_lines(names: dict[str, list[tuple[str, str]]], day: str, limit: int = 12) -> list[str]:
    lines = [f"names in the backup of {day} (what a mapping can use):"]
    for family, (_, use) in FAMILIES.items():
        items = names.get(family)
        if items is None:
            lines.append(f"  {family}: no backup that day")
            continue
        shown = ", ".join(f"{n} ({d})" if d else n for n, d in items[:limit])
        more = f", ... {len(items) - limit} more" if len(items) > limit else ""
        lines.append(f"  {family} [{use}]: {shown or 'none'}{more}")
    return lines
