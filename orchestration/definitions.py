"""The talentvault code location: every asset, check, job, schedule, sensor and resource."""

import dagster as dg

defs = dg.Definitions(assets=[])
