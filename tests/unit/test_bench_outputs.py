"""Benchmarks write under bench/out/ and touch docs/ only when asked (`--write-docs`)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import outputs  # noqa: E402


def test_reports_go_to_bench_out_unless_docs_are_asked_for():
    doc = REPO / "docs" / "bench_push.md"
    quiet = outputs.report_path(argparse.Namespace(write_docs=False), doc, "push")
    assert quiet == REPO / "bench" / "out" / "push" / "bench_push.md"
    assert outputs.report_path(argparse.Namespace(write_docs=True), doc, "push") == doc


def test_every_bench_that_names_a_doc_goes_through_the_flag():
    for script in sorted((REPO / "bench").glob("bench_*.py")):
        text = script.read_text()
        if re.search(r'"docs"\s*/', text):
            assert "report_path(" in text and "add_flag(" in text, script.name
