"""Catalog views over the Keap sync (added to the SQL catalog by `assets/backups/catalog.py`):

  sync.ledger                   every write attempt of every compacted push run
  sync.dead_letter              changes whose latest attempt Keap refused for good, with the
                                reason (not retried until their input changes)
  sync.keap_desired(_by_day)    what each synced profile should hold in Keap (latest / every day)
  sync.keap_changeset(_by_day)  the changes planned for Keap (latest / every day)

The ledger view reads the compacted Parquet files; the attempts of a run still going (or of one
killed, until the next push compacts its write-ahead log) are not in it yet. In Python,
`assets.sync.ledger.ledger_relation` includes those too.
"""

from __future__ import annotations

from pathlib import Path

from assets.identity.catalog import daily_output_views

SOURCE = "sync"
PARTITIONED = ("keap_desired", "keap_changeset")
# as assets/sync/ledger.py (not imported: keeps `talentvault sql` light)
LEDGER_FILES = ("ledger", "run_id=*", "part-00000.parquet")
LEDGER_COLUMNS = ("change_id", "changeset_date", "profile_id", "contact_id", "action", "fields",
                  "tag", "tag_id", "status", "http_status", "error", "attempt", "run_id", "at",
                  "keap_update_time")


def catalog_statements(root: Path) -> list[str]:
    root = Path(root)
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {SOURCE}",
             *daily_output_views(root, SOURCE, PARTITIONED)]
    ledger = root / SOURCE / Path(*LEDGER_FILES)
    if any(ledger.parent.parent.glob("run_id=*/part-00000.parquet")):
        cols = ", ".join(f'"{c}"' for c in LEDGER_COLUMNS)
        stmts += [
            f"CREATE OR REPLACE VIEW {SOURCE}.ledger AS SELECT {cols} FROM read_parquet("
            f"'{ledger}', hive_partitioning = false, union_by_name = true)",
            f"CREATE OR REPLACE VIEW {SOURCE}.dead_letter AS SELECT * FROM ("
            f"SELECT * FROM {SOURCE}.ledger QUALIFY row_number() OVER (PARTITION BY change_id "
            "ORDER BY attempt DESC, \"at\" DESC) = 1) WHERE status = 'failed_permanent' AND "
            f"change_id NOT IN (SELECT change_id FROM {SOURCE}.ledger "
            "WHERE status = 'succeeded')",
        ]
    return stmts
