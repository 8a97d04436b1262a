"""What the field audit needs to know about fields: which hold personal data (their top values
are shown as shapes, `Aa a.a9@a.a`, never as values), which values the Keap sync maps (a stage
or status outside these is flagged), and which fields the sync reads (their disappearance is
flagged).

These are the defaults for the sandbox's vocabulary and the sync contract in DESIGN.md; the
sync's mapping document is the authority once it exists (`FieldProfileConfig` can override).
"""

from __future__ import annotations

PERSONAL_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("greenhouse", "candidates"): frozenset({
        "first_name", "last_name", "preferred_name", "company", "title", "primary_email",
        "emails", "phones"}),
    ("greenhouse", "users"): frozenset({"name", "first_name", "last_name", "primary_email"}),
    ("keap", "contacts"): frozenset({
        "given_name", "family_name", "middle_name", "job_title", "primary_email", "emails",
        "phones"}),
    ("highlevel", "contacts"): frozenset({"firstName", "lastName", "email", "phone",
                                          "companyName"}),
    ("highlevel", "opportunities"): frozenset({"name"}),
}

STAGE_NAMES = (
    "Application Review", "Recruiter Screen", "Recruiter Phone Screen", "Initial Screen",
    "Phone Interview", "Phone Screen", "Hiring Manager Screen", "Technical Interview",
    "Technical Screen", "Take Home Test", "Onsite", "On-site", "Onsite Interview",
    "Final Round", "Reference Check", "References", "Offer",
)
# (source, entity, field) -> the values the sync maps; anything else is "unmapped"
MAPPED_VALUES: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("greenhouse", "applications", "status"): ("in_process", "rejected", "hired", "converted"),
    ("greenhouse", "applications", "stage_name"): STAGE_NAMES,
    ("greenhouse", "job_stages", "name"): STAGE_NAMES,
    ("greenhouse", "offers", "status"): ("Created", "Accepted", "Rejected", "Deprecated"),
    ("greenhouse", "interviews", "status"): ("to_be_scheduled", "scheduled",
                                              "awaiting_feedback", "complete", "skipped"),
    ("greenhouse", "jobs", "status"): ("open", "closed", "draft"),
    ("highlevel", "opportunities", "status"): ("open", "won", "lost", "abandoned"),
}

# fields the ATS -> Keap sync reads (DESIGN.md "Sync contract")
SYNC_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("greenhouse", "candidates"): ("first_name", "last_name", "emails", "phones", "tags",
                                   "can_email"),
    ("greenhouse", "applications"): ("candidate_id", "job_id", "stage_name", "status",
                                     "rejected_at", "last_activity_at"),
    ("greenhouse", "offers"): ("application_id", "status", "resolved_at"),
    ("greenhouse", "interviews"): ("application_id", "status", "starts_at"),
    ("greenhouse", "rejection_details"): ("application_id", "rejection_reason_id"),
    ("greenhouse", "rejection_reasons"): ("name",),
    ("greenhouse", "jobs"): ("name",),
    ("keap", "contacts"): ("given_name", "family_name", "emails", "phones", "tag_ids"),
    ("keap", "tags"): ("name",),
}


def personal(source: str, entity: str, field: str) -> bool:
    return field in PERSONAL_FIELDS.get((source, entity), frozenset())


def sync_field(source: str, entity: str, field: str) -> bool:
    return field in SYNC_FIELDS.get((source, entity), ())
