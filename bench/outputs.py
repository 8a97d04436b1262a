"""Where a benchmark writes its report: under bench/out/<name>/ always; into docs/ only when run
with `--write-docs` (a run by hand, on purpose, never a smoke run or a test)."""

from __future__ import annotations

import argparse
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
