"""What an erasure found and did: counts, hashes and relative paths only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
