"""HighLevel backups: contacts (incremental by update time), opportunities and reference data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from assets.extract import ExtractSpec, extract_asset
from assets.highlevel import schemas
from orchestration.resources.highlevel import HighLevelClient


def _contacts(client: HighLevelClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    return client.contact_pages(updated_from=updated_from, updated_to=updated_to)


def _opportunities(client: HighLevelClient, updated_from: datetime | None,
                   updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    # the opportunities search has no update-time filter: every snapshot is full
    return client.opportunity_pages()


def _conversations(client: HighLevelClient, updated_from: datetime | None,
                   updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    # the search filters by creation, not update: every snapshot is full
    return client.conversation_pages()


def _messages(client: HighLevelClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    return client.message_pages(updated_from=updated_from, updated_to=updated_to)


def _single(method: str):
    def pages(client: HighLevelClient, updated_from: datetime | None,
              updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
        yield getattr(client, method)()
    return pages


def _per_contact(client: HighLevelClient, updated_from: datetime | None,
                 updated_to: datetime | None) -> Iterator[list[dict[str, Any]]]:
    raise NotImplementedError("notes, tasks and appointments are read per parent: "
                              "assets/highlevel/children.py")


SPECS = [
    ExtractSpec(schemas.contacts, "highlevel", _contacts),
    ExtractSpec(schemas.opportunities, "highlevel", _opportunities, incremental=False),
    ExtractSpec(schemas.pipelines, "highlevel", _single("pipelines"), incremental=False),
    ExtractSpec(schemas.workflows, "highlevel", _single("workflows"), incremental=False),
    ExtractSpec(schemas.custom_fields, "highlevel", _single("custom_fields"), incremental=False),
    ExtractSpec(schemas.tags, "highlevel", _single("tags"), incremental=False),
    ExtractSpec(schemas.custom_values, "highlevel", _single("custom_values"), incremental=False),
    # read per contact: which contacts, and what is gone, in assets/highlevel/children.py
    ExtractSpec(schemas.notes, "highlevel", _per_contact, children="notes"),
    ExtractSpec(schemas.tasks, "highlevel", _per_contact, children="tasks"),
    # conversations: full daily (one page per 100); messages: incremental by update time
    ExtractSpec(schemas.conversations, "highlevel", _conversations, incremental=False),
    ExtractSpec(schemas.messages, "highlevel", _messages,
                parent=("conversationId", "conversations")),
    # calendars: full daily (configuration); appointments by event time per calendar and per
    # contact the webhooks name, in assets/highlevel/appointments.py
    ExtractSpec(schemas.calendars, "highlevel", _single("calendars"), incremental=False),
    ExtractSpec(schemas.appointments, "highlevel", _per_contact, children="appointments"),
]

highlevel_assets = [extract_asset(spec) for spec in SPECS]
