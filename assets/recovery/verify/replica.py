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
from orchestration.storage import parquet, primary, replica
from orchestration.storage.bucket import Bucket
from orchestration.storage.bucket_state import pull_state, push_state
from orchestration.storage.seals import sha256_file

PREFIX = "replica:"


def check_replica(root: Path, folders: list[Path], manifests: dict[Path, dict[str, Any]],
                  report: VerifyReport) -> None:
    """Every primary partition has an identical, intact copy in the replica; a partition the
    replica holds but the primary lost is reported for repair."""
    bucket = replica.replica_bucket()
    if bucket is not None:
        _check_bucket(root, bucket, folders, manifests, report)
        return
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


def _check_bucket(root: Path, bucket: Bucket, folders: list[Path],
                  manifests: dict[Path, dict[str, Any]], report: VerifyReport,
                  label: str = "replica") -> None:
    """A bucket (the replica, or a bucket primary: `label`): each partition committed with the
    local manifest; with --read-data every file downloaded and re-hashed (without, the commit
    pointer only). The replica's partitions the primary lacks are named for repair."""
    if label == "replica":
        report.replica = bucket.url
    where = f"the {label} bucket"
    for folder in folders:
        manifest = manifests.get(folder)
        if manifest is None:
            continue
        rel = rel_path(root, folder)
        commit = bucket.commit_of(rel)
        if commit is None:
            report.problems.append(Problem(f"{label}:{rel}", f"{label}_missing",
                                           f"no committed copy in {where}: "
                                           "`talentvault verify --repair` uploads it"))
            continue
        if label == "replica":
            report.replica_partitions += 1
        else:
            report.primary_partitions += 1
        if commit["manifest"] != manifest:
            report.problems.append(Problem(f"{label}:{rel}", f"{label}_stale",
                                           f"{where}'s manifest differs from the local one "
                                           "(an older copy): `verify --repair` refreshes it"))
            continue
        if report.read_data:
            for entry in manifest["files"]:
                if bucket.file_sha256(rel, commit["version"], entry["file"]) != \
                        entry.get("sha256"):
                    report.problems.append(Problem(
                        f"{label}:{rel}/{entry['file']}", f"{label}_damaged",
                        f"missing or changed in {where} (sha256 differs): "
                        "`verify --repair` uploads it again"))
    if label != "replica":
        return
    primary = {rel_path(root, f) for f in folders}
    for rel in bucket.partitions():
        if rel not in primary:
            report.problems.append(Problem(
                rel, "missing_in_primary",
                "missing here but held by the replica bucket: `talentvault verify --repair` "
                "copies it back"))


def check_primary(root: Path, folders: list[Path], manifests: dict[Path, dict[str, Any]],
                  report: VerifyReport) -> None:
    """A bucket primary (storage/primary.py): every partition of its cache committed there."""
    bucket = primary.bucket_for(root)
    if bucket is not None:
        report.primary = bucket.url
        _check_bucket(root, bucket, folders, manifests, report, label="primary")


def push_replica_state(root: Path, report: VerifyReport) -> None:
    """Copy the root's own records (erasure list, ledgers, audit ...) to the replica bucket
    (storage/bucket_state.py); a folder replica does not hold them."""
    bucket = replica.replica_bucket()
    if bucket is not None:
        report.replica_state_files = push_state(root, bucket, parquet.current_key())


def _bucket_healthy(bucket: Bucket, rel: str) -> bool:
    commit = bucket.commit_of(rel)
    return commit is not None and all(
        bucket.file_sha256(rel, commit["version"], e["file"]) == e.get("sha256")
        for e in commit["manifest"]["files"])


@dataclass
class Repair:
    state_restored: list[str] = field(default_factory=list)
    restored_from_replica: list[str] = field(default_factory=list)
    copied_to_replica: list[str] = field(default_factory=list)
    committed_to_primary: list[str] = field(default_factory=list)
    not_repairable: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"restored from the replica bucket's records: {p}"
                 for p in self.state_restored]
                + [f"restored from the replica: {p}" for p in self.restored_from_replica]
                + [f"copied to the replica: {p}" for p in self.copied_to_replica]
                + [f"committed to the primary bucket: {p}" for p in self.committed_to_primary]
                + [f"NOT REPAIRABLE (no healthy copy): {p}" for p in self.not_repairable])


def _healthy(base: Path, folder: Path) -> bool:
    probe = VerifyReport(str(base), False)
    return (folder / "_manifest.json").exists() and \
        check_partition(base, folder, probe) is not None and probe.ok


def repair(root: Path, report: VerifyReport) -> Repair:
    """Copy each partition `report` names damaged or missing from the healthy copy."""
    bucket = replica.replica_bucket()
    base = replica.replica_root()
    out = Repair()
    root = Path(root).resolve()
    if bucket is not None:
        # the erasure list first: nothing erased may come back with the partitions
        out.state_restored = pull_state(root, bucket, parquet.current_key())

        def there_ok(rel: str) -> bool: return _bucket_healthy(bucket, rel)
        def fetch(rel: str) -> object: return bucket.get_partition(rel, root / rel)
        def push(rel: str) -> object: return bucket.put_partition(root / rel, rel)
    elif base is not None:
        def there_ok(rel: str) -> bool: return _healthy(base, base / rel)
        def fetch(rel: str) -> object: return replica.copy_partition(base / rel, root / rel)
        def push(rel: str) -> object: return replica.copy_partition(root / rel, base / rel)
    elif primary.bucket_for(root) is not None:
        return repair_primary(root, report, out)
    else:
        raise replica.ReplicaError(f"nothing to repair from: set {replica.ENV_VAR} (a folder) "
                                   f"or {replica.URL_ENV} (a bucket) to the replica")
    for rel in _partitions_named(report):
        here_ok = _healthy(root, root / rel)
        if not here_ok and there_ok(rel):
            fetch(rel)
            out.restored_from_replica.append(rel)
        elif here_ok:
            push(rel)
            out.copied_to_replica.append(rel)
        else:
            out.not_repairable.append(rel)
    if bucket is not None:
        for rel in bucket.partitions():   # uploads a crash left behind, older than the grace
            commit = bucket.commit_of(rel)
            bucket.collect_garbage(rel, keep=commit["version"] if commit else None)
    return repair_primary(root, report, out)


def repair_primary(root: Path, report: VerifyReport, out: Repair) -> Repair:
    """A bucket primary: commit each partition it lacks or holds damaged from the cache's
    healthy copy (repaired from the replica first, when that is where it came from), and push
    the records the replica's repair brought back."""
    bucket = primary.bucket_for(root)
    if bucket is None:
        return out
    named = dict.fromkeys([*_partitions_named(report, "primary:"), *out.restored_from_replica])
    for rel in named:
        if rel in out.not_repairable:
            continue
        if _healthy(root, root / rel):
            bucket.put_partition(root / rel, rel)
            out.committed_to_primary.append(rel)
        else:
            out.not_repairable.append(rel)
    primary.sync_up(root)
    return out


def _partitions_named(report: VerifyReport, prefix: str = PREFIX) -> list[str]:
    partitions: dict[str, None] = {}
    for p in report.problems:
        if prefix != PREFIX and not p.path.startswith(prefix):
            continue
        parts = Path(p.path.removeprefix(prefix)).parts
        if len(parts) >= 3 and parts[2].startswith("snapshot_date="):
            partitions["/".join(parts[:3])] = None
    return list(partitions)
