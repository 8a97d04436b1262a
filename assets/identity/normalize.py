"""One DuckDB connection with the identity functions registered (names, emails, phones)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.identity import emails, names, phones
from assets.identity.config import NormalizationConfig
from orchestration.storage.parquet import connect as connect_duckdb

MEMORY_LIMIT = "2GB"


def connect(cfg: NormalizationConfig, spill_dir: Path | None = None,
            threads: int = 2) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one identity step: UTC, bounded memory (spilling to
    `spill_dir`), the normalization UDFs and macros registered."""
    config = {"threads": threads, "memory_limit": MEMORY_LIMIT,
              "preserve_insertion_order": False}
    if spill_dir is not None:
        config["temp_directory"] = str(spill_dir)
    con = connect_duckdb(config=config)
    con.execute("SET TimeZone = 'UTC'")
    names.register(con)
    emails.register(con)
    phones.register(con, cfg)
    return con
