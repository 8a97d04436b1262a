"""The compiled mapping the sync works from: fields with their transforms, tag rules, events."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assets.sync.mapping.document import MappingDoc
from assets.sync.mapping.reverse import ReverseField
from assets.sync.mapping.vocabulary import (
    CUSTOM_PREFIX,
    JOB_CUSTOM,
    JOB_CUSTOM_PREFIX,
    MAP_TRANSFORMS,
)


@dataclass(frozen=True)
class Transform:
    name: str
    values: tuple[tuple[str, str], ...] = ()     # value_map entries (fallback key "*")

    def as_json(self) -> Any:
        return {self.name: dict(self.values)} if self.name in MAP_TRANSFORMS else self.name


@dataclass(frozen=True)
class FieldMap:
    target: str                   # Keap field or custom:<Label>
    source: str                   # ATS field name
    transforms: tuple[Transform, ...]
    null: Literal["leave", "clear", "default"]
    default: str | None
    conflict: Literal["ats_wins", "keap_wins"]
    field_type: str | None        # custom fields only
    on_missing: Literal["create", "report"] | None   # custom fields only

    @property
    def custom(self) -> bool:
        return self.target.startswith(CUSTOM_PREFIX)

    @property
    def label(self) -> str:
        return self.target[len(CUSTOM_PREFIX):] if self.custom else self.target


@dataclass(frozen=True)
class TagRule:
    """Where a tag sits: its Keap category and its exclusive group with its rank there."""

    category: str | None
    group: str | None
    rank: int | None


@dataclass
class Mapping:
    path: Path
    doc: MappingDoc
    fields: list[FieldMap]
    cross: dict[str, tuple[str, ...]]       # crossing event -> tags, in CROSSABLE_EVENTS order
    on_event: dict[str, tuple[str, ...]]    # event -> tags added once it happened (kept)
    never: tuple[str, ...]
    withdrawn_reason_types: tuple[str, ...]
    withdrawn_reasons: tuple[str, ...]
    quiet_statuses: tuple[str, ...]
    can_email_false: Literal["sync", "skip"]
    stage_map: dict[str, str | None]
    stage_unmapped: str | None
    job_template: str | None
    job_scope: Literal["all", "current"]
    reason_template: str | None
    reason_map: dict[str, str | None]
    categories: dict[str, str]              # tag or @family -> category
    exclusive: dict[str, tuple[str, ...]]   # group -> tags or @families, by precedence
    reverse: list[ReverseField] = field(default_factory=list)   # Keap -> ATS (off: empty)
    fingerprint: str = ""
    _rules: dict[str, TagRule] = field(default_factory=dict, repr=False)

    # -- tags --------------------------------------------------------------------------------
    def fixed_tags(self) -> set[str]:
        """Tags that do not depend on the backup's values (events, stage map, reason map)."""
        tags = {t for ts in (*self.cross.values(), *self.on_event.values()) for t in ts}
        tags |= {t for t in self.stage_map.values() if t}
        tags |= {t for t in self.reason_map.values() if t}
        return tags

    def tag_rule(self, tag: str, family: str | None) -> TagRule:
        """Category and exclusive group of a tag (`family`: stage, job, reason or None for an
        event tag); an explicit name wins over its family."""
        ref = f"@{family}" if family else None
        category = self.categories.get(tag) or (self.categories.get(ref) if ref else None)
        for name in (tag, ref):
            for group, members in self.exclusive.items():
                if name is not None and name in members:
                    return TagRule(category, group, members.index(name))
        return TagRule(category, None, None)

    def stage_tag(self, stage: str | None) -> str | None:
        if stage is None:
            return None
        if stage in self.stage_map:
            return self.stage_map[stage]
        return self.stage_unmapped.replace("{stage}", stage) if self.stage_unmapped else None

    def job_tag(self, name: str | None, job_id: Any, department_id: Any,
                custom_fields: dict[str, Any] | None = None,
                department_name: str | None = None, office_name: str | None = None
                ) -> str | None:
        """The job tag; `custom_fields`: the job's Greenhouse `custom_fields` object (for
        {job_custom:<key>}: the field's value as text, JSON for non-text values);
        `department_name`: the name of its department (greenhouse/departments); `office_name`:
        its first office's (greenhouse/offices)."""
        if self.job_template is None or name is None:
            return None
        tag = (self.job_template.replace("{job_name}", name)
               .replace("{job_id}", "" if job_id is None else str(job_id))
               .replace("{department_id}", "" if department_id is None
                        else str(department_id))
               .replace("{department_name}", department_name or "")
               .replace("{office_name}", office_name or ""))
        for key in job_custom_keys(self.job_template):
            value = ((custom_fields or {}).get(key) or {}).get("value")
            text = "" if value is None else value if isinstance(value, str) else \
                json.dumps(value, separators=(",", ":"))
            tag = tag.replace("{" + JOB_CUSTOM_PREFIX + key + "}", text)
        return tag

    def reason_tag(self, reason: str | None, reason_type: str | None) -> str | None:
        if reason is None:
            return None
        if reason in self.reason_map:
            return self.reason_map[reason]
        if self.reason_template is None:
            return None
        return (self.reason_template.replace("{reason}", reason)
                .replace("{reason_type}", reason_type or ""))

    # -- fields ------------------------------------------------------------------------------
    def custom_fields(self) -> dict[str, dict[str, str]]:
        return {f.label: {"field_type": f.field_type or "TEXT",
                          "on_missing": f.on_missing or "create"}
                for f in self.fields if f.custom}

    def conflict(self) -> dict[str, str]:
        return {f.target: f.conflict for f in self.fields}

    def sources(self) -> set[str]:
        return {f.source for f in self.fields}

    def normalized(self) -> dict[str, Any]:
        """The document as data (comments, order of keys and spacing removed), without the
        `reverse` section: the forward sync's fingerprint does not move with it."""
        return self.doc.model_dump(mode="json", by_alias=True, exclude={"reverse"})


def job_custom_keys(template: str | None) -> list[str]:
    """The job custom field keys a job tag template names ({job_custom:<key>})."""
    return sorted({m.group(1) for u in re.findall(r"\{([^{}]*)\}", template or "")
                   if (m := JOB_CUSTOM.match(u))})
