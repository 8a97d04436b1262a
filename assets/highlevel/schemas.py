"""What a HighLevel snapshot row holds: flattened, typed columns; the rest stays in `_raw`."""

import pyarrow as pa

from orchestration.storage.schema import (
    TS,
    EntitySchema,
    as_ts,
    col,
    epoch_ms,
    list_of,
    path_of,
)

STR, F64, STR_LIST = pa.string(), pa.float64(), pa.list_(pa.string())

contacts = EntitySchema(
    "highlevel", "contacts", STR, as_ts(path_of("dateUpdated")),
    (col("locationId"), col("firstName"), col("lastName"), col("email"), col("phone"),
     col("companyName"), col("source"), col("type"), col("tags", STR_LIST, get=list_of("tags")),
     col("dateAdded", TS), col("dateUpdated", TS)),
    "HighLevel contacts of the location, one version per update.",
)
opportunities = EntitySchema(
    "highlevel", "opportunities", STR, as_ts(path_of("updatedAt")),
    (col("name"), col("contactId", get=lambda d: d.get("contactId") or (d.get("contact") or {})
                      .get("id")),
     col("pipelineId"), col("pipelineStageId"), col("status"), col("monetaryValue", F64),
     col("assignedTo"), col("createdAt", TS), col("updatedAt", TS)),
    "HighLevel opportunities in pipelines, linked to contacts.",
)
pipelines = EntitySchema(
    "highlevel", "pipelines", STR, lambda d: None,
    (col("name"), col("stage_ids", STR_LIST, get=list_of("stages", "id")),
     col("stage_names", STR_LIST, get=list_of("stages", "name"))),
    "HighLevel pipelines and their stages (always a full snapshot).",
)
workflows = EntitySchema(
    "highlevel", "workflows", STR, as_ts(path_of("updatedAt")),
    (col("name"), col("status"), col("version"), col("createdAt", TS), col("updatedAt", TS)),
    "HighLevel workflows (read-only in the API; always a full snapshot).",
)
custom_fields = EntitySchema(
    "highlevel", "custom_fields", STR, lambda d: None,
    (col("name"), col("fieldKey"), col("dataType"), col("model")),
    "HighLevel location custom field definitions (always a full snapshot).",
)
tags = EntitySchema(
    "highlevel", "tags", STR, lambda d: None, (col("name"), col("locationId")),
    "HighLevel location tags (the names contacts are tagged with; always a full snapshot).",
)
custom_values = EntitySchema(
    "highlevel", "custom_values", STR, lambda d: None,
    (col("name"), col("fieldKey"), col("value"), col("locationId")),
    "HighLevel location custom values: named merge values such as `{{ custom_values.x }}` "
    "(always a full snapshot).",
)
notes = EntitySchema(
    "highlevel", "notes", STR, lambda d: None,
    (col("contactId"), col("userId"), col("title"), col("body"), col("dateAdded", TS)),
    "HighLevel contact notes (call summaries, feedback), read per contact. A note's only time is "
    "its creation (an edit keeps dateAdded): each version is stamped when the backup saw it.",
)
tasks = EntitySchema(
    "highlevel", "tasks", STR, lambda d: None,
    (col("contactId"), col("title"), col("body"), col("assignedTo"), col("dueDate", TS),
     col("completed", pa.bool_())),
    "HighLevel contact tasks, read per contact. A task has no time of its own: each version is "
    "stamped when the backup saw it.",
)
conversations = EntitySchema(
    "highlevel", "conversations", STR, epoch_ms("dateUpdated"),
    (col("contactId"), col("type"), col("assignedTo"), col("unreadCount", pa.int64()),
     col("lastMessageType"), col("lastMessageDirection"), col("lastMessageBody"),
     col("fullName"), col("email"), col("phone"),
     col("dateAdded", TS, get=epoch_ms("dateAdded")),
     col("dateUpdated", TS, get=epoch_ms("dateUpdated")),
     col("lastMessageDate", TS, get=epoch_ms("lastMessageDate"))),
    "HighLevel conversations (one per contact): the last message and the contact they belong "
    "to. Times are epoch milliseconds in the API. The contact's name, email and phone are "
    "HighLevel's join at read time, as of the conversation's last update (the contact itself "
    "is highlevel/contacts).",
)
messages = EntitySchema(
    "highlevel", "messages", STR, as_ts(lambda d: d.get("dateUpdated") or d.get("dateAdded")),
    (col("conversationId"), col("contactId"), col("messageType"), col("type", pa.int64()),
     col("direction"), col("status"), col("body"), col("contentType"), col("source"),
     col("userId"), col("attachments", STR_LIST, get=list_of("attachments")),
     col("callDuration", F64, "meta.callDuration"), col("callStatus", source="meta.callStatus"),
     col("subject", source="email.subject"), col("email_from", source="email.from"),
     col("email_to", STR_LIST, get=lambda d: list_of("to")(d.get("email") or {})),
     col("dateAdded", TS), col("dateUpdated", TS)),
    "HighLevel messages of every conversation: SMS, emails and call records with their "
    "metadata (call duration and status; an email's subject, sender and recipients, read "
    "once per email), from the location-wide export by update time.",
)
calendars = EntitySchema(
    "highlevel", "calendars", STR, lambda d: None,
    (col("name"), col("description"), col("calendarType"), col("groupId"),
     col("isActive", pa.bool_()), col("slotDuration", F64), col("slotDurationUnit"),
     col("team_user_ids", STR_LIST, get=list_of("teamMembers", "userId"))),
    "HighLevel calendars (interview types: phone screen, onsite ...), their whole configuration "
    "in _raw. No time of their own: always a full snapshot.",
)
appointments = EntitySchema(
    "highlevel", "appointments", STR, as_ts(path_of("dateUpdated")),
    (col("calendarId"), col("contactId"), col("groupId"), col("title"),
     col("appointmentStatus"), col("assignedUserId"), col("users", STR_LIST, get=list_of("users")),
     col("address"), col("notes"), col("startTime", TS), col("endTime", TS),
     col("dateAdded", TS), col("dateUpdated", TS)),
    "HighLevel appointments (interview schedules) on the calendars, with the contact, status "
    "and start and end. Read by event time per calendar and per contact named by webhooks "
    "(assets/highlevel/appointments.py).",
)
