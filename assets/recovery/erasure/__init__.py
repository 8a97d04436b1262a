"""GDPR / CCPA erasure: remove every trace of one person from every file under the data root,
and make sure they are never backed up, pushed or restored again.

`forget(root, email=..., source_ids=...)`:

1. Resolve the person (set-based, over every partition of every backup, history included):
   - seed records: Greenhouse candidates, Keap contacts and HighLevel contacts holding the
     address (normalized as the identity assets normalize it) or having one of the given ids;
   - the person's addresses: the given one plus every address on a seed record; then every
     person record holding one of those addresses (one expansion round, not a transitive
     closure: a family address shared with someone else does not pull in a third record);
   - dependents: Greenhouse applications of those candidates (and, through the application
     ids, their stages, interviews, offers, rejection details), HighLevel opportunities of those
     contacts, identity profiles holding those candidates or addresses.
2. Under the erasure lock (extractions wait for it before landing a partition), add salted
   hashes of every address and id to the suppression list FIRST, so nothing landing afterwards
   can bring the person back.
3. Find the rows about the person in every Parquet file under the root (except the suppression
   list, the audit trail and a sandbox folder), set-based in DuckDB: a row is about the person
   when an id column holds one of their ids (by column name: `candidate_id`, `application_ids`,
   `contact_id`, `contactId`, `profile_id`, ...; `id` by entity; quarantine `record_id` by its
   `entity`) or when any text, list, map or struct column (`_raw` included) contains one of the
   person's addresses (case-insensitive, as a whole address: `a@b.co` does not match
   `xa@b.com`).
4. Rewrite each affected file without those rows. A partition with a `_manifest.json` is
   rebuilt in a staging folder (unaffected files hard-linked, affected ones rewritten, fsynced,
   read-only, the manifest's rows/sha256/bytes/content fingerprint recomputed the way the writer
   computes them, plus an `erasures` note with counts) and swapped into place like any landed
   partition; other Parquet files (the sync ledger) are replaced file by file. JSON-lines files
   lose the lines naming the person; any other file naming the person (e.g. a restore plan) is
   deleted and listed in the report. Leftover staging folders of killed runs are removed.
5. Report rows removed and files rewritten per entity, and record an `erasure` audit event
   whose subject is the suppression hash (counts only, never the address or the ids).

Forgetting the same person again finds nothing and changes nothing (a no-op event is still
recorded). `apply=False` (dry run) resolves and counts, and writes nothing.

Modules: scope (what is read, id kinds), resolve (step 1), rows (step 3), rewrite (step 4),
leftovers (killed runs' staging folders), report (step 5), erase (`forget`, the whole of it).
"""

from assets.recovery.erasure.erase import forget
from assets.recovery.erasure.report import ErasureError, ErasureReport

__all__ = ["ErasureError", "ErasureReport", "forget"]
