"""The small Great Expectations runner behind every snapshot check.

Callers describe expectations as data (`Expect`: which Dagster check, the rule in words, the GX
expectation class and its arguments), build a pandas frame holding only the columns those rules
read, and get back GX's own numbers per rule (`Outcome`). `check_results` turns outcomes into
`dg.AssetCheckResult`s with an explicit severity and metadata a person can act on: the rule,
how many rows failed, what share, and a sample of failing record ids (never values: those may be
personal data).

GX is imported on first use only (it takes 7-16 s to import), with scipy.stats deferred
(`LAZY_MODULES`) and progress bars off, and one ephemeral context serves the whole process.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_SIZE = 20          # failing ids kept per check
VALUES_SAMPLE = 10        # distinct unexpected values kept (only where values are codes)

_lock = threading.Lock()
_import_lock = threading.Lock()
_context: Any = None
_batches: Any = None      # the one pandas batch definition every frame is validated through


@dataclass(frozen=True)
class Expect:
    check: str                       # the Dagster check this expectation belongs to
    rule: str                        # what must hold, in words (column names, no data)
    expectation: str                 # GX expectation class, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    show_values: bool = False        # the values are codes (statuses): safe to show


@dataclass
class Outcome:
    """GX's verdict on one expectation, in the words the check metadata uses."""

    expect: Expect
    success: bool
    element_count: int | None = None
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    missing_count: int = 0
    sample_ids: list[Any] = field(default_factory=list)
    unexpected_values: list[Any] = field(default_factory=list)
    observed_value: Any = None
    error: str | None = None


# GX imports `from scipy import stats` at module scope for expectations talentvault never uses
# (KL divergence, KS tests) and touches it only inside their functions. Loaded lazily, it costs
# nothing unless something uses it, and then it loads in full, so no result can differ: a
# quarter of GX's import (docs/checks.md, "Cost"). altair (charts, ~0.5 s) cannot be deferred
# this way: on Python 3.11 `import altair` itself reads the module's `__spec__`, which loads it.
LAZY_MODULES = ("scipy.stats",)


def _lazy(name: str) -> None:
    """Register `name` as a module that executes on its first attribute access (stdlib
    `importlib.util.LazyLoader`). No-op when it is already imported or not installed."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _gx():
    if "great_expectations" not in sys.modules:
        # GX 1.x sends no usage statistics (1.24 has no analytics code); kept for older 1.x
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        with _import_lock:
            for name in LAZY_MODULES:
                _lazy(name)
    import great_expectations as gx

    return gx


def preload() -> None:
    """Import GX now (with `LAZY_MODULES` deferred): the forkserver of a run calls this once, so
    the step processes it forks start with GX loaded (`orchestration/preload.py`)."""
    _gx()


def context() -> Any:
    """The process's ephemeral GX context (no files, no analytics, no progress bars)."""
    global _context, _batches
    if _context is None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False,
                                                         metric_calculations=False)
        # one dataframe asset, reused: adding a datasource per frame re-serializes the context
        _batches = (ctx.data_sources.add_pandas("talentvault_snapshots")
                    .add_dataframe_asset("frame")
                    .add_batch_definition_whole_dataframe("whole_frame"))
        _context = ctx
    return _context


def validate(frame: pd.DataFrame, expects: Sequence[Expect],
             index_column: str = "id") -> list[Outcome]:
    """Validate a frame against expectations; one Outcome per expectation, in order."""
    if not expects:
        return []
    gx = _gx()
    import great_expectations.expectations as gxe

    with _lock:
        context()   # GX builds suites only with an active context
        suite = gx.ExpectationSuite(name=f"snapshot_{uuid.uuid4().hex[:12]}")
        for i, e in enumerate(expects):
            suite.add_expectation(getattr(gxe, e.expectation)(**e.kwargs, meta={"n": i}))
        # GX reports failing rows by their index labels: row positions here, turned into ids
        # below for the sample only. Naming an id column instead makes GX build a dict per
        # failing row (all of them, before it keeps a sample): ~0.6 s per 24,000 failing rows
        frame = frame.reset_index(drop=True)
        batch = _batches.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format={
            "result_format": "SUMMARY",
            # duplicates of one id come in pairs: ask for more to keep SAMPLE_SIZE ids
            "partial_unexpected_count": 2 * SAMPLE_SIZE,
        })
    by_n = {int(r.expectation_config.meta["n"]): r for r in result.results}
    ids = frame[index_column] if index_column in frame.columns else None
    return [_outcome(e, by_n[i], ids) for i, e in enumerate(expects)]


def _outcome(e: Expect, r: Any, id_column: pd.Series | None) -> Outcome:
    info = r.exception_info or {}
    if info.get("raised_exception"):
        return Outcome(e, False, error=str(info.get("exception_message"))[:300])
    res = r.result or {}
    positions = [p for p in res.get("partial_unexpected_index_list") or []
                 if isinstance(p, int) or hasattr(p, "__index__")]
    ids = [_plain(id_column.iat[int(p)]) for p in positions] if id_column is not None else []
    values = [_plain(v["value"]) for v in res.get("partial_unexpected_counts") or []]
    observed = _plain(res.get("observed_value"))
    unexpected = int(res.get("unexpected_count") or 0)
    if not r.success and isinstance(observed, int) and isinstance(e.kwargs.get("value"), int):
        unexpected = abs(observed - e.kwargs["value"])  # a table count: by how much it is off
    return Outcome(
        e, bool(r.success),
        element_count=res.get("element_count"),
        unexpected_count=unexpected,
        unexpected_percent=round(float(res.get("unexpected_percent") or 0.0), 4),
        missing_count=int(res.get("missing_count") or 0),
        sample_ids=_distinct(ids)[:SAMPLE_SIZE],
        unexpected_values=_distinct(values)[:VALUES_SAMPLE] if e.show_values else [],
        observed_value=observed)


def _plain(v: Any) -> Any:
    """numpy / pandas scalars to JSON-friendly Python values."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, float) and v != v:  # NaN
        return None
    return v


def _distinct(items: Iterable[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for i in items:
        if i is not None:
            seen.setdefault(i, None)
    return list(seen)


def check_results(outcomes: Sequence[Outcome], checks: Mapping[str, dg.AssetCheckSeverity],
                  asset_key: dg.AssetKey, metadata: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Mapping[str, Any]] | None = None,
                  ) -> list[dg.AssetCheckResult]:
    """One result per check in `checks` (name -> severity), from the outcomes of its rules."""
    results = []
    for name, severity in checks.items():
        mine = [o for o in outcomes if o.expect.check == name]
        results.append(dg.AssetCheckResult(
            check_name=name, asset_key=asset_key, severity=severity,
            passed=all(o.success for o in mine),
            metadata={**(metadata or {}), **_metadata(mine), **((extra or {}).get(name) or {})}))
    return results


def _metadata(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    failed = [o for o in outcomes if not o.success]
    shown = failed or outcomes
    md: dict[str, Any] = {
        "rule": "; ".join(o.expect.rule for o in shown) or "nothing to check",
        "unexpected_count": sum(o.unexpected_count for o in failed),
        "unexpected_percent": max((o.unexpected_percent for o in failed), default=0.0),
        "sample_failing_ids": dg.MetadataValue.json(
            _distinct(i for o in failed for i in o.sample_ids)[:SAMPLE_SIZE]),
        "rules_checked": len(outcomes),
        "rules_failed": len(failed),
    }
    rows = max((o.element_count or 0 for o in outcomes), default=0)
    if rows:
        md["rows_checked"] = rows
    values = _distinct(v for o in failed for v in o.unexpected_values)
    if values:
        md["unexpected_values"] = dg.MetadataValue.json(values[:VALUES_SAMPLE])
    errors = [f"{o.expect.rule}: {o.error}" for o in failed if o.error]
    if errors:
        md["errors"] = dg.MetadataValue.text("\n".join(errors))
    if len(outcomes) > 1:
        md["rules"] = dg.MetadataValue.md(_table(outcomes))
    return md


def _table(outcomes: Sequence[Outcome]) -> str:
    lines = ["| rule | passed | unexpected | % | sample failing ids |", "|---|---|---:|---:|---|"]
    for o in outcomes:
        sample = ", ".join(str(i) for i in o.sample_ids[:5])
        lines.append(f"| {o.expect.rule} | {'yes' if o.success else '**no**'} | "
                     f"{o.unexpected_count} | {o.unexpected_percent:g} | {sample} |")
    return "\n".join(lines)
