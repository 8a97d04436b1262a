"""GDPR / CCPA erasure: remove every trace of one person from every file under the data root,
and make sure they are never backed up, pushed or restored again.

`forget(root, email=..., source_ids=...)`:

1. Resolve the person (set-based, over every partition of every backup, history included):
   - seed records: Greenhouse candidates, Keap contacts and HighLevel contacts holding the
     address (normalized as the identity assets normalize it) or having one of the given ids;
   - the person's addresses: the given one plus every address on a seed record; then every
     person record holding one of those addresses (one expansion round, not a transitive
     closure: a family address shared with someone else does not pull in a third record);
   - dependents: Greenhouse applications of those candidates (and, through the application
     ids, their stages, interviews, offers, rejection details), HighLevel opportunities of those
     contacts, identity profiles holding those candidates or addresses.
2. Under the erasure lock (extractions wait for it before landing a partition), add salted
   hashes of every address and id to the suppression list FIRST, so nothing landing afterwards
   can bring the person back.
3. Find the rows about the person in every Parquet file under the root (except the suppression
   list, the audit trail and a sandbox folder), set-based in DuckDB: a row is about the person
   when an id column holds one of their ids (by column name: `candidate_id`, `application_ids`,
   `contact_id`, `contactId`, `profile_id`, ...; `id` by entity; quarantine `record_id` by its
   `entity`) or when any text, list, map or struct column (`_raw` included) contains one of the
   person's addresses (case-insensitive, as a whole address: `a@b.co` does not match
   `xa@b.com`).
4. Rewrite each affected file without those rows. A partition with a `_manifest.json` is
   rebuilt in a staging folder (unaffected files hard-linked, affected ones rewritten, fsynced,
   read-only, the manifest's rows/sha256/bytes/content fingerprint recomputed the way the writer
   computes them, plus an `erasures` note with counts) and swapped into place like any landed
   partition; other Parquet files (the sync ledger) are replaced file by file. JSON-lines files
   lose the lines naming the person; any other file naming the person (e.g. a restore plan) is
   deleted and listed in the report. Leftover staging folders of killed runs are removed.
5. Report rows removed and files rewritten per entity, and record an `erasure` audit event
   whose subject is the suppression hash (counts only, never the address or the ids).

Forgetting the same person again finds nothing and changes nothing (a no-op event is still
recorded). `apply=False` (dry run) resolves and counts, and writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from orchestration.storage import audit, seals, suppression
from orchestration.storage.fsync import fsync as _fsync
from orchestration.storage.landing import land
from orchestration.storage.seals import sha256_file
from orchestration.storage.writer import RUN_METADATA
from orchestration.times import iso

log = logging.getLogger("talentvault.erasure")

BACKUP_SOURCES = ("greenhouse", "keap", "highlevel")
# counts-only events; the emulated vendor systems; the seal ledger (digests and counts only:
# rewriting it would break its chain)
SKIP_TOP = ("audit", "sandbox", "seals")
SUPPRESSION_FILES = ("state/suppression.parquet", "state/suppression.salt")
STALE_SECONDS = 15 * 60                     # a staging folder untouched this long is a leftover
TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".txt", ".csv", ".yaml", ".yml", ".log", ".sql")

# id kinds: c = Greenhouse candidate, a = Greenhouse application, k = Keap contact,
# h = HighLevel contact, p = identity profile
ID_COLUMNS: dict[str, str] = {
    "candidate_id": "c", "candidate_ids": "c", "merged_candidate_ids": "c",
    "candidate_ids_a": "c", "candidate_ids_b": "c", "related_ids": "c",
    "application_id": "a", "application_ids": "a", "current_application_id": "a",
    "contact_id": "kh", "contactId": "hk", "contact_ids": "kh",
    "profile_id": "p", "profile_id_a": "p", "profile_id_b": "p", "profile_ids": "p",
}
ENTITY_ID: dict[tuple[str, str], str] = {
    ("greenhouse", "candidates"): "c", ("greenhouse", "applications"): "a",
    ("keap", "contacts"): "k", ("highlevel", "contacts"): "h",
}
QUARANTINE_RECORD: dict[str, str] = {"candidates": "c", "applications": "a"}
KIND_NAMES = {"c": "greenhouse_candidates", "a": "greenhouse_applications",
              "k": "keap_contacts", "h": "highlevel_contacts", "p": "identity_profiles"}
SOURCE_KIND = {"greenhouse": "c", "keap": "k", "highlevel": "h"}
SUPPRESSION_KIND = {"c": "greenhouse_candidate", "a": "greenhouse_application",
                    "k": "keap_contact", "h": "highlevel_contact"}


class ErasureError(ValueError):
    pass


@dataclass
class ErasureReport:
    """What an erasure found and did (counts and hashes only: safe to print and log)."""

    subject: str                                   # suppression hash of the request
    applied: bool
    erasure_id: str
    identifiers: dict[str, int] = field(default_factory=dict)
    entities: dict[str, dict[str, int]] = field(default_factory=dict)
    text_files_rewritten: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    leftovers_removed: int = 0
    suppression_added: int = 0
    duration_seconds: float = 0.0
    audit_event_id: str | None = None

    @property
    def rows_removed(self) -> int:
        return sum(e["rows_removed"] for e in self.entities.values())

    @property
    def files_rewritten(self) -> int:
        return sum(e["files_rewritten"] for e in self.entities.values())

    @property
    def noop(self) -> bool:
        return (self.rows_removed == 0 and not self.text_files_rewritten
                and not self.files_deleted and self.suppression_added == 0)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "applied": self.applied, "erasure_id": self.erasure_id,
                "identifiers": self.identifiers, "entities": self.entities,
                "rows_removed": self.rows_removed, "files_rewritten": self.files_rewritten,
                "text_files_rewritten": self.text_files_rewritten,
                "files_deleted": self.files_deleted, "leftovers_removed": self.leftovers_removed,
                "suppression_added": self.suppression_added,
                "duration_seconds": self.duration_seconds,
                "audit_event_id": self.audit_event_id}

    def lines(self) -> list[str]:
        verb = "removed" if self.applied else "would remove"
        out = [f"erasure {self.erasure_id} (subject {self.subject[:16]}…): {verb} "
               f"{self.rows_removed} rows in {self.files_rewritten} files"
               + ("" if self.applied else " (dry run: nothing written)")]
        ids = ", ".join(f"{k} {v}" for k, v in self.identifiers.items())
        out.append(f"  identifiers resolved: {ids}")
        for name, e in sorted(self.entities.items()):
            out.append(f"  {name}: {e['rows_removed']} rows, {e['files_rewritten']} files, "
                       f"{e['partitions']} partitions")
        for p in self.text_files_rewritten:
            out.append(f"  text file rewritten: {p}")
        for p in self.files_deleted:
            out.append(f"  file deleted (it named the person): {p}")
        if self.leftovers_removed:
            out.append(f"  leftover staging folders removed: {self.leftovers_removed}")
        out.append(f"  suppression list: {self.suppression_added} new hashes")
        if self.applied and self.noop:
            out.append("  nothing left to erase (already forgotten)")
        return out


# -- resolution ------------------------------------------------------------------------------
def _entity_glob(root: Path, source: str, entity: str) -> str | None:
    base = root / source / entity
    if not any(base.glob("snapshot_date=*/*.parquet")):
        return None
    return str(base / "snapshot_date=*" / "*.parquet")


def _read(glob: str) -> str:
    return f"read_parquet('{glob}', union_by_name = true, hive_partitioning = false)"


def _sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def resolve(con: duckdb.DuckDBPyConnection, root: Path, email: str | None,
            source_ids: dict[str, list[str]]) -> dict[str, Any]:
    """Create TEMP TABLEs `person_ids(kind, id VARCHAR)` and `person_emails(email)` (normalized)
    and `person_needles(needle)` (every lower-cased spelling found in the backups); returns
    counts per kind."""
    from assets.identity import emails as em
    from assets.identity.config import NormalizationConfig

    em.register(con)
    parts = []
    for source, entity, kind, expr in (
            ("greenhouse", "candidates", "c",
             "list_concat(coalesce(emails, []), [primary_email])"),
            ("keap", "contacts", "k", "list_concat(coalesce(emails, []), [primary_email])"),
            ("highlevel", "contacts", "h", "[email]")):
        g = _entity_glob(root, source, entity)
        if g:
            parts.append(f"SELECT DISTINCT '{kind}' AS kind, CAST(id AS VARCHAR) AS id, "
                         f"unnest({expr}) AS raw FROM {_read(g)}")
    con.execute("CREATE OR REPLACE TEMP TABLE addr_raw (kind VARCHAR, id VARCHAR, raw VARCHAR)")
    if parts:
        con.execute("INSERT INTO addr_raw SELECT * FROM (" + " UNION ".join(parts) +
                    ") WHERE raw IS NOT NULL")
    em.normalize_emails(con, "SELECT raw FROM addr_raw", "addr_norm", NormalizationConfig())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE addr AS
        SELECT r.kind, r.id, r.raw, coalesce(n.email, tv_fold(r.raw)) AS email
        FROM addr_raw r JOIN addr_norm n USING (raw)
    """)
    con.execute("CREATE OR REPLACE TEMP TABLE seeds (kind VARCHAR, id VARCHAR)")
    for source, ids in source_ids.items():
        for i in ids:
            con.execute("INSERT INTO seeds VALUES (?, ?)", [SOURCE_KIND[source], str(i)])
    con.execute("CREATE OR REPLACE TEMP TABLE person_emails (email VARCHAR)")
    if email:
        con.execute("INSERT INTO person_emails VALUES (?)",
                    [suppression.normalize("email", email)])
    # seed records: the given ids and the records holding the given address
    con.execute("""
        INSERT INTO seeds SELECT DISTINCT kind, id FROM addr
        WHERE email IN (SELECT email FROM person_emails)
    """)
    # the person's addresses: the given one and every address on a seed record
    con.execute("""
        INSERT INTO person_emails
        SELECT DISTINCT email FROM addr SEMI JOIN seeds USING (kind, id)
        EXCEPT SELECT email FROM person_emails
    """)
    # every person record holding one of those addresses
    con.execute("""
        CREATE OR REPLACE TEMP TABLE person_ids AS
        SELECT DISTINCT kind, id FROM (
            SELECT kind, id FROM seeds
            UNION SELECT kind, id FROM addr WHERE email IN (SELECT email FROM person_emails))
    """)
    _dependents(con, root)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE person_needles AS
        SELECT DISTINCT needle FROM (
            SELECT email AS needle FROM person_emails
            UNION SELECT lower(trim(raw)) FROM addr
                  WHERE email IN (SELECT email FROM person_emails)
            UNION SELECT tv_fold(raw) FROM addr WHERE email IN (SELECT email FROM person_emails))
        WHERE needle IS NOT NULL AND needle <> '' AND contains(needle, '@')
    """)
    counts = dict(con.execute("SELECT kind, count(*) FROM person_ids GROUP BY kind").fetchall())
    out = {KIND_NAMES[k]: int(counts.get(k, 0)) for k in "ckhap"}
    out["emails"] = con.execute("SELECT count(*) FROM person_emails").fetchone()[0]
    return out


def _dependents(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Applications of the person's candidates, and identity profiles holding them."""
    cands = "(SELECT id FROM person_ids WHERE kind = 'c')"
    for entity in ("applications", "offers"):
        g = _entity_glob(root, "greenhouse", entity)
        if g:
            key = "id" if entity == "applications" else "application_id"
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'a', CAST({key} AS VARCHAR) FROM {_read(g)}
                WHERE CAST(candidate_id AS VARCHAR) IN {cands} AND {key} IS NOT NULL
                EXCEPT SELECT kind, id FROM person_ids
            """)
    g = _entity_glob(root, "identity", "candidate_profiles")
    if g:
        cols = set(con.sql(f"SELECT * FROM {_read(g)} LIMIT 0").columns)
        cand_cols = [c for c in ("candidate_ids", "merged_candidate_ids") if c in cols]
        conds = [f"list_has_any(CAST({c} AS VARCHAR[]), {_id_list('c')})" for c in cand_cols]
        conds += _email_conditions(cols)
        if conds and "profile_id" in cols:
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'p', CAST(profile_id AS VARCHAR) FROM {_read(g)}
                WHERE {" OR ".join(f"coalesce({c}, FALSE)" for c in conds)}
                EXCEPT SELECT kind, id FROM person_ids
            """)
        if "application_ids" in cols and "profile_id" in cols:
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'a', CAST(a AS VARCHAR) FROM (
                    SELECT unnest(application_ids) AS a FROM {_read(g)}
                    WHERE CAST(profile_id AS VARCHAR) IN {_ids_of('p')})
                WHERE a IS NOT NULL
                EXCEPT SELECT kind, id FROM person_ids
            """)
    g = _entity_glob(root, "identity", "keap_contacts")
    if g:
        cols = set(con.sql(f"SELECT * FROM {_read(g)} LIMIT 0").columns)
        conds = _email_conditions(cols)
        if conds and "contact_id" in cols:
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'k', CAST(contact_id AS VARCHAR) FROM {_read(g)}
                WHERE {" OR ".join(f"coalesce({c}, FALSE)" for c in conds)}
                EXCEPT SELECT kind, id FROM person_ids
            """)


def _email_conditions(cols: set[str]) -> list[str]:
    """Conditions on the (already normalized) `email` / `emails` columns of identity outputs."""
    out = []
    if "email" in cols:
        out.append("email IN (SELECT email FROM person_emails)")
    if "emails" in cols:
        out.append("list_has_any(emails, (SELECT coalesce(list(email), []) FROM person_emails))")
    return out


# -- finding the rows ------------------------------------------------------------------------
def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    rel = con.sql(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false) LIMIT 0")
    return list(zip(rel.columns, [str(t) for t in rel.types], strict=True))


def _ids_of(kinds: str) -> str:
    inner = " OR ".join(f"kind = '{k}'" for k in kinds)
    return f"(SELECT id FROM person_ids WHERE {inner})"


def _id_list(kinds: str) -> str:
    inner = " OR ".join(f"kind = '{k}'" for k in kinds)
    return f"(SELECT coalesce(list(id), []) FROM person_ids WHERE {inner})"


def _needle_pattern(needles: list[str]) -> str | None:
    """One RE2 pattern matching any of the addresses as a whole address."""
    if not needles:
        return None
    alt = "|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
    # before: start, a character that cannot end a local part, or a JSON escape (`\\t`, `\\u00a0`)
    before = r"(?:^|[^a-z0-9._%+\-]|\\[a-z]|\\u[0-9a-f]{4})"
    after = r"(?:$|[^a-z0-9.\-]|\.(?:$|[^a-z0-9]))"
    return f"{before}(?:{alt}){after}"


def row_predicate(columns: list[tuple[str, str]], rel_parts: tuple[str, ...],
                  needles: list[str]) -> str | None:
    """SQL: true for a row about the person (None: nothing in this file can be)."""
    names = {c for c, _ in columns}
    conds = []
    for name, type_ in columns:
        q = f'"{name}"'
        kinds = ID_COLUMNS.get(name)
        if name == "id" and len(rel_parts) >= 2:
            kinds = ENTITY_ID.get((rel_parts[0], rel_parts[1]))
        if kinds:
            if type_.endswith("[]"):
                conds.append(f"list_has_any(CAST({q} AS VARCHAR[]), {_id_list(kinds)})")
            else:
                conds.append(f"CAST({q} AS VARCHAR) IN {_ids_of(kinds)}")
    if {"record_id", "entity"} <= names:
        for entity, k in QUARANTINE_RECORD.items():
            conds.append(f"(entity = '{entity}' AND CAST(record_id AS VARCHAR) IN "
                         f"{_ids_of(k)})")
    pattern = _needle_pattern(needles)
    if pattern:
        texts = []
        for name, type_ in columns:
            q = f'"{name}"'
            if type_ == "VARCHAR":
                texts.append(f"coalesce({q}, '')")
            elif type_.endswith("[]") or type_.startswith(("STRUCT", "MAP", "UNION")) \
                    or type_ == "JSON":
                texts.append(f"coalesce(CAST(to_json({q}) AS VARCHAR), '')")
        if texts:
            text = "lower(concat_ws(chr(31), " + ", ".join(texts) + "))"
            pre = " OR ".join(f"contains({text}, {_sql_str(n)})" for n in needles)
            conds.append(f"(({pre}) AND regexp_matches({text}, {_sql_str(pattern)}))")
    return " OR ".join(f"coalesce({c}, FALSE)" for c in conds) if conds else None


# -- rewriting --------------------------------------------------------------------------------
def _copy_without(con: duckdb.DuckDBPyConnection, src: Path, dst: Path, pred: str) -> int:
    """Write `src` minus the matching rows to `dst` (same order, zstd); returns rows kept."""
    con.execute(f"""
        COPY (SELECT * FROM read_parquet('{src}', hive_partitioning = false)
              WHERE NOT ({pred}))
        TO '{dst}' (FORMAT parquet, COMPRESSION zstd)
    """)
    _fsync(dst)
    return con.execute(f"SELECT count(*) FROM read_parquet('{dst}')").fetchone()[0]


def fingerprint(con: duckdb.DuckDBPyConnection, files: list[Path], backup: bool) -> str:
    """The manifest's content fingerprint, computed as the writers compute it: an
    order-independent sum of row hashes over every column (backups: but run metadata)."""
    glob = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    cols = [c for c, _ in _columns(con, files[0])]
    if backup:
        cols = [c for c in cols if c not in RUN_METADATA]
    row = ", ".join(f'"{c}"' for c in cols)
    return str(con.execute(f"""
        SELECT coalesce(sum(hash({row})::HUGEINT), 0)
        FROM read_parquet({glob}, hive_partitioning = false)""").fetchone()[0])


def _rewrite_partition(con: duckdb.DuckDBPyConnection, part: Path, affected: dict[str, str],
                       erasure_id: str, backup: bool) -> None:
    """Rebuild partition `part` without the person's rows, in a staging folder swapped into
    place like a landed partition (so the files and the manifest change together)."""
    manifest = json.loads((part / "_manifest.json").read_text())
    staging = part.parent / f".erasing-{part.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        entries = {f["file"]: dict(f) for f in manifest.get("files", [])}
        removed = 0
        for f in sorted(part.glob("*.parquet")):
            dst = staging / f.name
            if f.name in affected:
                kept = _copy_without(con, f, dst, affected[f.name])
                entry = entries.setdefault(f.name, {"file": f.name})
                removed += int(entry.get("rows", 0)) - kept if "rows" in entry else 0
                entry.update({"rows": kept, "sha256": sha256_file(dst),
                              "bytes": dst.stat().st_size})
            else:
                os.link(f, dst)
        files = sorted(staging.glob("*.parquet"))
        manifest["files"] = [entries[f.name] for f in files if f.name in entries]
        manifest["rows"] = sum(int(e["rows"]) for e in manifest["files"])
        if files:
            names = {c for c, _ in _columns(con, files[0])}
            glob = "[" + ", ".join(f"'{f}'" for f in files) + "]"
            if "_op" in names and "upserts" in manifest:
                ops = dict(con.execute(f"SELECT _op, count(*) FROM read_parquet({glob}) "
                                       "GROUP BY _op").fetchall())
                manifest["upserts"] = int(ops.get("upsert", 0))
                manifest["deletes"] = int(ops.get("delete", 0))
            if "content_fingerprint" in manifest:
                manifest["content_fingerprint"] = fingerprint(con, files, backup)
        manifest.setdefault("erasures", []).append(
            {"erasure_id": erasure_id, "at": iso(datetime.now(UTC)), "rows_removed": removed,
             "files_rewritten": len(affected)})
        # re-sealed and recorded in the seal ledger as this erasure's rewrite
        land(staging, part, manifest, event="erasure", reason=erasure_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _rewrite_file(con: duckdb.DuckDBPyConnection, path: Path, pred: str) -> None:
    """Replace one manifest-less Parquet file (the sync ledger) atomically."""
    tmp = path.with_name(f".{path.name}.erasing-{uuid.uuid4().hex[:8]}")
    try:
        mode = path.stat().st_mode & 0o777
        _copy_without(con, path, tmp, pred)
        tmp.chmod(mode)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rewrite_jsonl(path: Path, needles: list[str], ids: dict[str, set[str]]) -> int:
    """Drop the lines naming the person (an address, or an id under an id key)."""
    pattern = re.compile(_needle_pattern(needles)) if needles else None
    kept, dropped = [], 0
    for line in path.read_text().splitlines(keepends=True):
        hit = bool(pattern and pattern.search(line.lower()))
        if not hit and line.strip():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                doc = None
            if isinstance(doc, dict):
                for key, kinds in ID_COLUMNS.items():
                    v = doc.get(key)
                    values = v if isinstance(v, list) else [v]
                    if any(str(x) in ids.get(k, set()) for x in values if x is not None
                           for k in kinds):
                        hit = True
                        break
        if hit:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.erasing-{uuid.uuid4().hex[:8]}")
        with open(tmp, "w") as f:
            f.write("".join(kept))
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    return dropped


def _mentions(path: Path, needles: list[str]) -> bool:
    pattern = re.compile(_needle_pattern(needles).encode()) if needles else None
    if pattern is None:
        return False
    overlap = 4 * max(len(n.encode()) for n in needles) + 16
    tail = b""
    with open(path, "rb") as f:       # streamed: a large file is never read whole
        while chunk := f.read(1 << 22):
            data = tail + chunk.lower()
            if pattern.search(data):
                return True
            tail = data[-overlap:]
    return False


# -- leftovers --------------------------------------------------------------------------------
def _recover_and_clean(root: Path, apply: bool) -> int:
    """Finish an erasure swap a crash interrupted, and remove staging folders of killed runs
    (they may hold personal data); returns how many folders were removed."""
    removed = 0
    now = time.time()
    for d in root.rglob(".*"):
        if not d.is_dir() or any(p in SKIP_TOP for p in d.relative_to(root).parts[:1]):
            continue
        name = d.name
        if name.startswith(".erasing-") and (d / "_manifest.json").exists():
            target = d.parent / name[len(".erasing-"):].rsplit("-", 1)[0]
            if not target.exists():
                if apply:
                    os.rename(d, target)   # the crash fell between the two renames
                    _fsync(target.parent)
                    manifest = json.loads((target / "_manifest.json").read_text())
                    if "seal" in manifest:
                        seals.record_partition(target, manifest, "recovered")
                continue
        stale = name.startswith((".replaced-", ".erasing-")) or (
            name.startswith(".staging-") and _newest_mtime(d) < now - STALE_SECONDS)
        if stale:
            removed += 1
            if apply:
                shutil.rmtree(d, ignore_errors=True)
    return removed


def _newest_mtime(d: Path) -> float:
    times = [d.stat().st_mtime] + [p.stat().st_mtime for p in d.rglob("*") if p.exists()]
    return max(times)


# -- the whole erasure ------------------------------------------------------------------------
def _check_request(email: str | None, source_ids: dict[str, list[str]] | None) -> None:
    if not email and not any((source_ids or {}).values()):
        raise ErasureError("say whom to forget: an email address, or a source and an id "
                           "(talentvault forget --email ADDRESS | --source keap --id 123)")
    for s in source_ids or {}:
        if s not in SOURCE_KIND:
            raise ErasureError(f"unknown source {s!r}: expected one of "
                               f"{', '.join(SOURCE_KIND)}")
    if email and "@" not in email:
        raise ErasureError("the email given has no @-sign: pass the person's address as it is "
                           "(any case or spacing), e.g. --email jane.doe@example.com")


def _subject(root: Path, email: str | None, source_ids: dict[str, list[str]]) -> str:
    if email:
        return suppression.identity_hash(root, "email", email)
    source, ids = next((s, i) for s, i in sorted(source_ids.items()) if i)
    return suppression.identity_hash(root, suppression.SOURCE_KIND[source], sorted(ids)[0])


def _parquet_files(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*.parquet")):
        rel = p.relative_to(root).parts
        if rel[0] in SKIP_TOP or any(part.startswith(".") for part in rel) \
                or "/".join(rel) in SUPPRESSION_FILES:
            continue
        out.append(p)
    return out


def forget(root: Path, email: str | None = None,
           source_ids: dict[str, list[str]] | None = None, apply: bool = True,
           run_id: str | None = None) -> ErasureReport:
    """Erase one person (by email and/or source ids: {"greenhouse"|"keap"|"highlevel": [ids]})
    from every file under `root`, and suppress them from then on. See the module docstring."""
    started = time.monotonic()
    root = Path(root)
    source_ids = {s: [str(i) for i in ids] for s, ids in (source_ids or {}).items()}
    _check_request(email, source_ids)
    erasure_id = uuid.uuid4().hex[:16]
    report = ErasureReport(subject=_subject(root, email, source_ids), applied=apply,
                           erasure_id=erasure_id)
    lock = suppression.erasing(root) if apply else _nolock()
    with lock:
        con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB",
                                     "preserve_insertion_order": True})
        try:
            report.identifiers = resolve(con, root, email, source_ids)
            needles = [r[0] for r in con.execute(
                "SELECT needle FROM person_needles ORDER BY needle").fetchall()]
            ids: dict[str, set[str]] = {}
            for k, i in con.execute("SELECT kind, id FROM person_ids").fetchall():
                ids.setdefault(k, set()).add(i)
            # 1. suppress first: whatever lands from now on is filtered
            pairs = [("email", e) for (e,) in con.execute(
                "SELECT email FROM person_emails").fetchall()]
            pairs += [(SUPPRESSION_KIND[k], i) for k, vs in ids.items()
                      if k in SUPPRESSION_KIND for i in vs]
            hashed = [(suppression.identity_hash(root, kind, v, normalized=True), kind)
                      for kind, v in pairs]
            known = suppression.hashes(root) if suppression.list_path(root).exists() else set()
            report.suppression_added = len({h for h, _ in hashed} - known)
            if apply:
                suppression.add_hashes(root, hashed)
                report.leftovers_removed = _recover_and_clean(root, apply=True)
            else:
                report.leftovers_removed = _recover_and_clean(root, apply=False)
            # 2. every Parquet file
            _erase_parquet(con, root, needles, report, apply)
        finally:
            con.close()
        # 3. other files naming the person
        _erase_text(root, needles, ids, report, apply)
    report.duration_seconds = round(time.monotonic() - started, 3)
    if apply:
        report.audit_event_id = audit.record(
            root, "erasure", target=f"subject:{report.subject}", run_id=run_id,
            status="noop" if report.noop else "succeeded",
            counts={"rows_removed": report.rows_removed,
                    "files_rewritten": report.files_rewritten,
                    "text_files_rewritten": len(report.text_files_rewritten),
                    "files_deleted": len(report.files_deleted),
                    "suppression_added": report.suppression_added,
                    "leftovers_removed": report.leftovers_removed,
                    **{f"ids_{k}": v for k, v in report.identifiers.items()}},
            details={"erasure_id": erasure_id, "entities": report.entities,
                     "duration_seconds": report.duration_seconds})
    log.info("erasure %s: %d rows in %d files%s", erasure_id, report.rows_removed,
             report.files_rewritten, "" if apply else " (dry run)")
    return report


class _nolock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _erase_parquet(con: duckdb.DuckDBPyConnection, root: Path, needles: list[str],
                   report: ErasureReport, apply: bool) -> None:
    by_partition: dict[Path, dict[str, str]] = {}
    loose: list[tuple[Path, str]] = []
    for path in _parquet_files(root):
        rel = path.relative_to(root).parts
        pred = row_predicate(_columns(con, path), rel, needles)
        if pred is None:
            continue
        n = con.execute(f"""SELECT count(*) FROM read_parquet('{path}', hive_partitioning = false)
                            WHERE {pred}""").fetchone()[0]
        if not n:
            continue
        entity = "/".join(rel[:2]) if len(rel) > 2 else rel[0]
        e = report.entities.setdefault(entity, {"rows_removed": 0, "files_rewritten": 0,
                                                "partitions": 0})
        e["rows_removed"] += int(n)
        e["files_rewritten"] += 1
        if (path.parent / "_manifest.json").exists():
            if path.parent not in by_partition:
                e["partitions"] += 1
            by_partition.setdefault(path.parent, {})[path.name] = pred
        else:
            loose.append((path, pred))
    if not apply:
        return
    for part, affected in by_partition.items():
        backup = part.relative_to(root).parts[0] in BACKUP_SOURCES
        _rewrite_partition(con, part, affected, report.erasure_id, backup)
    for path, pred in loose:
        _rewrite_file(con, path, pred)


def _erase_text(root: Path, needles: list[str], ids: dict[str, set[str]],
                report: ErasureReport, apply: bool) -> None:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] in SKIP_TOP or path.suffix == ".parquet" \
                or any(p.startswith(".") for p in rel.parts[:-1]) \
                or "/".join(rel.parts) in SUPPRESSION_FILES:
            continue
        if path.suffix == ".jsonl":
            if apply:
                if _rewrite_jsonl(path, needles, ids):
                    report.text_files_rewritten.append(str(rel))
            elif _mentions(path, needles):
                report.text_files_rewritten.append(str(rel))
            continue
        if not _mentions(path, needles):
            continue
        if path.name == "_manifest.json":
            raise ErasureError(f"{rel} names the person outside its data rows; edit the "
                               "manifest by hand (remove the address) and re-run forget")
        report.files_deleted.append(str(rel))
        if apply:
            path.unlink()
