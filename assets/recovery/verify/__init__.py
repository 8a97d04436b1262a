"""Prove the backups are intact: `talentvault verify [--read-data]`.

Every partition folder with a `_manifest.json` under the data root (backups
`<source>/<entity>/snapshot_date=D`, derived outputs `identity/*` and `sync/*`) is checked against
its manifest:
- each listed file exists, re-hashes to its sha256 and holds the rows the manifest records (the
  Parquet footer's row count, read without decoding the data);
- no file sits in the folder that the manifest does not list (the catalog would read it);
- a folder holding part files without a manifest is damaged (a half-copied or hand-made
  partition the catalog would still read).
Then the seals (`seals.py`): every manifest field and the suppression
list against the seal ledger, naming the field that changed. Then the incremental chains: every
incremental backup partition has the previous day's partition (its base) and every chain starts
with a full one. The catalog is built and every view read.
Leftovers of interrupted runs (`.staging-*`, `.replaced-*`, retention's `.trash`) are reported as
warnings: they are invisible to readers and harmless, but worth cleaning.

With `read_data`, every row of every part file is decoded (all columns) and each backup
partition's content fingerprint is recomputed and compared with the manifest's, and the audit
trail and sync ledger files are read back too. This is restic's `check --read-data`: it proves
the backup restores, not only that its bytes did not change.

With a replica (`TALENTVAULT_REPLICA_DIR`, orchestration/storage/replica.py), every partition's
copy there is held against the primary's manifest too, and a partition only the replica still
holds is reported; `repair` (`verify --repair`) copies each damaged or missing partition back
from whichever copy is healthy.

Problems name the damaged file (relative to the data root) and why; no personal value is ever
read into a message.

Modules: partitions (each partition against its manifest), seals (against the seal ledger),
root_checks (chains, leftovers, unmanifested files, the catalog), replica (both copies, repair),
run (`verify()`), report
(`VerifyReport`, `Problem`), reseal (`talentvault seal`), check (the daily Dagster asset check).
"""

from assets.recovery.verify.replica import Repair, repair
from assets.recovery.verify.report import Problem, VerifyReport
from assets.recovery.verify.reseal import SealError, SealReport, seal_root
from assets.recovery.verify.run import verify

__all__ = ["Problem", "Repair", "SealError", "SealReport", "VerifyReport", "repair", "seal_root",
           "verify"]
