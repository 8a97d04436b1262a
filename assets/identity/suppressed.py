"""Who is suppressed, by identity key: the identity room's side of the suppression list
(`orchestration/storage/suppression.py` keeps the list, its salt and its locks).

An email is hashed in the form the identity assets normalize it to (`emails.reference_email`),
so an erased person is matched whichever spelling of their address a source holds; source ids
are hashed as text. `extraction_filter` tells the partition writer which rows of a backed-up
entity are about a suppressed person (`PERSON_KEYS`), so they are never backed up again.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import duckdb

from assets.identity import emails
from assets.identity.config import NormalizationConfig
from assets.identity.emails import reference_email
from orchestration.storage import suppression


def normalize(kind: str, value: object) -> str:
    """The form a value is hashed in: emails normalized as the identity assets do (falling back
    to trimmed lower case for an address the validator rejects), ids as text."""
    text = str(value).strip()
    if kind != "email":
        return text
    return reference_email(text) or unicodedata.normalize("NFKC", text).strip().lower()


def identity_hash(root: Path, kind: str, value: object, *, normalized: bool = False) -> str:
    """The salted hash of one identifier (`normalized=True`: the value is already normalized)."""
    return suppression.hash_of(root, kind, str(value) if normalized else normalize(kind, value))


def is_suppressed(root: Path, kind: str, value: object) -> bool:
    """Whether an identifier (email or source id) belongs to an erased person."""
    if not suppression.list_path(root).exists():
        return False
    return identity_hash(root, kind, value) in suppression.hashes(root)


def add(root: Path, kind: str, value: object) -> bool:
    """Suppress one identifier; returns False when it already was."""
    return suppression.add_hashes(root, [(identity_hash(root, kind, value), kind)]) == 1


def add_many(root: Path, items: Iterable[tuple[str, object]]) -> int:
    """Suppress (kind, value) pairs; returns how many were new."""
    return suppression.add_hashes(root, [(identity_hash(root, k, v), k) for k, v in items])


# -- extraction: what "a record of a suppressed person" is, per backed-up entity ---------------
# (SQL over a partition's rows: each a list of (kind, expression yielding a VARCHAR or a list of
#  VARCHAR)); `email` expressions are raw addresses, normalized before hashing
PERSON_KEYS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("greenhouse", "candidates"): [("greenhouse_candidate", "id"), ("email", "emails")],
    ("greenhouse", "applications"): [("greenhouse_candidate", "candidate_id"),
                                     ("greenhouse_application", "id")],
    ("greenhouse", "offers"): [("greenhouse_candidate", "candidate_id"),
                               ("greenhouse_application", "application_id")],
    ("greenhouse", "application_stages"): [("greenhouse_application", "application_id")],
    ("greenhouse", "interviews"): [("greenhouse_application", "application_id")],
    ("greenhouse", "rejection_details"): [("greenhouse_application", "application_id")],
    ("keap", "contacts"): [("keap_contact", "id"), ("email", "emails")],
    ("highlevel", "contacts"): [("highlevel_contact", "id"), ("email", "[email]")],
    ("highlevel", "opportunities"): [("highlevel_contact", '"contactId"')],
    # the whole candidate record (issue 17): every entity that names the person
    ("greenhouse", "scorecards"): [("greenhouse_application", "application_id")],
    ("greenhouse", "notes"): [("greenhouse_candidate", "candidate_id"),
                              ("greenhouse_application", "application_id")],
    ("greenhouse", "attachments"): [("greenhouse_candidate", "candidate_id"),
                                    ("greenhouse_application", "application_id")],
    ("greenhouse", "applied_candidate_tags"): [("greenhouse_candidate", "candidate_id")],
    ("keap", "notes"): [("keap_contact", "contact_id")],
    ("keap", "tasks"): [("keap_contact", "contact_id")],
    ("keap", "emails"): [("keap_contact", "contact_id")],
    ("keap", "opportunities"): [("keap_contact", "contact_id")],
    ("highlevel", "notes"): [("highlevel_contact", '"contactId"')],
    ("highlevel", "tasks"): [("highlevel_contact", '"contactId"')],
    ("highlevel", "conversations"): [("highlevel_contact", '"contactId"')],
    ("highlevel", "messages"): [("highlevel_contact", '"contactId"')],
    ("highlevel", "appointments"): [("highlevel_contact", '"contactId"')],
}


def extraction_filter(root: Path, source: str, entity: str):
    """For the partition writer: a function (con, rows) -> SQL predicate keeping the rows that
    are NOT about a suppressed person (None: keep all), where `rows` names the relation of the
    partition's incoming rows; returns None itself for entities without people. The list is read
    when the function is called, i.e. at the partition's finalize, not when the run started."""
    keys = PERSON_KEYS.get((source, entity))
    if not keys:
        return None

    def predicate(con: duckdb.DuckDBPyConnection, rows: str) -> str | None:
        if not suppression.list_path(root).exists() or suppression.register(con, root) == 0:
            return None
        parts = []
        for kind, expr in keys:
            if kind == "email":
                _suppressed_raw_emails(con, f"SELECT unnest({expr}) AS raw FROM {rows}")
                parts.append(f"list_has_any(coalesce({expr}, []), "
                             f"(SELECT coalesce(list(raw), []) FROM _suppressed_raw_emails))")
            else:
                parts.append(f"({expr} IS NOT NULL AND tv_identity_hash('{kind}', {expr}) IN "
                             f"(SELECT hash FROM suppressed_hashes))")
        where = " OR ".join(parts)
        if (source, entity) == ("greenhouse", "applications"):
            # a new application of a suppressed candidate: suppress its id too, so its stages,
            # interviews and rejection details (which carry only the application id) are
            # dropped as well (applications are backed up before them in a run)
            new = con.execute(f"""
                SELECT DISTINCT tv_identity_hash('greenhouse_application', id) FROM {rows}
                WHERE coalesce({where}, FALSE)
                  AND tv_identity_hash('greenhouse_application', id) NOT IN
                      (SELECT hash FROM suppressed_hashes)""").fetchall()
            suppression.add_hashes(root, [(h, "greenhouse_application") for (h,) in new])
        return "NOT coalesce(" + where + ", FALSE)"

    return predicate


def _suppressed_raw_emails(con: duckdb.DuckDBPyConnection, values_sql: str) -> None:
    """TEMP TABLE `_suppressed_raw_emails(raw)`: the raw addresses among `values_sql` (a query
    with a column `raw`) whose normalized form is suppressed. Normalization is the identity
    assets' own (set-based, on distinct values, default rules)."""
    with contextlib.suppress(duckdb.Error):
        emails.register(con)
    emails.normalize_emails(con, values_sql, "_suppression_norm", NormalizationConfig())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _suppressed_raw_emails AS
        SELECT raw FROM _suppression_norm
        WHERE email IS NOT NULL AND tv_identity_hash('email', email) IN
              (SELECT hash FROM suppressed_hashes)
        UNION
        -- an address the validator rejects is matched by its folded form (as `normalize`)
        SELECT raw FROM _suppression_norm
        WHERE email IS NULL AND tv_identity_hash('email', tv_fold(raw)) IN
              (SELECT hash FROM suppressed_hashes)
    """)
    con.execute("DROP TABLE _suppression_norm")
