"""What the field audit needs to know about fields: which hold personal data (their top values
are shown as shapes, `Aa a.a9@a.a`, never as values), which values the Keap sync maps (a stage
or status outside these is flagged), and which fields the sync reads (their disappearance is
flagged).

The last two come from the Keap sync's mapping document (assets/sync/mapping/): the one named
by $TALENTVAULT_SYNC_MAPPING, else the shipped default. A configured mapping that does not
load falls back to the shipped one here, with a warning (the sync itself refuses to run on it).
"""

from __future__ import annotations

import logging

from assets.sync import mapping as sync_mapping

log = logging.getLogger(__name__)


def _mapping() -> sync_mapping.Mapping:
    try:
        return sync_mapping.load_mapping()
    except sync_mapping.MappingError as e:
        log.warning("the Keap sync mapping does not load (%d problems); the field audit uses "
                    "the shipped default", len(e.problems))
        return sync_mapping.load_mapping(sync_mapping.DEFAULT_PATH)


_MAPPING = _mapping()

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

# (source, entity, field) -> the values the sync maps; anything else is "unmapped"
MAPPED_VALUES: dict[tuple[str, str, str], tuple[str, ...]] = {
    **sync_mapping.mapped_values(_MAPPING),
    # not read by the sync, audited all the same
    ("greenhouse", "jobs", "status"): ("open", "closed", "draft"),
    ("highlevel", "opportunities", "status"): ("open", "won", "lost", "abandoned"),
}
STAGE_NAMES = MAPPED_VALUES.get(("greenhouse", "applications", "stage_name"), ())

# fields the ATS -> Keap sync reads (from the mapping), plus the Keap side it matches against
SYNC_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    **sync_mapping.sync_fields(_MAPPING),
    ("keap", "contacts"): ("given_name", "family_name", "emails", "phones", "tag_ids"),
    ("keap", "tags"): ("name",),
}


def personal(source: str, entity: str, field: str) -> bool:
    return field in PERSONAL_FIELDS.get((source, entity), frozenset())


def sync_field(source: str, entity: str, field: str) -> bool:
    return field in SYNC_FIELDS.get((source, entity), ())
