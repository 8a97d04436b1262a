"""What a Keap snapshot row holds: flattened, typed columns; the rest stays in `_raw`."""

import pyarrow as pa

from orchestration.storage.schema import TS, EntitySchema, as_ts, col, first_of, list_of, path_of

STR, STR_LIST = pa.string(), pa.list_(pa.string())

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
