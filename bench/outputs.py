"""Where a benchmark writes its report: under bench/out/<name>/ always; into docs/ only when run
with `--write-docs` (a run by hand, on purpose, never a smoke run or a test). And `timed`, the
median wall time the benchmarks report."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write-docs", action="store_true",
                        help="also update the results page in docs/ (default: bench/out only)")


def report_path(args: argparse.Namespace, doc: Path, name: str) -> Path:
    """`doc` (under docs/) with --write-docs, else the same file name under bench/out/<name>/."""
    if getattr(args, "write_docs", False):
        return doc
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / doc.name


NOTES_START, NOTES_END = "<!-- notes: kept across runs -->", "<!-- /notes -->"
PLACEHOLDER = "(interpretation: to be written by hand for these numbers)"
NOTES_SLOT = f"{NOTES_START}\n{PLACEHOLDER}\n{NOTES_END}"


def write_section(doc: Path, heading: str, section: str) -> None:
    """Replace the section that starts with `heading` in `doc` (or append it), keeping every
    other section, and the hand-written notes between the NOTES markers of the old section
    when the new one has an empty notes slot (NOTES_SLOT)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    start = text.find(heading)
    if start >= 0:
        nxt = text.find("\n## ", start + len(heading))
        old = text[start:nxt if nxt >= 0 else len(text)]
        if NOTES_START in old and NOTES_END in old:
            notes = old[old.index(NOTES_START):old.index(NOTES_END) + len(NOTES_END)]
            section = section.replace(NOTES_SLOT, notes)
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text.rstrip("\n") + "\n")


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall seconds of `repeat` calls of `fn`."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)
