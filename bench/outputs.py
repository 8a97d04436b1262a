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


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Median wall seconds of `repeat` calls of `fn`."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)
