"""What a Greenhouse snapshot row holds: the flattened, typed columns people query.

Everything else stays in `_raw` (the record's JSON exactly as the API returned it).
"""

import pyarrow as pa

from assets.greenhouse import attachment_files
from orchestration.storage.schema import TS, EntitySchema, as_ts, col, first_of, list_of, path_of

I64, BOOL, STR_LIST, I64_LIST = pa.int64(), pa.bool_(), pa.list_(pa.string()), pa.list_(pa.int64())
UPDATED = as_ts(path_of("updated_at"))


def _schema(entity: str, description: str, *columns) -> EntitySchema:
    base = (col("created_at", TS), col("updated_at", TS))
    return EntitySchema("greenhouse", entity, I64, UPDATED, base + columns, description)


candidates = _schema(
    "candidates", "ATS candidates (people), one version per update.",
    col("first_name"), col("last_name"), col("preferred_name"), col("company"), col("title"),
    col("last_activity_at", TS), col("private", BOOL), col("can_email", BOOL),
    col("primary_email", get=first_of("email_addresses", "value")),
    col("emails", STR_LIST, get=list_of("email_addresses", "value")),
    col("phones", STR_LIST, get=list_of("phone_numbers", "value")),
    col("tags", STR_LIST, get=list_of("tags")),
)
applications = _schema(
    "applications", "Applications of candidates to jobs: status, current stage, rejection.",
    col("candidate_id", I64), col("job_id", I64), col("stage_id", I64), col("stage_name"),
    col("status"), col("prospect", BOOL), col("rejected_at", TS), col("last_activity_at", TS),
    col("recruiter_id", I64), col("coordinator_id", I64), col("source_id", I64),
)
jobs = _schema(
    "jobs", "Jobs (requisitions) candidates apply to.",
    col("name"), col("requisition_id"), col("status"), col("confidential", BOOL),
    col("opened_at", TS), col("closed_at", TS), col("department_id", I64),
)
job_stages = EntitySchema(
    "greenhouse", "job_stages", I64, UPDATED,
    (col("created_at", TS), col("updated_at", TS), col("job_id", I64), col("name"),
     col("sort_order", I64), col("active", BOOL)),
    "Interview stages of each job (Greenhouse `job_interview_stages`).",
)
application_stages = _schema(
    "application_stages", "Stage history of each application: entered, exited, current.",
    col("application_id", I64), col("job_interview_stage_id", I64), col("entered_at", TS),
    col("exited_at", TS), col("days_in_stage", I64), col("current", BOOL),
)
offers = _schema(
    "offers", "Offers made on applications, with their status and dates.",
    col("application_id", I64), col("candidate_id", I64), col("job_id", I64),
    col("version", I64), col("status"), col("sent_on"), col("starts_on"), col("resolved_at", TS),
)
interviews = _schema(
    "interviews", "Scheduled interviews on applications.",
    col("application_id", I64), col("job_id", I64), col("status"), col("starts_at", TS),
    col("ends_at", TS), col("organizer_id", I64),
)
rejection_reasons = _schema(
    "rejection_reasons", "Reasons an application can be rejected for.",
    col("name"), col("type_name", get=path_of("type.name")),
)
rejection_details = _schema(
    "rejection_details", "Why and when each rejected application was rejected.",
    col("application_id", I64), col("rejection_reason_id", I64), col("rejected_by_id", I64),
    col("rejected_at", TS),
)
users = _schema(
    "users", "Greenhouse users (recruiters, coordinators, interviewers).",
    col("name"), col("first_name"), col("last_name"), col("primary_email"),
    col("deactivated", BOOL), col("site_admin", BOOL), col("job_title"),
)
departments = _schema(
    "departments", "Departments (jobs name theirs by id; the mapping can use the names).",
    col("name"), col("parent_id", I64), col("external_id"),
)
offices = _schema(
    "offices", "Offices (jobs and candidates name theirs by id).",
    col("name"), col("parent_id", I64), col("external_id"), col("location"),
)
sources = _schema(
    "sources", "Candidate sources (applications name theirs by id) and their sourcing strategy.",
    col("name"), col("type_name", get=path_of("type.name")),
)

# -- the rest of the candidate record (issue 17) and its reference data ---------------------------
scorecards = _schema(
    "scorecards", "Interview scorecards: who interviewed, their recommendation, when submitted.",
    col("application_id", I64), col("interviewer_id", I64), col("submitter_id", I64),
    col("interview_kit_id", I64), col("status"), col("candidate_rating"),
    col("interviewed_at", TS), col("submitted_at", TS),
)
notes = _schema(
    "notes", "Candidate activity notes: recruiters' notes, logged emails, activity entries.",
    col("candidate_id", I64), col("application_id", I64), col("user_id", I64), col("type"),
    col("visibility"), col("subject"), col("body"),
)
attachments = _schema(
    "attachments", "Files on applications (resumes, cover letters, offer letters): what they are "
    "and, with TALENTVAULT_GREENHOUSE_ATTACHMENT_FILES=1, their bytes with sha256 and size.",
    col("application_id", I64), col("candidate_id", I64), col("type"), col("filename"),
    *attachment_files.COLUMNS,
)
applied_candidate_tags = _schema(
    "applied_candidate_tags", "Which tag is on which candidate, since when.",
    col("candidate_id", I64), col("candidate_tag_id", I64),
)
candidate_tags = _schema(
    "candidate_tags", "The organization's candidate tags (applied tags name theirs by id).",
    col("name"),
)
custom_fields = _schema(
    "custom_fields", "Custom field definitions: the fields candidates, jobs, offers and "
    "applications carry in `custom_fields`, by name_key.",
    col("field_type"), col("name"), col("name_key"), col("value_type"), col("active", BOOL),
    col("private", BOOL), col("required", BOOL),
)
close_reasons = _schema(
    "close_reasons", "Reasons a job opening can be closed for.",
    col("name"),
)
job_posts = _schema(
    "job_posts", "Job board posts of each job: title, board, published or not.",
    col("job_id", I64), col("job_board_id", I64), col("title"), col("live", BOOL),
    col("active", BOOL), col("internal", BOOL), col("language"), col("first_published_at", TS),
)
