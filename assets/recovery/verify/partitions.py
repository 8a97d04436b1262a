"""Each partition folder against its manifest: the files it lists exist, re-hash to their sha256
and hold the rows recorded, nothing unlisted sits beside them; with `read_data`, every row is
decoded and a backup's content fingerprint recomputed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from assets.recovery.verify.report import Problem, VerifyReport
from orchestration.storage import parquet
from orchestration.storage.files import (  # noqa: F401 - verify's names
    BACKUP_SOURCES,
    DERIVED_SOURCES,
    partition_folders,
)
from orchestration.storage.parquet import duck_path
from orchestration.storage.seals import sha256_file
from orchestration.storage.writer import RUN_METADATA


def rel_path(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_partition(root: Path, folder: Path, report: VerifyReport) -> dict[str, Any] | None:
    """Files against the manifest; returns the manifest when it could be read."""
    manifest_path = folder / "_manifest.json"
    present = {p.name: p for p in folder.iterdir() if p.name != "_manifest.json"}
    if not manifest_path.exists():
        if any(name.endswith(".parquet") for name in present):
            report.problems.append(Problem(
                rel_path(root, folder), "no_manifest",
                "partition holds part files but no _manifest.json (the catalog reads them "
                "unverified): re-run the backup of that day, or remove the folder"))
        else:
            report.warnings.append(Problem(rel_path(root, folder), "empty_partition",
                                           "partition folder without manifest or files"))
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = {f["file"]: f for f in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        report.problems.append(Problem(rel_path(root, manifest_path), "manifest_unreadable",
                                       f"manifest cannot be read ({type(e).__name__})"))
        return None
    report.partitions += 1
    for name, entry in listed.items():
        path = folder / name
        rel = rel_path(root, path)
        if name not in present:
            report.problems.append(Problem(rel, "missing",
                                           "listed in the manifest but missing on disk"))
            continue
        report.files += 1
        size = path.stat().st_size
        report.bytes += size
        if entry.get("bytes") is not None and size != int(entry["bytes"]):
            report.problems.append(Problem(
                rel, "size", f"{size} bytes on disk, the manifest records {entry['bytes']}"))
        if sha256_file(path) != entry.get("sha256"):
            report.problems.append(Problem(
                rel, "sha256", "content changed since it was written: sha256 differs from the "
                "manifest (bit rot or an edit); restore this file from a copy or re-run the "
                "backup of that day"))
        try:
            rows = parquet.open_file(path).metadata.num_rows
        except Exception as e:  # noqa: BLE001 - any unreadable footer is damage to report
            report.problems.append(Problem(rel, "unreadable",
                                           f"Parquet footer unreadable ({type(e).__name__})"))
            continue
        report.rows += rows
        if rows != int(entry.get("rows", -1)):
            report.problems.append(Problem(
                rel, "row_count", f"{rows} rows in the file, the manifest records "
                f"{entry.get('rows')}"))
    if sum(int(f.get("rows", 0)) for f in listed.values()) != int(manifest.get("rows", 0)):
        report.problems.append(Problem(rel_path(root, manifest_path), "manifest_rows",
                                       "the manifest's total rows differ from its files' rows"))
    for name in sorted(present.keys() - listed.keys()):
        report.problems.append(Problem(
            rel_path(root, folder / name), "unlisted",
            "not listed in the manifest (the catalog would read it): remove it"))
    return manifest


def read_partition(con: duckdb.DuckDBPyConnection, root: Path, folder: Path,
                    manifest: dict[str, Any], report: VerifyReport) -> None:
    """Decode every row of every listed file; for backups, recompute the content fingerprint."""
    files = [folder / f["file"] for f in manifest["files"] if (folder / f["file"]).exists()]
    for path in files:
        try:
            read_all(path)
        except Exception as e:  # noqa: BLE001 - whatever stops a full read is damage
            report.problems.append(Problem(rel_path(root, path), "undecodable",
                                           f"rows cannot be read back ({type(e).__name__})"))
            return
    if not files or len(files) != len(manifest["files"]):
        return
    is_backup = folder.parent.parent.name in BACKUP_SOURCES
    expected = manifest.get("content_fingerprint")
    if not is_backup or expected is None:
        return
    names = [c["name"] for c in manifest.get("schema", []) if c["name"] not in RUN_METADATA]
    cols = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    listing = ", ".join("'" + duck_path(p).replace("'", "''") + "'" for p in files)
    try:
        got = str(con.execute(
            f"SELECT coalesce(sum(hash({cols})::HUGEINT), 0) "
            f"FROM read_parquet([{listing}], union_by_name = true)").fetchone()[0])
    except duckdb.Error as e:
        report.problems.append(Problem(rel_path(root, folder), "undecodable",
                                       f"rows cannot be read back ({type(e).__name__})"))
        return
    if got != str(expected):
        report.problems.append(Problem(
            rel_path(root, folder), "fingerprint",
            "content fingerprint of the rows read back differs from the manifest's: the data "
            "changed after it was written; re-run the backup of that day"))


def read_all(path: Path) -> int:
    """Decompress and decode every page of every column, batch by batch (bounded memory)."""
    n = 0
    for batch in parquet.open_file(path).iter_batches(batch_size=65_536):
        batch.validate(full=True)
        n += batch.num_rows
    return n
