"""What the sync reads from the backups with a given mapping (for the field audit and checks)."""

from __future__ import annotations

from assets.sync.mapping.model import Mapping
from assets.sync.mapping.vocabulary import (
    ATS_FIELDS,
    EVENT_STATUSES,
    INTERVIEW_STATUSES,
    OFFER_STATUSES,
)

# Greenhouse state the desired state reads besides the profiles (entity -> columns)
# (the times date each event of the stream: assets/sync/desired/events.py)
GREENHOUSE_READS: dict[str, tuple[str, ...]] = {
    "applications": ("candidate_id", "job_id", "stage_name", "status", "source_id",
                     "created_at", "updated_at", "rejected_at", "last_activity_at"),
    "jobs": ("name", "department_id"),
    "job_stages": ("name",),
    "application_stages": ("application_id", "job_interview_stage_id", "entered_at"),
    "interviews": ("application_id", "status", "updated_at"),
    "offers": ("application_id", "status", "version", "created_at", "updated_at",
               "resolved_at"),
    "rejection_details": ("application_id", "rejection_reason_id", "rejected_at"),
    "rejection_reasons": ("name", "type_name"),
}
# what the identity step reads to build profiles
IDENTITY_READS: dict[str, tuple[str, ...]] = {
    "candidates": ("first_name", "last_name", "emails", "phones", "tags", "can_email",
                   "updated_at"),
    "applications": ("candidate_id", "job_id", "stage_name", "status", "last_activity_at"),
}
# reference data read when the day has it (backed up since issue 17): names for ids
OPTIONAL_READS: dict[str, tuple[str, ...]] = {"departments": ("name",), "sources": ("name",),
                                              "offices": ("name",)}
ENTITIES_READ = ("candidates", *GREENHOUSE_READS, *OPTIONAL_READS)


def sync_fields(mapping: Mapping) -> dict[tuple[str, str], tuple[str, ...]]:
    """(source, entity) -> the snapshot fields the sync reads with this mapping."""
    out: dict[tuple[str, str], set[str]] = {}
    for entity, cols in (*IDENTITY_READS.items(), *GREENHOUSE_READS.items()):
        out.setdefault(("greenhouse", entity), set()).update(cols)
    for f in mapping.fields:
        entity, column = ATS_FIELDS[f.source].backing
        if column != "id":
            out.setdefault(("greenhouse", entity), set()).add(column)
    return {k: tuple(sorted(v)) for k, v in sorted(out.items())}


def mapped_values(mapping: Mapping) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """(source, entity, field) -> the values the sync maps (anything else is "unmapped" in the
    field audit). Stage names are left out when `tags.stages.unmapped` is a template (every
    stage then gets a tag)."""
    out: dict[tuple[str, str, str], tuple[str, ...]] = {
        ("greenhouse", "applications", "status"): (*EVENT_STATUSES, *mapping.quiet_statuses),
        ("greenhouse", "offers", "status"): OFFER_STATUSES,
        ("greenhouse", "interviews", "status"): INTERVIEW_STATUSES,
    }
    if mapping.stage_unmapped is None:
        stages = tuple(mapping.stage_map)
        out[("greenhouse", "applications", "stage_name")] = stages
        out[("greenhouse", "job_stages", "name")] = stages
    return out
