"""Applying the day's Keap changeset: the `sync/keap_push` asset (asset.py), one module per concern.

Order of work for changeset partition D:
  1. skip changes already written for this day's changeset (`succeeded` in the ledger) and
     dead letters (`failed_permanent` whose input has not changed: same change_id);
  2. make sure the tags (and their categories) and the custom fields the changes use exist in
     Keap, by name (created when missing; custom fields per the mapping's `on_missing`);
  3. creates (upsert with duplicate_option=Email, safe to resend) and updates (PATCH with an
     update_mask) with a bounded thread pool under the client's one pacer;
  4. tag removals and additions, one call per tag and ≤ `tag_batch` contacts, for contacts
     created in step 3 too (their new ids come from this run or from the ledger).
Every outcome is one fsynced ledger line before the next is reported (assets/sync/ledger.py), so
a push killed at any point and run again sends only what is left.

The changeset stays in DuckDB (skips, tag grouping and the ids of contacts created are joins);
Python holds one page of `batch_rows` changes at a time, so memory does not grow with the day.
"""

from assets.sync.push.asset import PUSH_KEY, KeapPushConfig, keap_push
from assets.sync.push.errors import classify, describe_error, scrub
from assets.sync.push.result import PushResult
from assets.sync.push.run import dead_letter_count, run_push

__all__ = ["PUSH_KEY", "KeapPushConfig", "PushResult", "classify", "dead_letter_count",
           "describe_error", "keap_push", "run_push", "scrub"]
