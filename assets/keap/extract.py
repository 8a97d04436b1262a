"""Keap backups: contacts (incremental by update time) and reference data (always full)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from assets.extract import ExtractSpec, extract_asset
from assets.keap import schemas
from orchestration.resources.keap import KeapClient


def _contacts(client: KeapClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    return client.contact_pages(updated_from=updated_from, updated_to=updated_to)


def _contact_ids(client: KeapClient) -> Iterator[list[Any]]:
    # Keap's `fields` parameter makes an id-only listing: 1,000 ids a call, for deletions
    for page in client.contact_pages(fields=["id"]):
        yield [c["id"] for c in page]


def _tags(client: KeapClient, updated_from: datetime | None,
          updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    return client.tag_pages()


def _tag_categories(client: KeapClient, updated_from: datetime | None,
                    updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    return client.tag_category_pages()


def _custom_fields(client: KeapClient, updated_from: datetime | None,
                   updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    yield client.contact_model().get("custom_fields") or []


SPECS = [
    ExtractSpec(schemas.contacts, "keap", _contacts, live_ids=_contact_ids),
    ExtractSpec(schemas.tags, "keap", _tags, incremental=False),
    ExtractSpec(schemas.tag_categories, "keap", _tag_categories, incremental=False),
    ExtractSpec(schemas.custom_fields, "keap", _custom_fields, incremental=False),
]

keap_assets = [extract_asset(spec) for spec in SPECS]
