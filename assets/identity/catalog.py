"""Catalog views over the identity outputs (added to the SQL catalog by
`assets/backups/catalog.py`):

  identity.<name>          the latest partition (today's profiles, quarantine, ...)
  identity.<name>_by_day   every partition, with `snapshot_date`
"""

from __future__ import annotations

from pathlib import Path

# as in assets/identity/storage.py (not imported here: keeps `talentvault sql` light)
SOURCE = "identity"
VIEWS = ("candidate_profiles", "quarantine", "keap_contacts", "possible_duplicates",
         "field_profile")


def identity_statements(root: Path) -> list[str]:
    stmts = ["CREATE SCHEMA IF NOT EXISTS identity"]
    for name in VIEWS:
        folder = root / SOURCE / name
        if not any(folder.glob("snapshot_date=*/*.parquet")):
            continue
        files = folder / "snapshot_date=*" / "*.parquet"
        stmts += [
            f"CREATE OR REPLACE VIEW identity.{name}_by_day AS SELECT * FROM read_parquet("
            f"'{files}', hive_partitioning = true, hive_types = {{'snapshot_date': DATE}})",
            f"CREATE OR REPLACE VIEW identity.{name} AS SELECT * FROM identity.{name}_by_day "
            f"WHERE snapshot_date = (SELECT max(snapshot_date) FROM identity.{name}_by_day)",
        ]
    return stmts
