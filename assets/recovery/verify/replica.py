"""Both copies (TALENTVAULT_REPLICA_DIR): `check_replica` holds the replica's partitions against
the primary's manifests, and names partitions only the replica still has; `repair` copies a
missing or damaged partition back from whichever copy is healthy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assets.recovery.verify.partitions import check_partition, partition_folders, rel_path
from assets.recovery.verify.report import Problem, VerifyReport
from orchestration.storage import replica
from orchestration.storage.seals import sha256_file

PREFIX = "replica:"


def check_replica(root: Path, folders: list[Path], manifests: dict[Path, dict[str, Any]],
                  report: VerifyReport) -> None:
    """Every primary partition has an identical, intact copy in the replica; a partition the
    replica holds but the primary lost is reported for repair."""
    base = replica.replica_root()
    if base is None:
        return
    report.replica = str(base)
    for folder in folders:
        manifest = manifests.get(folder)
        if manifest is None:
            continue
        rel = rel_path(root, folder)
        copy = base / rel
        if not (copy / "_manifest.json").exists():
            report.problems.append(Problem(f"{PREFIX}{rel}", "replica_missing",
                                           "no copy in the replica: `talentvault verify "
                                           "--repair` copies it there"))
            continue
        report.replica_partitions += 1
        if json.loads((copy / "_manifest.json").read_text()) != manifest:
            report.problems.append(Problem(f"{PREFIX}{rel}", "replica_stale",
                                           "the replica's manifest differs from the primary's "
                                           "(an older copy): `verify --repair` refreshes it"))
            continue
        for entry in manifest["files"]:
            f = copy / entry["file"]
            if not f.exists() or sha256_file(f) != entry.get("sha256"):
                report.problems.append(Problem(
                    f"{PREFIX}{rel}/{entry['file']}", "replica_damaged",
                    "missing or changed in the replica (sha256 differs): `verify --repair` "
                    "copies it again from the primary"))
    primary = {rel_path(root, f) for f in folders}
    for copy in partition_folders(base):
        rel = rel_path(base, copy)
        if rel not in primary and (copy / "_manifest.json").exists():
            report.problems.append(Problem(
                rel, "missing_in_primary",
                "missing here but held by the replica: `talentvault verify --repair` copies "
                "it back"))


@dataclass
class Repair:
    restored_from_replica: list[str] = field(default_factory=list)
    copied_to_replica: list[str] = field(default_factory=list)
    not_repairable: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"restored from the replica: {p}" for p in self.restored_from_replica]
                + [f"copied to the replica: {p}" for p in self.copied_to_replica]
                + [f"NOT REPAIRABLE (no healthy copy): {p}" for p in self.not_repairable])


def _healthy(base: Path, folder: Path) -> bool:
    probe = VerifyReport(str(base), False)
    return (folder / "_manifest.json").exists() and \
        check_partition(base, folder, probe) is not None and probe.ok


def repair(root: Path, report: VerifyReport) -> Repair:
    """Copy each partition `report` names damaged or missing from the healthy copy."""
    base = replica.replica_root()
    out = Repair()
    if base is None:
        raise replica.ReplicaError(f"nothing to repair from: set {replica.ENV_VAR} to the "
                                   "replica's folder")
    root = Path(root).resolve()
    partitions: dict[str, None] = {}
    for p in report.problems:
        path = p.path.removeprefix(PREFIX)
        parts = Path(path).parts
        if len(parts) >= 3 and parts[2].startswith("snapshot_date="):
            partitions["/".join(parts[:3])] = None
    for rel in partitions:
        here, there = root / rel, base / rel
        if _healthy(base, there) and not _healthy(root, here):
            replica.copy_partition(there, here)
            out.restored_from_replica.append(rel)
        elif _healthy(root, here):
            replica.copy_partition(here, there)
            out.copied_to_replica.append(rel)
        else:
            out.not_repairable.append(rel)
    return out
