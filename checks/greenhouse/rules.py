"""Greenhouse Harvest v3: required fields, enumerations and references of each entity.

Enumerations are the v3 schemas' (`specs/ats/greenhouse-harvest-v3-schemas`). Every
entity the Keap push reads guards it: its structural checks are blocking ERRORs.
"""

from checks.rules import EntityRules, Enum, Ref

APPLICATION_STATUSES = ("in_process", "rejected", "hired", "converted")
OFFER_STATUSES = ("Created", "Accepted", "Rejected", "Deprecated")
JOB_STATUSES = ("open", "draft", "closed")
SCORECARD_STATUSES = ("draft", "complete")
SCORECARD_RATINGS = ("strong_no", "no", "yes", "strong_yes", "no_decision")
NOTE_TYPES = ("NOTE", "ACTIVITY", "INTERVIEW", "EMAIL", "FOLLOW_UP", "TAKE_HOME_TEST",
              "LINKEDIN_NOTE", "LINKEDIN_INMAIL", "AVAILABILITY_REQUEST", "MIGRATION_ERROR",
              "TOUCHPOINT", "FORM", "FEEDBACK")
ATTACHMENT_TYPES = ("resume", "cover_letter", "take_home_test", "offer_packet", "offer_letter",
                    "signed_offer_letter", "other", "form_attachment", "midfunnel_agreement",
                    "automated_agreement")
INTERVIEW_STATUSES = ("to_be_scheduled", "scheduled", "awaiting_feedback", "complete", "skipped",
                      "collect_feedback", "to_be_sent", "sent", "received")

RULES = {
    "candidates": EntityRules(
        required=("created_at", "updated_at"), guards_push=True),
    "applications": EntityRules(
        # job_id may be empty: a prospect application need not be for a job
        required=("candidate_id", "status", "updated_at"),
        enums=(Enum("status", APPLICATION_STATUSES),),
        refs=(Ref("candidate_id", "candidates"), Ref("job_id", "jobs"),
              Ref("stage_id", "job_stages")),
        guards_push=True),
    "application_stages": EntityRules(
        required=("application_id", "job_interview_stage_id", "entered_at", "updated_at"),
        refs=(Ref("application_id", "applications"),
              Ref("job_interview_stage_id", "job_stages")),
        guards_push=True),
    "offers": EntityRules(
        required=("application_id", "status", "updated_at"),
        enums=(Enum("status", OFFER_STATUSES),),
        refs=(Ref("application_id", "applications"), Ref("candidate_id", "candidates"),
              Ref("job_id", "jobs")),
        dates=("sent_on", "starts_on"),
        appointments=("starts_on",),
        guards_push=True),
    "rejection_details": EntityRules(
        required=("application_id", "rejection_reason_id", "rejected_at", "updated_at"),
        refs=(Ref("application_id", "applications"),
              Ref("rejection_reason_id", "rejection_reasons")),
        guards_push=True),
    "jobs": EntityRules(
        required=("name", "status", "updated_at"),
        enums=(Enum("status", JOB_STATUSES),),
        guards_push=True),
    "job_stages": EntityRules(
        required=("job_id", "name", "updated_at"),
        refs=(Ref("job_id", "jobs"),),
        guards_push=True),
    "interviews": EntityRules(
        required=("application_id", "status", "updated_at"),
        enums=(Enum("status", INTERVIEW_STATUSES),),
        refs=(Ref("application_id", "applications"),),
        appointments=("starts_at", "ends_at")),
    "rejection_reasons": EntityRules(required=("name",)),
    "users": EntityRules(required=("updated_at",)),
    "departments": EntityRules(required=("name",)),
    "offices": EntityRules(required=("name",)),
    "sources": EntityRules(required=("name",)),
    # the rest of the candidate record: references warn (none of it guards the push)
    "scorecards": EntityRules(
        required=("application_id", "status", "updated_at"),
        enums=(Enum("status", SCORECARD_STATUSES), Enum("candidate_rating", SCORECARD_RATINGS)),
        refs=(Ref("application_id", "applications"), Ref("interviewer_id", "users"))),
    "notes": EntityRules(
        required=("candidate_id", "type", "updated_at"),
        enums=(Enum("type", NOTE_TYPES),),
        refs=(Ref("candidate_id", "candidates"), Ref("application_id", "applications"))),
    "attachments": EntityRules(
        required=("application_id", "type", "filename", "updated_at"),
        enums=(Enum("type", ATTACHMENT_TYPES),),
        refs=(Ref("application_id", "applications"), Ref("candidate_id", "candidates"))),
    "applied_candidate_tags": EntityRules(
        required=("candidate_id", "candidate_tag_id", "updated_at"),
        refs=(Ref("candidate_id", "candidates"), Ref("candidate_tag_id", "candidate_tags"))),
    "candidate_tags": EntityRules(required=("name",)),
    "custom_fields": EntityRules(required=("name", "field_type", "value_type")),
    "close_reasons": EntityRules(required=("name",)),
    "job_posts": EntityRules(required=("job_id", "title"), refs=(Ref("job_id", "jobs"),)),
}
