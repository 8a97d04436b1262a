"""What a push did: the counts, the failures kept for the summary, and its Markdown."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

SOURCE = "sync"
CHANGESET = "keap_changeset"
DESIRED = "keap_desired"
CONTACT_ACTIONS = ("create", "update")
TAG_ACTIONS = ("tag_remove", "tag_add")


@dataclass
class PushResult:
    day: str
    run_id: str
    dry_run: bool
    changes: int = 0
    sent: int = 0
    succeeded: int = 0
    failed_retryable: int = 0
    failed_permanent: int = 0
    skipped_succeeded: int = 0
    skipped_dead_letter: int = 0
    skipped_suppressed: int = 0  # about a person erased since the changeset was built
    not_attempted: int = 0
    api_calls: int = 0
    write_calls: int = 0
    duration_seconds: float = 0.0
    created_tags: list[str] = field(default_factory=list)
    created_categories: list[str] = field(default_factory=list)
    created_custom_fields: list[str] = field(default_factory=list)
    missing_custom_fields: list[str] = field(default_factory=list)
    compacted_runs: list[str] = field(default_factory=list)
    by_action: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[dict[str, Any]] = field(default_factory=list)
    ledger_file: str | None = None
    aborted: str | None = None
    max_rows_in_python: int = 0  # largest page of changes held as Python objects at once

    @property
    def failed(self) -> int:
        return self.failed_retryable + self.failed_permanent

    @property
    def skipped(self) -> int:
        return (self.skipped_succeeded + self.skipped_dead_letter + self.skipped_suppressed
                + self.not_attempted)

    def counts(self) -> dict[str, int | float]:
        return {"changes": self.changes, "sent": self.sent, "succeeded": self.succeeded,
                "failed": self.failed, "failed_retryable": self.failed_retryable,
                "failed_permanent": self.failed_permanent, "skipped": self.skipped,
                "skipped_already_succeeded": self.skipped_succeeded,
                "skipped_dead_letter": self.skipped_dead_letter,
                "skipped_suppressed": self.skipped_suppressed,
                "not_attempted": self.not_attempted, "api_calls": self.api_calls,
                "write_calls": self.write_calls,
                "duration_seconds": round(self.duration_seconds, 3)}

    def markdown(self) -> str:
        mode = " (dry run: nothing written)" if self.dry_run else ""
        lines = [f"**Keap push for {self.day}**{mode}: {self.sent} sent, {self.succeeded} "
                 f"succeeded, {self.failed_retryable} to retry next run, {self.failed_permanent} "
                 f"dead-lettered, {self.skipped} skipped; {self.api_calls} API calls "
                 f"({self.write_calls} writes) in {self.duration_seconds:.1f}s.", "",
                 *([f"{self.skipped_suppressed} change(s) left out: about a person erased "
                    "(`talentvault forget`) after the changeset was built.", ""]
                   if self.skipped_suppressed else []),
                 "| action | pending | succeeded | retry next run | dead letter |",
                 "|---|---|---|---|---|"]
        for action in (*CONTACT_ACTIONS, *TAG_ACTIONS):
            c = self.by_action.get(action, Counter())
            if any(c.values()):
                lines.append(f"| {action} | {c['pending']} | {c['succeeded']} | "
                             f"{c['failed_retryable']} | {c['failed_permanent']} |")
        for label, items in (("Tags created", self.created_tags),
                             ("Tag categories created", self.created_categories),
                             ("Custom fields created", self.created_custom_fields),
                             ("Custom fields missing in Keap (not set)",
                              self.missing_custom_fields)):
            if items:
                lines += ["", f"{label}: " + ", ".join(sorted(items))]
        if self.failures:
            lines += ["", "Failures (first 10):", "",
                      "| change id | action | contact id | status | error |",
                      "|---|---|---|---|---|"]
            for f in self.failures[:10]:
                lines.append(f"| {f['change_id']} | {f['action']} | {f['contact_id'] or '-'} | "
                             f"{f['status']} | {(f['error'] or '').replace('|', '/')} |")
        if self.aborted:
            lines += ["", f"Stopped early: {self.aborted}"]
        return "\n".join(lines)
