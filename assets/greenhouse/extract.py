"""Greenhouse backups: one daily-partitioned asset per Harvest v3 entity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from assets.extract import ExtractSpec, extract_asset
from assets.greenhouse import attachment_files, schemas
from orchestration.resources.greenhouse import GreenhouseClient


def _pages(endpoint: str):
    def pages(client: GreenhouseClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
        return client.pages(endpoint, updated_from=updated_from, updated_to=updated_to)
    return pages


def _spec(schema, endpoint: str | None = None, incremental: bool = True,
          **kw: Any) -> ExtractSpec:
    return ExtractSpec(schema, "greenhouse", _pages(endpoint or schema.entity),
                       incremental=incremental, **kw)


SPECS = [
    _spec(schemas.candidates),
    _spec(schemas.applications),
    _spec(schemas.application_stages),
    _spec(schemas.offers),
    _spec(schemas.interviews),
    _spec(schemas.rejection_details),
    # the rest of the candidate record: changes by update time, like the records above
    _spec(schemas.scorecards),
    _spec(schemas.notes),
    # files only with TALENTVAULT_GREENHOUSE_ATTACHMENT_FILES=1 (attachment_files.py)
    _spec(schemas.attachments, enrich=attachment_files.with_files),
    _spec(schemas.applied_candidate_tags),
    # small reference data: a full snapshot every day costs a few calls and catches deletions
    _spec(schemas.jobs, incremental=False),
    _spec(schemas.job_stages, "job_interview_stages", incremental=False),
    _spec(schemas.rejection_reasons, incremental=False),
    _spec(schemas.users, incremental=False),
    _spec(schemas.departments, incremental=False),
    _spec(schemas.offices, incremental=False),
    _spec(schemas.sources, incremental=False),
    _spec(schemas.candidate_tags, incremental=False),
    _spec(schemas.custom_fields, incremental=False),
    _spec(schemas.close_reasons, incremental=False),
    _spec(schemas.job_posts, incremental=False),    # one or a few posts per job
]

greenhouse_assets = [extract_asset(spec) for spec in SPECS]
