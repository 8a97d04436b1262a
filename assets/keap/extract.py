"""Keap backups: contacts, notes, tasks, emails, opportunities and companies (incremental: how
each list is read by time is in orchestration/resources/keap_history.py) and reference data
(tags, tag categories, custom fields, opportunity stages: always full). Deletions: the daily or
weekly id sweep (assets/deletions.py); Keap announces only contact deletions by webhook."""

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


def _opportunity_stages(client: KeapClient, updated_from: datetime | None,
                        updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    return client.opportunity_stage_pages()


def _windowed(method: str):
    """Pages of a list the client reads by update-time window (`<entity>_pages`)."""
    def pages(client: KeapClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
        return getattr(client, method)(updated_from, updated_to)
    return pages


def _emails(client: KeapClient, created_from: datetime | None,
            created_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    # the list has no bodies: each email of the window is read once by id (gone meanwhile: left
    # to the next listing)
    for page in client.email_pages(created_from, created_to):
        yield [doc for e in page if (doc := client.email(str(e["id"]))) is not None]


def _email_ids(client: KeapClient) -> Iterator[list[Any]]:
    for page in client.email_pages():
        yield [e["id"] for e in page]


WITH_CONTACT = ("contact_id", "contacts")

SPECS = [
    ExtractSpec(schemas.contacts, "keap", _contacts, live_ids=_contact_ids),
    ExtractSpec(schemas.tags, "keap", _tags, incremental=False),
    ExtractSpec(schemas.tag_categories, "keap", _tag_categories, incremental=False),
    ExtractSpec(schemas.custom_fields, "keap", _custom_fields, incremental=False),
    # a deleted contact takes its notes, tasks, emails and opportunities along, and Keap
    # announces only the contact's deletion: an incremental learns theirs from the day's
    # contacts backup (`parent`), sweep day or not
    ExtractSpec(schemas.notes, "keap", _windowed("note_pages"), parent=WITH_CONTACT),
    ExtractSpec(schemas.tasks, "keap", _windowed("task_pages"), parent=WITH_CONTACT),
    ExtractSpec(schemas.emails, "keap", _emails, live_ids=_email_ids, parent=WITH_CONTACT),
    ExtractSpec(schemas.opportunities, "keap", _windowed("opportunity_pages"),
                parent=WITH_CONTACT),
    ExtractSpec(schemas.opportunity_stages, "keap", _opportunity_stages, incremental=False),
    ExtractSpec(schemas.companies, "keap", _windowed("company_pages")),
]

keap_assets = [extract_asset(spec) for spec in SPECS]
