"""A data root's files, for the modules below everything else: where its partitions are, a
file's digest, a bookkeeping file written whole (no import of the rest of storage/, so any
module may use them)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any


def replace_json(path: Path, obj: Any) -> None:
    """Write a small bookkeeping file whole (a temp file renamed over it): a reader sees the
    old or the new one, never half. Not fsynced: what it records can be found again."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, sort_keys=True))
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


BACKUP_SOURCES = ("greenhouse", "keap", "highlevel")
DERIVED_SOURCES = ("identity", "sync", "history")


def partition_folders(root: Path) -> list[Path]:
    """Every `snapshot_date=*` folder of backups and derived outputs, in a stable order."""
    out: list[Path] = []
    for source in (*BACKUP_SOURCES, *DERIVED_SOURCES):
        base = Path(root) / source
        if not base.is_dir():
            continue
        for entity_dir in sorted(p for p in base.iterdir()
                                 if p.is_dir() and not p.name.startswith(".")):
            out += sorted(p for p in entity_dir.glob("snapshot_date=*") if p.is_dir())
    return out
