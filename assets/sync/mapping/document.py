"""The document's shape, as pydantic models (strict: an unknown key is a problem)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EventSpec(_Strict):
    tags: list[str] = []         # while the current application is at this event
    on_event: list[str] = []     # once the event happened to any application (kept)


class WithdrawnWhen(_Strict):
    reason_types: list[str] = ["They rejected us"]
    reasons: list[str] = []


class EventsDoc(_Strict):
    cross: dict[str, EventSpec | None] = {}
    never: list[str] = []
    withdrawn_when: WithdrawnWhen = WithdrawnWhen()
    quiet_statuses: list[str] = ["converted"]


class FieldDoc(_Strict):
    source: str = Field(alias="from")
    transforms: list[Any] = []
    null: Any = "leave"
    conflict: Any = "ats_wins"
    field_type: str | None = None
    on_missing: Any = None


class CustomFieldsDoc(_Strict):
    on_missing: Any = "create"


class ConsentDoc(_Strict):
    can_email_false: Any = "sync"


class StagesDoc(_Strict):
    map: dict[str, str | None] = {}
    unmapped: str | None = None


class JobsDoc(_Strict):
    template: str | None = "Job: {job_name}"
    applications: Any = "all"


class ReasonsDoc(_Strict):
    template: str | None = "Rejection: {reason}"
    map: dict[str, str | None] = {}


class TagsDoc(_Strict):
    stages: StagesDoc = StagesDoc()
    jobs: JobsDoc = JobsDoc()
    rejection_reasons: ReasonsDoc = ReasonsDoc()
    categories: dict[str, list[str]] = {}
    exclusive: dict[str, list[str]] = {}


class ReverseFieldDoc(_Strict):
    source: str = Field(alias="from")   # email_opt_out | tag:<Keap tag> | custom:<Keap label>
    target: str = Field(alias="to")     # tag:<candidate tag> | custom:<candidate field key>
    conflict: Any = "keap_wins"         # keap_wins | ats_wins | newest_wins


class ReverseDoc(_Strict):
    fields: dict[str, ReverseFieldDoc] = {}


class MappingDoc(_Strict):
    version: Literal[1] = 1
    events: EventsDoc = EventsDoc()
    fields: dict[str, FieldDoc] = {}
    custom_fields: CustomFieldsDoc = CustomFieldsDoc()
    consent: ConsentDoc = ConsentDoc()
    tags: TagsDoc = TagsDoc()
    reverse: ReverseDoc = ReverseDoc()      # Keap -> ATS (assets/sync/reverse/); off when empty
