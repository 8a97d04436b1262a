"""The repository is self-contained: no test, product or bench module reads a file outside it (a
`../shared` sibling, a `parents[...]` above the root). A plain `git clone` must run the suite."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("orchestration", "assets", "checks", "sandbox", "tests", "bench")
# `Path(__file__).resolve().parents[2].parent`, `Path(__file__).parent.parent`: how far up
UP = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parents\[\d+\])?(?:\.parent\b)*)")
OUTSIDE = re.compile(r"""\.\./shared|["'/]shared/specs|/work/shared""")


def _levels_up(chain: str) -> int:
    """How many folders above the file's own folder `Path(__file__)<chain>` is: `.parent` and
    `.parents[0]` are the folder itself (0), `.parents[1]` and `.parent.parent` one up, …"""
    k = re.search(r"parents\[(\d+)\]", chain)
    n = len(re.findall(r"\.parent\b", chain))
    return int(k.group(1)) + n if k else n - 1


def outside_references() -> list[str]:
    found = []
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO)
            depth = len(rel.parts) - 1          # levels from the file's folder up to the root
            if path == Path(__file__).resolve():
                continue                        # this checker spells the patterns out
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if OUTSIDE.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
                for chain in UP.findall(line):
                    if chain and _levels_up(chain) > depth:
                        found.append(f"{rel}:{n}: {line.strip()}")
    return found


def test_no_module_reads_outside_the_repository():
    assert outside_references() == [], (
        "these lines reach outside the repository (vendor what they need, e.g. specs/):\n"
        + "\n".join(outside_references()))


def test_the_level_count_catches_the_shapes_that_escape():
    assert _levels_up(".parents[0]") == 0
    assert _levels_up(".parents[1]") == 1
    assert _levels_up(".parents[1].parent") == 2
    assert _levels_up(".parent") == 0
    assert _levels_up(".parent.parent") == 1
    assert _levels_up(".parent.parent.parent") == 2


def test_vendored_specs_carry_their_provenance_and_licence():
    for folder in ("ats/greenhouse-harvest-v3-schemas", "keap", "highlevel"):
        names = {p.name for p in (REPO / "specs" / folder).iterdir()}
        assert "PROVENANCE.md" in names, folder
        assert any(n.startswith("LICENSE") for n in names), folder
