"""What every step process needs, imported once per run.

Dagster's multiprocess executor starts one process per step. With the `forkserver` start method
(set on the code location's executor in `orchestration/definitions.py`) a server process imports
this module once per run and forks each step from it, so the code location and Great Expectations
(7-16 s of imports, see docs/bench_checks.md) are not imported again by every step.
"""

import orchestration.definitions  # noqa: F401  (the code location, with every asset module)
from checks.gx import preload

preload()
