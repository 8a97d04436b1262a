"""The mapping's vocabulary: the events, statuses, Keap targets, transforms and placeholders
it may name, and the ATS fields it may read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_PATH = Path(__file__).parent.parent / "default_mapping.yaml"
ENV_VAR = "TALENTVAULT_SYNC_MAPPING"

# -- the vocabulary ---------------------------------------------------------------------------
# events that may cross into Keap, in the order the derivation reports them
CROSSABLE_EVENTS = ("new_application", "stage_change", "interview_scheduled", "offer_extended",
                    "offer_accepted", "hired", "offer_declined", "withdrawn", "rejected")
# ATS events that never reach Keap (a crossable event may be listed under `never` too)
NEVER_EVENTS = ("internal_note", "admin_edit", "interview_feedback", "offer_revision",
                "job_plan_edit", "job_closed", "user_change")
# application statuses the event derivation understands
EVENT_STATUSES = ("in_process", "hired", "rejected")
OFFER_STATUSES = ("Created", "Accepted", "Rejected", "Deprecated")
INTERVIEW_STATUSES = ("to_be_scheduled", "scheduled", "awaiting_feedback", "complete",
                      "skipped")

# Keap v2 contact fields a mapping may write (besides `custom:<Label>`); `email` is the EMAIL1
# slot (the match key), `phone` the PHONE1 slot
STANDARD_TARGETS = ("email", "phone", "given_name", "family_name", "middle_name",
                    "preferred_name", "job_title", "website", "time_zone", "preferred_locale",
                    "contact_type", "prefix", "suffix", "spouse_name", "birth_date",
                    "anniversary_date")
CUSTOM_PREFIX = "custom:"
CUSTOM_FIELD_TYPES = (
    "CURRENCY", "DATE", "DATE_TIME", "DAY_OF_WEEK", "DECIMAL_NUMBER", "DRILLDOWN", "DROPDOWN",
    "EMAIL", "LIST_BOX", "MONTH", "NAME", "PERCENT", "PHONE_NUMBER", "RADIO",
    "SOCIAL_SECURITY_NUMBER", "STATE", "TEXT", "TEXT_AREA", "USER", "USER_LIST_BOX", "WEBSITE",
    "WHOLE_NUMBER", "YEAR", "YES_NO")
SIMPLE_TRANSFORMS = ("trim", "lower", "upper", "title", "date", "e164")
MAP_TRANSFORMS = ("value_map",)
TRANSFORMS = SIMPLE_TRANSFORMS + MAP_TRANSFORMS
FALLBACK_KEY = "*"
FAMILIES = {"@stage": "stage", "@job": "job", "@reason": "reason"}
PLACEHOLDERS = {"stage": ("stage",),
                "job": ("job_name", "job_id", "department_id", "department_name", "office_name"),
                "reason": ("reason", "reason_type")}
# a job custom field's value in a job tag: {job_custom:<key>} (the key as Greenhouse names it in
# the job's `custom_fields`, e.g. employment_type; `mapping check` lists the backup's keys)
JOB_CUSTOM_PREFIX = "job_custom:"
JOB_CUSTOM = re.compile(r"^job_custom:([A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class AtsField:
    """An ATS value a mapping can read: a profile column (identity/candidate_profiles) or a
    value derived from the person's applications. `backing` is the Greenhouse snapshot column
    it comes from (checked by `mapping check`)."""

    name: str
    kind: Literal["profile", "derived"]
    type: Literal["text", "timestamp", "integer", "flag"]
    backing: tuple[str, str]
    description: str


ATS_FIELDS: dict[str, AtsField] = {f.name: f for f in (
    AtsField("profile_id", "profile", "integer", ("candidates", "id"),
             "the profile's id: its oldest Greenhouse candidate id"),
    AtsField("email", "profile", "text", ("candidates", "emails"),
             "primary normalized email (the match key)"),
    AtsField("first_name", "profile", "text", ("candidates", "first_name"), "first name"),
    AtsField("last_name", "profile", "text", ("candidates", "last_name"), "last name"),
    AtsField("preferred_name", "profile", "text", ("candidates", "preferred_name"),
             "preferred name"),
    AtsField("company", "profile", "text", ("candidates", "company"), "current company"),
    AtsField("title", "profile", "text", ("candidates", "title"), "current job title"),
    AtsField("phone", "profile", "text", ("candidates", "phones"), "first phone, E.164"),
    AtsField("can_email", "profile", "flag", ("candidates", "can_email"),
             "Greenhouse's may-email flag"),
    AtsField("created_at", "profile", "timestamp", ("candidates", "created_at"),
             "when the first candidate record was created"),
    AtsField("updated_at", "profile", "timestamp", ("candidates", "updated_at"),
             "when a candidate record last changed"),
    AtsField("last_activity_at", "profile", "timestamp", ("applications", "last_activity_at"),
             "the latest activity on any application"),
    AtsField("current_application_id", "profile", "integer", ("applications", "id"),
             "the current application (the most recent activity)"),
    AtsField("current_job_id", "profile", "integer", ("applications", "job_id"),
             "the current application's job id"),
    AtsField("current_stage_name", "profile", "text", ("applications", "stage_name"),
             "the current application's stage (null once hired or rejected)"),
    AtsField("current_status", "profile", "text", ("applications", "status"),
             "the current application's status: in_process, hired, rejected, converted"),
    AtsField("current_job_name", "derived", "text", ("jobs", "name"),
             "the current application's job name"),
    AtsField("current_department_id", "derived", "integer", ("jobs", "department_id"),
             "the current application's job's department id"),
    AtsField("current_source_id", "derived", "integer", ("applications", "source_id"),
             "the current application's source id"),
    AtsField("current_source_name", "derived", "text", ("sources", "name"),
             "the current application's source name (greenhouse/sources; null on a day "
             "backed up before sources were)"),
    AtsField("current_department_name", "derived", "text", ("departments", "name"),
             "the current application's job's department name (greenhouse/departments)"),
    AtsField("current_office_name", "derived", "text", ("offices", "name"),
             "the current application's job's first office name (greenhouse/offices)"),
    AtsField("current_rejection_reason", "derived", "text", ("rejection_reasons", "name"),
             "why the current application was rejected (null unless rejected)"),
    AtsField("last_applied_at", "derived", "timestamp", ("applications", "created_at"),
             "when the person's most recent application was created"),
    AtsField("application_count", "derived", "integer", ("applications", "id"),
             "how many applications the person has"),
)}
