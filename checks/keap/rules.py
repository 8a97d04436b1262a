"""Keap REST v2: required fields, enumerations and references of each entity.

Contacts and tags guard the Keap push (it matches contacts and applies tags). The email opt
status is Keap's marketing state, not something the push depends on: an unknown one warns.
"""

from checks.rules import ENUMERATIONS_KNOWN, EntityRules, Enum, Ref

# RestEmailAddressStatus.status in the Keap v2 spec (`specs/keap`)
EMAIL_STATUSES = ("UNENGAGED_MARKETABLE", "SINGLE_OPT_IN", "DOUBLE_OPT_IN", "CONFIRMED",
                  "UNENGAGED_NON_MARKETABLE", "NON_MARKETABLE", "LOCKDOWN", "BOUNCE",
                  "HARD_BOUNCE", "MANUAL", "ADMIN", "SYSTEM", "LIST_UNSUBSCRIBE", "FEEDBACK",
                  "SPAM", "INVALID", "DEACTIVATED")

RULES = {
    "contacts": EntityRules(
        required=("create_time", "update_time"),
        enums=(Enum("email_opt_status", EMAIL_STATUSES, many=True, sql=(
            "json_extract_string(_raw, '$.email_addresses[*].email_opt_status')")),),
        refs=(Ref("tag_ids", "tags", many=True),),
        guards_push=True,
        informative=frozenset({ENUMERATIONS_KNOWN})),
    "tags": EntityRules(
        required=("name",),
        refs=(Ref("category_id", "tag_categories"),),
        guards_push=True),
    "tag_categories": EntityRules(required=("name",)),
    "custom_fields": EntityRules(required=("label",)),
    # a contact's history: informative (WARN), nothing of it feeds the push
    "notes": EntityRules(required=("contact_id", "update_time"),
                         refs=(Ref("contact_id", "contacts"),)),
    "tasks": EntityRules(required=("modification_time",), refs=(Ref("contact_id", "contacts"),),
                         appointments=("due_time",)),   # a due time is usually ahead
    "emails": EntityRules(required=("sent_to_address",), refs=(Ref("contact_id", "contacts"),)),
    "opportunities": EntityRules(required=("contact_id", "stage_id", "opportunity_title"),
                                 refs=(Ref("contact_id", "contacts"),),
                                 appointments=("estimated_close_time",)),
    "opportunity_stages": EntityRules(required=("name",)),
    "companies": EntityRules(required=("company_name",)),
}
