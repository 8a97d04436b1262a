"""The names the reverse sync's steps share: its asset keys, its ledger (a `Book` of the sync
ledger's machinery with its own folder and columns) and the plan's partition."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from assets.sync.ledger import Book

SOURCE = "sync"
NAME = "reverse"
PLAN = "reverse_changes"          # sync/reverse_changes/snapshot_date=D: the day's planned writes
KEY = dg.AssetKey([SOURCE, NAME])
SCHEMA = pa.schema([
    ("change_id", pa.string()), ("changes_date", pa.date32()), ("field", pa.string()),
    ("profile_id", pa.int64()), ("contact_id", pa.string()), ("candidate_id", pa.int64()),
    ("action", pa.string()), ("target", pa.string()), ("value_sha256", pa.string()),
    ("status", pa.string()), ("http_status", pa.int32()), ("error", pa.string()),
    ("attempt", pa.int32()), ("run_id", pa.string()), ("at", pa.timestamp("us", tz="UTC")),
    ("gh_updated_at", pa.timestamp("us", tz="UTC")),
])
# sync/reverse_ledger/: one row per write attempt outcome, as the push's ledger (write-ahead log
# fsynced per line, compacted per run, a killed run's log compacted by the next run); the value
# written is kept as its sha256 only (no personal value), enough to recognise our own echoes
BOOK = Book("reverse_ledger", SCHEMA)
# one comparable text per value, absent values included (sha256 of it in SQL and Python)
NULL_TEXT = "\x00null"
