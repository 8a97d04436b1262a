"""Encryption at rest, what it costs: the same 1M-row snapshot-like file (ids, a list of
emails, a 300-byte raw document) written and read plain and encrypted (storage/crypt.py through
DuckDB's tvcrypt:// filesystem and through pyarrow), side by side in one run.

    uv run python bench/bench_encryption.py [--rows 1000000] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outputs import ROOT, add_flag, report_path, timed  # noqa: E402
from orchestration.storage import parquet  # noqa: E402
from orchestration.storage.parquet import Key  # noqa: E402

QUERY = """SELECT range AS id, [concat('p', range, '@example.com'), 'x@y.example'] AS emails,
                  repeat(md5(range::VARCHAR), 9) AS _raw FROM range({rows})"""


def measure(label: str, k: Key | None, tmp: Path, n: int) -> tuple:
    path = tmp / f"{label}.parquet"
    con = parquet.connect(key=k, config={"threads": 2})
    write = timed(lambda: parquet.write_query(con, QUERY.format(rows=n), path, key=k))
    name = parquet.duck_path(path, k)
    scan = timed(lambda: con.execute(
        "SELECT count(*), sum(id), sum(len(emails)), sum(length(_raw)) "
        f"FROM read_parquet('{name}')").fetchall())
    lookup = timed(lambda: con.execute(
        f"SELECT _raw FROM read_parquet('{name}') WHERE id = {n // 2}").fetchall())
    arrow = timed(lambda: parquet.read_table(path, key=k))
    con.close()
    return label, path.stat().st_size, write, scan, lookup, arrow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    add_flag(ap)
    args = ap.parse_args()
    key = Key(os.urandom(32))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(label, k, Path(tmp), args.rows)
                for label, k in (("plain", None), ("encrypted", key))]
    lines = [
        "# Encryption at rest: cost (bench/bench_encryption.py)", "",
        f"`uv run python bench/bench_encryption.py --rows {args.rows}` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; DuckDB threads = 2; median "
        "of 3.", "",
        "| file | bytes | write (DuckDB COPY) | full scan | lookup by id | pyarrow read |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {label} | {size:,} | {w:.3f} s | {s:.3f} s | {lk:.3f} s | {a:.3f} s |"
          for label, size, w, s, lk, a in rows),
    ]
    out = report_path(args, ROOT / "docs" / "bench_encryption.md", "encryption")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
