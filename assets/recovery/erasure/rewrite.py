"""Rewriting what names the person: a partition rebuilt without their rows (manifest, seal and all)
and swapped into place, a loose Parquet file replaced, JSON-lines files without their lines."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from assets.recovery.erasure.rows import columns, needle_pattern
from assets.recovery.erasure.scope import ID_COLUMNS
from orchestration.storage.fsync import fsync as _fsync
from orchestration.storage.landing import land
from orchestration.storage.parquet import duck_path, write_query
from orchestration.storage.seals import sha256_file
from orchestration.storage.writer import RUN_METADATA
from orchestration.times import iso


def copy_without(con: duckdb.DuckDBPyConnection, src: Path, dst: Path, pred: str) -> int:
    """Write `src` minus the matching rows to `dst` (same order, zstd); returns rows kept."""
    write_query(con, f"""
        SELECT * FROM read_parquet('{duck_path(src)}', hive_partitioning = false)
        WHERE NOT ({pred})""", dst)
    _fsync(dst)
    return con.execute(f"SELECT count(*) FROM read_parquet('{duck_path(dst)}')").fetchone()[0]


def fingerprint(con: duckdb.DuckDBPyConnection, files: list[Path], backup: bool) -> str:
    """The manifest's content fingerprint, computed as the writers compute it: an
    order-independent sum of row hashes over every column (backups: but run metadata)."""
    glob = "[" + ", ".join(f"'{duck_path(f)}'" for f in files) + "]"
    cols = [c for c, _ in columns(con, files[0])]
    if backup:
        cols = [c for c in cols if c not in RUN_METADATA]
    row = ", ".join(f'"{c}"' for c in cols)
    return str(con.execute(f"""
        SELECT coalesce(sum(hash({row})::HUGEINT), 0)
        FROM read_parquet({glob}, hive_partitioning = false)""").fetchone()[0])


def rewrite_partition(con: duckdb.DuckDBPyConnection, part: Path, affected: dict[str, str],
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
                kept = copy_without(con, f, dst, affected[f.name])
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
            names = {c for c, _ in columns(con, files[0])}
            glob = "[" + ", ".join(f"'{duck_path(f)}'" for f in files) + "]"
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


def rewrite_file(con: duckdb.DuckDBPyConnection, path: Path, pred: str) -> None:
    """Replace one manifest-less Parquet file (the sync ledger) atomically."""
    tmp = path.with_name(f".{path.name}.erasing-{uuid.uuid4().hex[:8]}")
    try:
        mode = path.stat().st_mode & 0o777
        copy_without(con, path, tmp, pred)
        tmp.chmod(mode)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rewrite_jsonl(path: Path, needles: list[str], ids: dict[str, set[str]]) -> int:
    """Drop the lines naming the person (an address, or an id under an id key)."""
    pattern = re.compile(needle_pattern(needles)) if needles else None
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


def mentions(path: Path, needles: list[str]) -> bool:
    pattern = re.compile(needle_pattern(needles).encode()) if needles else None
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
