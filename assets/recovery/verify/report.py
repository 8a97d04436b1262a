"""What `talentvault verify` found: each damaged thing, and the counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One damaged thing: `path` relative to the data root, `kind` a stable code, `reason` in
    words (with the fix where there is one)."""

    path: str
    kind: str
    reason: str


@dataclass
class VerifyReport:
    root: str
    read_data: bool
    partitions: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0
    views: int = 0
    other_files: int = 0
    sealed: int = 0
    unsealed: int = 0
    seal_head: str | None = None
    replica: str | None = None       # the replica's folder, when there is one
    replica_partitions: int = 0      # partitions found intact in it
    replica_state_files: int = 0     # root records copied to the replica bucket this time
    primary: str | None = None       # a bucket primary's URL (the root is its cache)
    primary_partitions: int = 0      # partitions found committed in it
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def damaged_paths(self) -> list[str]:
        """Each damaged file or folder once, in order."""
        return list(dict.fromkeys(p.path for p in self.problems))

    def counts(self) -> dict[str, int]:
        return {"partitions": self.partitions, "files": self.files, "bytes": self.bytes,
                "rows": self.rows, "views": self.views, "other_files": self.other_files,
                "sealed": self.sealed, "unsealed": self.unsealed,
                "replica_partitions": self.replica_partitions,
                "primary_partitions": self.primary_partitions,
                "problems": len(self.problems), "damaged": len(self.damaged_paths),
                "warnings": len(self.warnings)}

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "read_data": self.read_data, "ok": self.ok,
                "seal_head": self.seal_head,
                **self.counts(), "damaged_paths": self.damaged_paths,
                "problems": [asdict(p) for p in self.problems],
                "warnings": [asdict(p) for p in self.warnings]}

    def summary(self) -> str:
        head = (f"verify{' --read-data' if self.read_data else ''}: {self.partitions} partitions, "
                f"{self.files} files, {self.bytes:,} bytes, {self.rows:,} rows, "
                f"{self.views} catalog views")
        lines = [head, f"seals: {self.sealed} partitions match the seal ledger"
                 + (f", {self.unsealed} unsealed" if self.unsealed else "")
                 + (f" (ledger head {self.seal_head})" if self.seal_head else "")]
        if self.primary:
            lines.append(f"primary bucket {self.primary}: {self.primary_partitions} partitions "
                         "committed")
        if self.replica:
            lines.append(f"replica {self.replica}: {self.replica_partitions} partitions checked")
        lines += [f"DAMAGED {p.path}: {p.reason}" for p in self.problems]
        lines += [f"warning {p.path}: {p.reason}" for p in self.warnings]
        lines.append("OK: every file matches its manifest" if self.ok else
                     f"FAILED: {len(self.damaged_paths)} damaged file(s) or partition(s)")
        return "\n".join(lines)
