"""Reads leave a trail: every query through the SQL door, and whom its result showed.

A query is recorded (`audit.events`, action `sql_query`, `sql_export` with `--output`, or
`sql_refused`) with who ran it, when, a keyed hash of its text (never the text: its literals may
hold an email), the catalog relations it names, the rows it returned, and `subjects`: the ids of
the people in the result. A result says whom it shows only through its id columns:

  profile_id (and profile_id_a/_b)        profile:<id>
  candidate_id, candidate_ids, merged_... greenhouse_candidate:<id>
  application_id, application_ids         greenhouse_application:<id>
  contact_id                              keap_contact:<id> (highlevel_contact:<id> when the
                                          query names only HighLevel relations)
  id                                      the record id of the one person relation named
                                          (keap.contacts -> keap_contact, ...)

A result that reads person data but carries none of these (`SELECT email FROM keap.contacts`), or
shows more than `MAX_SUBJECTS` people, is recorded as unattributed (`details.attributed` false):
`talentvault audit reads` lists such reads beside the attributed ones, as reads that may have
shown the person. Aggregates over people (counts) are reads of person data too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.storage import audit

MAX_SUBJECTS = 10_000
# relations whose rows are about no person (reference data, the trail itself)
NOT_PERSON = {"greenhouse.jobs", "greenhouse.job_stages", "greenhouse.rejection_reasons",
              "greenhouse.users", "greenhouse.departments", "greenhouse.offices",
              "greenhouse.sources", "highlevel.pipelines", "highlevel.workflows",
              "highlevel.custom_fields", "highlevel.tags", "highlevel.custom_values",
              "keap.tags", "keap.tag_categories", "keap.custom_fields",
              "keap.opportunity_stages"}
NOT_PERSON_SCHEMAS = {"audit", "webhooks"}
# the kind of `id` in each person relation
ID_KIND = {"greenhouse.candidates": "greenhouse_candidate",
           "greenhouse.applications": "greenhouse_application",
           "keap.contacts": "keap_contact", "highlevel.contacts": "highlevel_contact"}
COLUMN_KIND = {"profile_id": "profile", "profile_id_a": "profile", "profile_id_b": "profile",
               "candidate_id": "greenhouse_candidate", "candidate_ids": "greenhouse_candidate",
               "merged_candidate_ids": "greenhouse_candidate",
               "application_id": "greenhouse_application",
               "application_ids": "greenhouse_application", "contact_id": "keap_contact"}


def base_relation(name: str) -> str:
    """`keap.contacts_history` / `keap.contacts_as_of` -> `keap.contacts`."""
    for suffix in ("_history", "_as_of", "_by_day"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def reads_person_data(relations: list[str]) -> bool:
    return any(base_relation(r) not in NOT_PERSON and r.split(".")[0] not in NOT_PERSON_SCHEMAS
               for r in relations)


def _column_kinds(table: pa.Table, relations: list[str]) -> dict[str, str]:
    bases = {base_relation(r) for r in relations}
    kinds = {c: COLUMN_KIND[c] for c in table.column_names if c in COLUMN_KIND}
    if "contact_id" in kinds and bases and all(b.startswith("highlevel.") for b in bases):
        kinds["contact_id"] = "highlevel_contact"
    person = {ID_KIND[b] for b in bases if b in ID_KIND}
    if "id" in table.column_names and len(person) == 1:
        kinds["id"] = person.pop()
    return kinds


def subjects(table: pa.Table, relations: list[str]) -> tuple[list[str], bool]:
    """(the ids of the people in a result, whether the result is attributed to them). Not
    attributed: person data read with no id column, or more than MAX_SUBJECTS people."""
    found: set[str] = set()
    for column, kind in _column_kinds(table, relations).items():
        values = table.column(column)
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        for v in pc.unique(values.drop_null()).to_pylist():
            found.add(f"{kind}:{v}")
            if len(found) > MAX_SUBJECTS:
                return [], False
    attributed = bool(found) or not reads_person_data(relations) or table.num_rows == 0
    return sorted(found), attributed


def query_hash(root: Path, text: str) -> str:
    """A keyed hash of the query text: the same query gives the same hash in this installation,
    and nobody holding the trail alone can test a guess (`... WHERE email = 'x'`)."""
    from orchestration.storage.suppression import salt

    return hmac.new(salt(root).encode(), text.encode(), hashlib.sha256).hexdigest()


def record_query(root: Path, query: str, *, relations: list[str], status: str,
                 table: pa.Table | None = None, output: Path | None = None,
                 fmt: str | None = None, error: str | None = None) -> str:
    """One audit event for one query through the door (refused ones included)."""
    found, attributed = subjects(table, relations) if table is not None else ([], True)
    details: dict[str, Any] = {"query_hash": query_hash(root, query), "relations": relations,
                               "person_data": reads_person_data(relations),
                               "attributed": attributed}
    if output is not None:
        details["output"] = {"path": str(output), "format": fmt}
    if error:
        details["error"] = error
    action = ("sql_refused" if status == "refused"
              else "sql_export" if output is not None else "sql_query")
    counts = {"rows": table.num_rows if table is not None else 0, "subjects": len(found)}
    return audit.record(root, action, target=",".join(relations) or "-", status=status,
                        counts=counts, details=details, subjects=found)


# -- answering "who looked at this person's records, and when" ----------------------------------

def person_subjects(con: duckdb.DuckDBPyConnection, profile_id: int) -> list[str]:
    """Every id the person with this profile has had in the backups: the profile, its Greenhouse
    candidates (merged ones too) and applications, and the Keap contacts the sync matched."""
    found = {f"profile:{profile_id}"}
    views = {r[0] for r in con.execute("SELECT schema_name || '.' || view_name "
                                       "FROM duckdb_views() WHERE NOT internal").fetchall()}
    queries = []
    if "identity.candidate_profiles_by_day" in views:
        queries.append(
            "SELECT DISTINCT 'greenhouse_candidate:' || c FROM (SELECT unnest(list_concat("
            "candidate_ids, merged_candidate_ids)) AS c FROM identity.candidate_profiles_by_day "
            "WHERE profile_id = $p) UNION SELECT DISTINCT 'greenhouse_application:' || a FROM ("
            "SELECT unnest(application_ids) AS a FROM identity.candidate_profiles_by_day "
            "WHERE profile_id = $p)")
    for view in ("sync.ledger", "sync.keap_changeset_by_day"):
        if view in views:
            queries.append(f"SELECT DISTINCT 'keap_contact:' || contact_id FROM {view} "
                           "WHERE profile_id = $p AND contact_id IS NOT NULL")
    for q in queries:
        found.update(r[0] for r in con.execute(q, {"p": profile_id}).fetchall())
    return sorted(found)


def reads_of(con: duckdb.DuckDBPyConnection, ids: list[str],
             since: datetime | None = None) -> tuple[list[dict], list[dict]]:
    """(events whose subjects include one of `ids`, reads of person data that cannot be
    attributed to anyone), oldest first."""
    views = {r[0] for r in con.execute("SELECT schema_name || '.' || view_name "
                                       "FROM duckdb_views() WHERE NOT internal").fetchall()}
    if "audit.events" not in views:
        return [], []
    has_subjects = "subjects" in {r[0] for r in con.execute(
        "SELECT column_name FROM (DESCRIBE audit.events)").fetchall()}
    if not has_subjects:
        return [], []
    when = "AND \"at\" >= $since" if since else ""
    params: dict[str, Any] = {"ids": ids, **({"since": since} if since else {})}
    cols = "\"at\", action, actor, target, status, counts, details"
    seen = con.sql(
        f"SELECT {cols}, list_intersect(subjects, $ids) AS matched FROM audit.events "
        f"WHERE list_has_any(subjects, $ids) {when} ORDER BY \"at\"",
        params=params).to_arrow_table()
    params.pop("ids")
    maybe = con.sql(
        f"SELECT {cols} FROM audit.events WHERE action IN ('sql_query', 'sql_export') "
        "AND json_extract(details, '$.attributed') = 'false' "
        f"AND json_extract(details, '$.person_data') = 'true' {when} ORDER BY \"at\"",
        params=params).to_arrow_table()
    return _rows(seen), _rows(maybe)


def _rows(table: pa.Table) -> list[dict]:
    out = []
    for row in table.to_pylist():
        for key in ("counts", "details"):
            row[key] = json.loads(row[key] or "{}")
        out.append(row)
    return out
