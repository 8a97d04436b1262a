"""Run configuration of the identity assets (Dagster run config; defaults are the documented
behaviour in docs/identity.md)."""

from __future__ import annotations

from typing import Literal

import dagster as dg

# survivorship: how a profile's field is chosen from the candidate records of one person
RULES_BY_KIND = {
    "text": ("latest", "earliest"),           # latest / earliest non-empty value
    "list": ("union", "latest"),              # every distinct value / the latest non-empty list
    "flag": ("all", "any", "latest"),         # true only if all say so / if any does / latest
}
FIELD_KINDS = {
    "first_name": "text", "last_name": "text", "preferred_name": "text", "company": "text",
    "title": "text", "email": "text", "phone": "text",
    "emails": "list", "phones": "list", "tags": "list",
    "can_email": "flag",
}
SURVIVORSHIP_DEFAULTS = {
    "first_name": "latest", "last_name": "latest", "preferred_name": "latest",
    "company": "latest", "title": "latest", "email": "latest", "phone": "latest",
    "emails": "union", "phones": "union", "tags": "union",
    # consent is conservative: one record saying "do not email" wins
    "can_email": "all",
}
GMAIL_DOMAINS = ["gmail.com", "googlemail.com"]


class NormalizationConfig(dg.Config):
    """How emails and phones are normalized (shared by profiles and Keap contacts)."""

    gmail_remove_dots: bool = False
    """Gmail ignores dots in the local part: with this on, `j.doe@gmail.com` = `jdoe@gmail.com`
    (only on `gmail_domains`; `googlemail.com` becomes `gmail.com`)."""
    remove_plus_tags: bool = False
    """Drop `+tag` from local parts (`jdoe+jobs@x.com` = `jdoe@x.com`). `gmail_only` limits it
    to `gmail_domains`."""
    plus_tags_gmail_only: bool = True
    gmail_domains: list[str] = GMAIL_DOMAINS
    default_phone_region: str = "US"
    """Region for phones typed without a country code (ISO 3166 code, e.g. US, GB, DE)."""
    phone_validation: Literal["possible", "valid"] = "possible"
    """possible: the length fits the country's numbering plan (fast path in SQL for common
    shapes); valid: the number is in an assigned range (every value through phonenumbers:
    ~60 µs per distinct value)."""


class IdentityConfig(NormalizationConfig):
    """Clustering, conflicts and survivorship of candidate profiles."""

    on_conflict: Literal["quarantine", "separate", "merge"] = "quarantine"
    """Candidate records that share an email but share no name token (two people typing one
    family address, a recruiter's typo): quarantine them all (default), keep each as its own
    profile (the email is then in several profiles and `emails_are_unique` blocks the sync
    until someone resolves it), or merge them anyway."""
    max_cluster_size: int = 50
    """An email shared by more records than this is a role/shared mailbox, not a person: the
    records are quarantined as conflicting (with `on_conflict: quarantine`)."""
    recency: Literal["updated_at", "last_activity_at"] = "updated_at"
    """What "latest" means in survivorship: the record's update time or its last activity."""
    survivorship: dict[str, str] = {}
    """Per-field overrides of the survivorship rules (see SURVIVORSHIP_DEFAULTS)."""


class DuplicatesConfig(dg.Config):
    """The review list of likely duplicates (never merged automatically)."""

    name_similarity: float = 0.88
    """Jaro-Winkler similarity of normalized full names at or above which two profiles that
    share a phone are listed."""
    max_phone_group: int = 20
    """Profiles sharing one phone beyond this (a switchboard, a placeholder number) are not
    paired; the phone group is counted in the metadata instead."""


class FieldProfileConfig(dg.Config):
    """Drift thresholds of the field audit."""

    min_rows: int = 20
    """Arrivals of a day below this per field are too few to judge a change of shape."""
    shape_shift: float = 0.30
    """A pattern class whose share moves by at least this much (0-1) is a change of shape."""


def survivorship_rules(overrides: dict[str, str]) -> dict[str, str]:
    """The effective rules; raises ValueError naming what is allowed."""
    rules = dict(SURVIVORSHIP_DEFAULTS)
    for field, rule in overrides.items():
        if field not in FIELD_KINDS:
            raise ValueError(f"survivorship: unknown field {field!r}; known: "
                             f"{', '.join(sorted(FIELD_KINDS))}")
        allowed = RULES_BY_KIND[FIELD_KINDS[field]]
        if rule not in allowed:
            raise ValueError(f"survivorship: {field!r} cannot use {rule!r}; allowed: "
                             f"{', '.join(allowed)}")
        rules[field] = rule
    return rules
