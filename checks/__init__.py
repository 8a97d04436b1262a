"""Asset checks and Great Expectations suites, grouped like assets/.

`checks.snapshots` checks every snapshot partition an extract asset writes (rules per source in
`checks/<source>/rules.py`, the GX runner in `checks.gx`); see docs/checks.md.
"""
