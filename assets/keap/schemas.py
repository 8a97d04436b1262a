"""What a Keap snapshot row holds: flattened, typed columns; the rest stays in `_raw`."""

import pyarrow as pa

from orchestration.storage.schema import TS, EntitySchema, as_ts, col, first_of, list_of, path_of

STR, STR_LIST, F64 = pa.string(), pa.list_(pa.string()), pa.float64()

contacts = EntitySchema(
    "keap", "contacts", STR, as_ts(path_of("update_time")),
    (col("given_name"), col("family_name"), col("middle_name"), col("job_title"),
     col("company_id", get=path_of("company.id")),
     col("primary_email", get=first_of("email_addresses", "email")),
     col("emails", STR_LIST, get=list_of("email_addresses", "email")),
     col("phones", STR_LIST, get=list_of("phone_numbers", "number")),
     col("tag_ids", STR_LIST, get=list_of("tag_ids")),
     col("owner_id"), col("source_type"), col("create_time", TS), col("update_time", TS)),
    "Keap contacts (the CRM's people), one version per update.",
)
tags = EntitySchema(
    "keap", "tags", STR, lambda d: None,
    (col("name"), col("description"), col("category_id", get=path_of("category.id")),
     col("category_name", get=path_of("category.name"))),
    "Keap tags (always a full snapshot: the API has no update times for tags).",
)
tag_categories = EntitySchema(
    "keap", "tag_categories", STR, lambda d: None,
    (col("name"), col("description")),
    "Keap tag categories (always a full snapshot).",
)
custom_fields = EntitySchema(
    "keap", "custom_fields", STR, lambda d: None,
    (col("label"), col("field_type"), col("record_type"),
     col("options", STR_LIST, get=list_of("options", "label"))),
    "Keap contact custom field definitions (from the contact model; always full).",
)
opportunity_stages = EntitySchema(
    "keap", "opportunity_stages", STR, lambda d: None,
    (col("name"), col("order", pa.int64()), col("probability", pa.int64()),
     col("target_number_days", pa.int64())),
    "Keap opportunity stages (the pipeline's steps an opportunity moves through; always a full "
    "snapshot).",
)
notes = EntitySchema(
    "keap", "notes", STR, as_ts(path_of("update_time")),
    (col("contact_id"), col("title"), col("type"), col("text"),
     col("assigned_to_user_id", get=path_of("assigned_to_user.id")),
     col("create_time", TS), col("update_time", TS)),
    "Keap contact notes (call summaries, feedback), incremental by update time.",
)
tasks = EntitySchema(
    "keap", "tasks", STR, as_ts(path_of("modification_time")),
    (col("contact_id"), col("title"), col("description"), col("type"), col("priority"),
     col("completed", pa.bool_()), col("due_time", TS), col("completion_time", TS),
     col("assigned_to_user_id"), col("opportunity_id"), col("create_time", TS),
     col("modification_time", TS)),
    "Keap tasks (follow-ups, calls to make), incremental by modification time.",
)
emails = EntitySchema(
    "keap", "emails", STR, as_ts(path_of("sent_time")),
    (col("contact_id"), col("subject"), col("sent_to_address"), col("sent_from_address"),
     col("sent_time", TS), col("opened_time", TS), col("clicked_time", TS),
     col("plain_text"), col("html_text")),
    "Keap logged emails with their bodies: the API's record (base64 plain_content and "
    "html_content as returned) plus plain_text and html_text decoded by the backup. "
    "Incremental by the time Keap logged them.",
)
opportunities = EntitySchema(
    "keap", "opportunities", STR, as_ts(path_of("last_updated_time")),
    (col("contact_id", get=path_of("contact.id")), col("opportunity_title"),
     col("stage_id", get=path_of("stage.id")), col("stage_name", get=path_of("stage.name")),
     col("user_id", get=path_of("user.id")), col("projected_revenue_low", F64),
     col("projected_revenue_high", F64), col("estimated_close_time", TS),
     col("created_time", TS), col("last_updated_time", TS)),
    "Keap opportunities (a placement moving through the pipeline's stages), incremental by "
    "update time.",
)
companies = EntitySchema(
    "keap", "companies", STR, as_ts(path_of("update_time")),
    (col("company_name"), col("email", get=path_of("email_address.email")), col("website"),
     col("owner_id"), col("create_time", TS), col("update_time", TS)),
    "Keap companies (hiring partners), incremental by update time.",
)
