"""A problem in a mapping document (file, line, what is wrong, how to fix), and the errors
that carry them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        where += f":{self.column}" if self.line and self.column else ""
        note = "warning: " if self.severity == "warning" else ""
        return f"{where}: {note}{self.message} — {self.fix}"


class MappingError(ValueError):
    """The mapping document is not valid; `problems` lists each one with its line and fix."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid Keap sync mapping:\n" + "\n".join(f"  {p}" for p in problems))


class MappingSyntaxError(MappingError):
    """The file cannot be read as one YAML document (one problem, with its line and column)."""
