"""Catalog views of the webhook inbox (listed in EXTENSIONS of assets/catalog/views.py).

  webhooks.events     one row per (event, object): event_id, source, event_type, object_type,
                      object_id, op (upsert | delete), related_id, vendor_timestamp,
                      received_at, seq. Ids only.
  webhooks.deletions  objects a vendor said are gone (Greenhouse delete_candidate and the
                      duplicate side of merge_candidate, Keap contact.delete, HighLevel
                      *Delete), with the surviving id of a merge in `merged_into`: deletions are
                      known here before the next full listing sees them.
"""

from __future__ import annotations

from pathlib import Path

from orchestration.webhooks.inbox import events_glob_sql


def catalog_statements(root: Path) -> list[str]:
    stmts = ["CREATE SCHEMA IF NOT EXISTS webhooks"]
    sql = events_glob_sql(root)
    if sql is None:
        return stmts
    return stmts + [
        f"CREATE OR REPLACE VIEW webhooks.events AS {sql}",
        "CREATE OR REPLACE VIEW webhooks.deletions AS SELECT source, object_type, object_id, "
        "event_type, CASE WHEN event_type = 'merge_candidate' THEN related_id END AS "
        "merged_into, coalesce(vendor_timestamp, received_at) AS deleted_at, event_id, "
        "received_at FROM webhooks.events WHERE op = 'delete'",
    ]
