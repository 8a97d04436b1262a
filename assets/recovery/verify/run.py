"""`verify()`: every check of `talentvault verify`, in order, and its audit event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assets.recovery.verify.partitions import check_partition, partition_folders, read_partition
from assets.recovery.verify.replica import check_primary, check_replica, push_replica_state
from assets.recovery.verify.report import VerifyReport
from assets.recovery.verify.root_checks import (
    check_catalog,
    check_chains,
    check_leftovers,
    check_unmanifested,
)
from assets.recovery.verify.seals import check_seals
from orchestration.storage import audit
from orchestration.storage.parquet import connect as connect_duckdb


def verify(root: Path, read_data: bool = False, *, record: bool = True,
           run_id: str | None = None) -> VerifyReport:
    """Check every partition under `root` against its manifest (see the module docstring).
    Records an audit event `verify` with the counts unless `record` is False."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist: set TALENTVAULT_DATA_DIR "
                                "or pass --data-dir")
    report = VerifyReport(str(root), read_data)
    manifests: dict[Path, dict[str, Any]] = {}
    con = connect_duckdb(config={"threads": 2, "memory_limit": "1GB"})
    try:
        folders = partition_folders(root)
        for folder in folders:
            manifest = check_partition(root, folder, report)
            if manifest is not None:
                manifests[folder] = manifest
                if read_data:
                    read_partition(con, root, folder, manifest, report)
        check_seals(root, folders, manifests, report)
        check_primary(root, folders, manifests, report)
        check_replica(root, folders, manifests, report)
        check_chains(root, manifests, report)
        check_leftovers(root, report)
        check_unmanifested(con, root, report, read_data)
    finally:
        con.close()
    check_catalog(root, report)
    push_replica_state(root, report)
    if record:
        audit.record(root, "verify", target="data root", run_id=run_id,
                     status="succeeded" if report.ok else "failed", counts=report.counts(),
                     details={"read_data": read_data, "damaged": report.damaged_paths[:20],
                              "seal_head": report.seal_head})
    return report
