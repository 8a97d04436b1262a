"""`forget()`: the whole erasure, in the order the package docstring gives (resolve, suppress
first, every Parquet file, then other files naming the person), and its audit event."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import duckdb

from assets.identity import suppressed
from assets.recovery.erasure.leftovers import recover_and_clean
from assets.recovery.erasure.report import ErasureError, ErasureReport
from assets.recovery.erasure.resolve import resolve
from assets.recovery.erasure.rewrite import mentions, rewrite_file, rewrite_jsonl, rewrite_partition
from assets.recovery.erasure.rows import columns, row_predicate
from assets.recovery.erasure.scope import (
    BACKUP_SOURCES,
    SKIP_TOP,
    SOURCE_KIND,
    SUPPRESSION_FILES,
    SUPPRESSION_KIND,
)
from orchestration.storage import audit, suppression
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path

log = logging.getLogger("talentvault.erasure")


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
        return suppressed.identity_hash(root, "email", email)
    source, ids = next((s, i) for s, i in sorted(source_ids.items()) if i)
    return suppressed.identity_hash(root, suppression.SOURCE_KIND[source], sorted(ids)[0])


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
    from every file under `root`, and suppress them from then on. See the package docstring."""
    started = time.monotonic()
    root = Path(root)
    source_ids = {s: [str(i) for i in ids] for s, ids in (source_ids or {}).items()}
    _check_request(email, source_ids)
    erasure_id = uuid.uuid4().hex[:16]
    report = ErasureReport(subject=_subject(root, email, source_ids), applied=apply,
                           erasure_id=erasure_id)
    lock = suppression.erasing(root) if apply else _nolock()
    with lock:
        con = connect_duckdb(config={"threads": 2, "memory_limit": "1GB",
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
            hashed = [(suppressed.identity_hash(root, kind, v, normalized=True), kind)
                      for kind, v in pairs]
            known = suppression.hashes(root) if suppression.list_path(root).exists() else set()
            report.suppression_added = len({h for h, _ in hashed} - known)
            if apply:
                suppression.add_hashes(root, hashed)
                report.leftovers_removed = recover_and_clean(root, apply=True)
            else:
                report.leftovers_removed = recover_and_clean(root, apply=False)
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
    if apply:
        _replica_records(root)
    log.info("erasure %s: %d rows in %d files%s", erasure_id, report.rows_removed,
             report.files_rewritten, "" if apply else " (dry run)")
    return report


def _replica_records(root: Path) -> None:
    """The new erasure list (and the rewritten or deleted ledgers and audit files) to the
    replica bucket now, not at the next verify: a primary rebuilt from the bucket must know."""
    from orchestration.storage import parquet, replica
    from orchestration.storage.bucket_state import push_state

    bucket = replica.replica_bucket()
    if bucket is not None:
        push_state(root, bucket, parquet.current_key(), prune=True)


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
        pred = row_predicate(columns(con, path), rel, needles)
        if pred is None:
            continue
        n = con.execute(f"""SELECT count(*)
                            FROM read_parquet('{duck_path(path)}', hive_partitioning = false)
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
        rewrite_partition(con, part, affected, report.erasure_id, backup)
    for path, pred in loose:
        rewrite_file(con, path, pred)


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
                if rewrite_jsonl(path, needles, ids):
                    report.text_files_rewritten.append(str(rel))
            elif mentions(path, needles):
                report.text_files_rewritten.append(str(rel))
            continue
        if not mentions(path, needles):
            continue
        if path.name == "_manifest.json":
            raise ErasureError(f"{rel} names the person outside its data rows; edit the "
                               "manifest by hand (remove the address) and re-run forget")
        report.files_deleted.append(str(rel))
        if apply:
            path.unlink()
