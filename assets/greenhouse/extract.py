"""Greenhouse backups: one daily-partitioned asset per Harvest v3 entity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from assets.extract import ExtractSpec, extract_asset
from assets.greenhouse import schemas
from orchestration.resources.greenhouse import GreenhouseClient


def _pages(endpoint: str):
    def pages(client: GreenhouseClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
        return client.pages(endpoint, updated_from=updated_from, updated_to=updated_to)
    return pages


def _spec(schema, endpoint: str | None = None, incremental: bool = True) -> ExtractSpec:
    return ExtractSpec(schema, "greenhouse", _pages(endpoint or schema.entity),
                       incremental=incremental)


SPECS = [
    _spec(schemas.candidates),
    _spec(schemas.applications),
    _spec(schemas.application_stages),
    _spec(schemas.offers),
    _spec(schemas.interviews),
    _spec(schemas.rejection_details),
    # small reference data: a full snapshot every day costs a few calls and catches deletions
    _spec(schemas.jobs, incremental=False),
    _spec(schemas.job_stages, "job_interview_stages", incremental=False),
    _spec(schemas.rejection_reasons, incremental=False),
    _spec(schemas.users, incremental=False),
    _spec(schemas.departments, incremental=False),
    _spec(schemas.offices, incremental=False),
    _spec(schemas.sources, incremental=False),
]

greenhouse_assets = [extract_asset(spec) for spec in SPECS]
