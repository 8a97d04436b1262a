"""Keap -> Greenhouse for a declared set of fields (the mapping's `reverse` section): the
`sync/reverse` asset (asset.py), its plan (plan.py: set-based in DuckDB), its writes and ledger
(run.py; the ledger machinery of assets/sync/ledger.py in its own folder, base.py).

Loop prevention, in both directions, from the ledgers: a Keap value that holds only since the
forward push wrote the contact is our own echo and is never sent to Greenhouse; a Greenhouse
value equal to our own last reverse write is ours, not a recruiter's. Structurally, the forward
sync reads no candidate tag or custom field, and the mapping refuses a reverse source the forward
sync writes (docs/sync.md, "Keap -> ATS")."""

from assets.sync.reverse.asset import ReverseConfig, declares_reverse, reverse
from assets.sync.reverse.base import BOOK, KEY, PLAN
from assets.sync.reverse.run import ReverseResult, run_reverse

__all__ = ["BOOK", "KEY", "PLAN", "ReverseConfig", "ReverseResult", "declares_reverse",
           "reverse", "run_reverse"]
