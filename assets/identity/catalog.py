"""Catalog views over the identity outputs (added to the SQL catalog by
`assets/catalog/views.py`):

  identity.<name>          the latest partition (today's profiles, quarantine, ...)
  identity.<name>_by_day   every partition, with `snapshot_date`
"""

from __future__ import annotations

from pathlib import Path

from orchestration.storage.parquet import duck_path

# as in orchestration/storage/derived.py (not imported here: keeps `talentvault sql` light)
SOURCE = "identity"
VIEWS = ("candidate_profiles", "quarantine", "keap_contacts", "possible_duplicates",
         "field_profile")


def identity_statements(root: Path) -> list[str]:
    return ["CREATE SCHEMA IF NOT EXISTS identity"] + daily_output_views(root, SOURCE, VIEWS)


def daily_output_views(root: Path, source: str, names: tuple[str, ...]) -> list[str]:
    """`<source>.<name>_by_day` (every partition) and `<source>.<name>` (the latest) for each
    derived output with at least one landed partition (identity, sync)."""
    stmts: list[str] = []
    for name in names:
        folder = root / source / name
        if not any(folder.glob("snapshot_date=*/*.parquet")):
            continue
        files = folder / "snapshot_date=*" / "*.parquet"
        stmts += [
            f"CREATE OR REPLACE VIEW {source}.{name}_by_day AS SELECT * FROM read_parquet("
            f"'{duck_path(files)}', hive_partitioning = true, "
            "hive_types = {'snapshot_date': DATE})",
            f"CREATE OR REPLACE VIEW {source}.{name} AS SELECT * FROM {source}.{name}_by_day "
            f"WHERE snapshot_date = (SELECT max(snapshot_date) FROM {source}.{name}_by_day)",
        ]
    return stmts
