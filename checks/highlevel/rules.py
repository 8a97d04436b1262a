"""HighLevel API v2: required fields, enumerations and references of each entity.

Nothing here feeds the Keap push, so every HighLevel check informs (WARN) and none blocks.
"""

from checks.rules import EntityRules, Enum, Ref

OPPORTUNITY_STATUSES = ("open", "won", "lost", "abandoned")
# calendars.json AppointmentSchemaResponse.appointmentStatus
APPOINTMENT_STATUSES = ("new", "confirmed", "cancelled", "showed", "noshow", "invalid", "active",
                        "completed")

RULES = {
    "contacts": EntityRules(required=("locationId", "dateUpdated")),
    "opportunities": EntityRules(
        required=("contactId", "pipelineId", "pipelineStageId", "status", "updatedAt"),
        enums=(Enum("status", OPPORTUNITY_STATUSES),),
        refs=(Ref("contactId", "contacts"), Ref("pipelineId", "pipelines"),
              Ref("pipelineStageId", "pipelines", target_ids="unnest(stage_ids)"))),
    "pipelines": EntityRules(required=("name",)),
    "workflows": EntityRules(required=("name",)),
    "custom_fields": EntityRules(required=("name",)),
    "tags": EntityRules(required=("name",)),
    "custom_values": EntityRules(required=("name", "fieldKey")),
    "notes": EntityRules(required=("contactId",), refs=(Ref("contactId", "contacts"),)),
    "tasks": EntityRules(required=("contactId", "title"), refs=(Ref("contactId", "contacts"),),
                         appointments=("dueDate",)),   # a due date is usually ahead
    "conversations": EntityRules(required=("contactId",), refs=(Ref("contactId", "contacts"),)),
    "messages": EntityRules(
        required=("conversationId", "contactId", "messageType", "direction"),
        enums=(Enum("direction", ("inbound", "outbound")),),
        refs=(Ref("conversationId", "conversations"), Ref("contactId", "contacts"))),
    "calendars": EntityRules(required=("name",)),
    "appointments": EntityRules(
        required=("calendarId", "contactId", "startTime", "dateUpdated"),
        enums=(Enum("appointmentStatus", APPOINTMENT_STATUSES),),
        refs=(Ref("contactId", "contacts"), Ref("calendarId", "calendars")),
        appointments=("startTime", "endTime")),   # booked ahead
}
