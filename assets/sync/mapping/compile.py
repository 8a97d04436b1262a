"""The document's meaning: the rules a well-shaped document must also follow, and the compiled
Mapping."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from assets.sync.mapping.document import FieldDoc, MappingDoc, TagsDoc
from assets.sync.mapping.model import FieldMap, Mapping, Transform
from assets.sync.mapping.positions import line_of
from assets.sync.mapping.problems import MappingError, Problem
from assets.sync.mapping.reverse import compile_reverse
from assets.sync.mapping.vocabulary import (
    ATS_FIELDS,
    CROSSABLE_EVENTS,
    CUSTOM_FIELD_TYPES,
    CUSTOM_PREFIX,
    EVENT_STATUSES,
    FAMILIES,
    JOB_CUSTOM,
    MAP_TRANSFORMS,
    NEVER_EVENTS,
    PLACEHOLDERS,
    SIMPLE_TRANSFORMS,
    STANDARD_TARGETS,
    TRANSFORMS,
)


class _Collector:
    def __init__(self, name: str, lines: dict[tuple, int]):
        self.name, self.lines, self.problems = name, lines, []

    def add(self, path: tuple, message: str, fix: str) -> None:
        self.problems.append(Problem(self.name, line_of(self.lines, path), message, fix))


def compile_mapping(doc: MappingDoc, path: Path, lines: dict[tuple, int]) -> Mapping:
    c = _Collector(str(path), lines)
    cross, on_event = _events(doc, c)
    fields = [_field(target, f, doc, c) for target, f in doc.fields.items()]
    fields = [f for f in fields if f is not None]
    if "email" not in doc.fields:
        c.add(("fields",), "no mapping for `email` (the Keap contact's match key)",
              "add `email: {from: email}` under fields")
    elif doc.fields["email"].source != "email":
        c.add(("fields", "email", "from"), "`email` must come from the ATS field `email` "
              "(the normalized primary address contacts are matched on)", "set `from: email`")
    can_email = doc.consent.can_email_false
    if can_email not in ("sync", "skip"):
        c.add(("consent", "can_email_false"), f"unknown consent policy {can_email!r}",
              "use sync or skip")
    t = doc.tags
    _template(c, ("tags", "stages", "unmapped"), t.stages.unmapped, "stage")
    _template(c, ("tags", "jobs", "template"), t.jobs.template, "job")
    _template(c, ("tags", "rejection_reasons", "template"), t.rejection_reasons.template,
              "reason")
    if t.jobs.applications not in ("all", "current"):
        c.add(("tags", "jobs", "applications"), f"unknown job tag scope {t.jobs.applications!r}",
              "use all (every job applied to) or current (the current application's job)")
    for status in doc.events.quiet_statuses:
        if status in EVENT_STATUSES:
            c.add(("events", "quiet_statuses"), f"{status!r} drives events and cannot be quiet",
                  f"remove it from quiet_statuses (only statuses other than "
                  f"{', '.join(EVENT_STATUSES)})")
    stage_map = dict(t.stages.map)
    for stage, tag in stage_map.items():
        if tag is not None and not tag.strip():
            c.add(("tags", "stages", "map", stage), f"stage {stage!r} maps to an empty tag",
                  "give a tag name, or null for no tag")
    known = {tg for ts in (*cross.values(), *on_event.values()) for tg in ts} | {
        v for v in stage_map.values() if v} | {v for v in t.rejection_reasons.map.values() if v}
    categories = _categories(t, known, c)
    exclusive = _exclusive(t, known, c)
    reverse = compile_reverse(
        doc, {f.label.lower() for f in fields if f.custom}, {k.lower() for k in known}, c.add)
    if c.problems:
        raise MappingError(c.problems)
    m = Mapping(
        path=path, doc=doc, fields=fields, cross=cross, on_event=on_event,
        never=tuple(doc.events.never),
        withdrawn_reason_types=tuple(doc.events.withdrawn_when.reason_types),
        withdrawn_reasons=tuple(doc.events.withdrawn_when.reasons),
        quiet_statuses=tuple(doc.events.quiet_statuses), can_email_false=can_email,
        stage_map=stage_map, stage_unmapped=t.stages.unmapped, job_template=t.jobs.template,
        job_scope=t.jobs.applications, reason_template=t.rejection_reasons.template,
        reason_map=dict(t.rejection_reasons.map), categories=categories, exclusive=exclusive,
        reverse=reverse)
    m.fingerprint = hashlib.sha256(json.dumps(m.normalized(), sort_keys=True,
                                              ensure_ascii=False).encode()).hexdigest()
    return m


def _events(doc: MappingDoc, c: _Collector
            ) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Per crossing event: the tags held while the current application is at it, and the
    tags added once it happened."""
    known = (*CROSSABLE_EVENTS, *NEVER_EVENTS)
    out: dict[str, tuple[str, ...]] = {}
    once: dict[str, tuple[str, ...]] = {}
    for name, spec in doc.events.cross.items():
        where = ("events", "cross", name)
        if name in NEVER_EVENTS:
            c.add(where, f"event {name!r} never crosses into Keap",
                  "remove it from events.cross (it belongs under events.never)")
        elif name not in CROSSABLE_EVENTS:
            c.add(where, f"unknown event {name!r}",
                  f"use one of: {', '.join(CROSSABLE_EVENTS)}")
        elif name in doc.events.never:
            c.add(where, f"event {name!r} is both in cross and in never",
                  "keep it in one of the two lists")
        for key, target in (("tags", out), ("on_event", once)):
            tags = tuple(getattr(spec, key)) if spec is not None else ()
            for i, tag in enumerate(tags):
                if not tag.strip() or tag.startswith("@"):
                    c.add((*where, key, i), f"event {name!r} has an invalid tag name {tag!r}",
                          "use a plain, non-empty tag name")
            target[name] = tags
    for i, name in enumerate(doc.events.never):
        if name not in known:
            c.add(("events", "never", i), f"unknown event {name!r}",
                  f"use one of: {', '.join(known)}")
    return ({e: out[e] for e in CROSSABLE_EVENTS if e in out},
            {e: once[e] for e in CROSSABLE_EVENTS if once.get(e)})


def _field(target: str, f: FieldDoc, doc: MappingDoc, c: _Collector) -> FieldMap | None:
    where = ("fields", target)
    ok = True
    if target.startswith(CUSTOM_PREFIX):
        if not target[len(CUSTOM_PREFIX):].strip():
            c.add(where, "a custom field needs a label", "write it as `custom:<Label>`")
            ok = False
        if f.field_type is not None and f.field_type not in CUSTOM_FIELD_TYPES:
            c.add((*where, "field_type"), f"unknown Keap field type {f.field_type!r}",
                  f"use one of: {', '.join(CUSTOM_FIELD_TYPES)}")
            ok = False
    else:
        if target not in STANDARD_TARGETS:
            c.add(where, f"unknown Keap field {target!r}",
                  f"use one of: {', '.join(STANDARD_TARGETS)}, or custom:<Label> for a custom "
                  "field")
            ok = False
        for key in ("field_type", "on_missing"):
            if getattr(f, key) is not None:
                c.add((*where, key), f"{key} only applies to custom fields",
                      "remove it, or map to custom:<Label>")
                ok = False
    if f.source not in ATS_FIELDS:
        c.add((*where, "from"), f"unknown ATS field {f.source!r}",
              f"use one of: {', '.join(ATS_FIELDS)}")
        ok = False
    transforms = []
    for i, t in enumerate(f.transforms):
        parsed = _transform(t, (*where, "transforms", i), c)
        ok = ok and parsed is not None
        if parsed is not None:
            transforms.append(parsed)
    null, default = "leave", None
    if f.null in ("leave", "clear"):
        null = f.null
    elif isinstance(f.null, dict) and list(f.null) == ["default"] and f.null["default"] \
            is not None and not isinstance(f.null["default"], dict | list):
        null, default = "default", _scalar(f.null["default"])
    else:
        c.add((*where, "null"), f"bad null policy {f.null!r}",
              "use leave, clear, or {default: <value>}")
        ok = False
    if f.conflict not in ("ats_wins", "keap_wins"):
        c.add((*where, "conflict"), f"unknown conflict policy {f.conflict!r}",
              "use ats_wins or keap_wins")
        ok = False
    on_missing = f.on_missing
    if target.startswith(CUSTOM_PREFIX):
        on_missing = on_missing if on_missing is not None else doc.custom_fields.on_missing
        if on_missing not in ("create", "report"):
            path = (*where, "on_missing") if f.on_missing is not None else (
                "custom_fields", "on_missing")
            c.add(path, f"unknown on_missing setting {on_missing!r}", "use create or report")
            ok = False
    if not ok:
        return None
    return FieldMap(target, f.source, tuple(transforms), null, default, f.conflict,
                    (f.field_type or "TEXT") if target.startswith(CUSTOM_PREFIX) else None,
                    on_missing if target.startswith(CUSTOM_PREFIX) else None)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _transform(t: Any, where: tuple, c: _Collector) -> Transform | None:
    if isinstance(t, str):
        if t in SIMPLE_TRANSFORMS:
            return Transform(t)
        if t in MAP_TRANSFORMS:
            c.add(where, f"{t} needs its values", f"write it as `{{{t}: {{from: to, ...}}}}`")
            return None
        c.add(where, f"unknown transform {t!r}", f"use one of: {', '.join(TRANSFORMS)}")
        return None
    if isinstance(t, dict) and len(t) == 1:
        (name, arg), = t.items()
        if name in MAP_TRANSFORMS:
            if not isinstance(arg, dict) or not arg:
                c.add(where, f"{name} needs a mapping of values",
                      f"write it as `{{{name}: {{from: to, ...}}}}`")
                return None
            values = tuple((str(k), _scalar(v)) for k, v in arg.items() if v is not None)
            return Transform(name, values)
        c.add(where, f"unknown transform {name!r}", f"use one of: {', '.join(TRANSFORMS)}")
        return None
    c.add(where, f"a transform must be a name or {{value_map: ...}}, got {t!r}",
          f"use one of: {', '.join(TRANSFORMS)}")
    return None


def _template(c: _Collector, where: tuple, template: str | None, family: str) -> None:
    if template is None:
        return
    allowed = PLACEHOLDERS[family]
    used = re.findall(r"\{([^{}]*)\}", template)
    for u in used:
        if u not in allowed and not (family == "job" and JOB_CUSTOM.match(u)):
            extra = ", {job_custom:<key>}" if family == "job" else ""
            c.add(where, f"unknown placeholder {{{u}}} in {template!r}",
                  f"use {', '.join('{' + a + '}' for a in allowed)}{extra}")
    if family in ("stage", "reason") and not used:
        c.add(where, f"the template {template!r} has no placeholder, so every value would get "
              "the same tag", f"include {{{allowed[0]}}}")


def _member_ok(c: _Collector, where: tuple, m: str, known: set[str], what: str) -> bool:
    if m.startswith("@"):
        if m not in FAMILIES:
            c.add(where, f"unknown tag family {m!r} in {what}", f"use {', '.join(FAMILIES)}")
            return False
        return True
    if m not in known:
        c.add(where, f"tag {m!r} in {what} is produced by nothing in this mapping",
              "add it to an event's tags or the stage/reason map, or remove it here")
        return False
    return True


def _categories(t: TagsDoc, known: set[str], c: _Collector) -> dict[str, str]:
    out: dict[str, str] = {}
    for category, members in t.categories.items():
        for i, m in enumerate(members):
            where = ("tags", "categories", category, i)
            if not _member_ok(c, where, m, known, f"category {category!r}"):
                continue
            if m in out and out[m] != category:
                c.add(where, f"tag {m!r} is in two categories ({out[m]!r} and {category!r})",
                      "keep it in one category")
                continue
            out[m] = category
    return out


def _exclusive(t: TagsDoc, known: set[str], c: _Collector) -> dict[str, tuple[str, ...]]:
    seen: dict[str, str] = {}
    out: dict[str, tuple[str, ...]] = {}
    for group, members in t.exclusive.items():
        kept = []
        for i, m in enumerate(members):
            where = ("tags", "exclusive", group, i)
            if not _member_ok(c, where, m, known, f"exclusive group {group!r}"):
                continue
            if m in seen:
                other = seen[m]
                c.add(where, f"tag {m!r} is in two exclusive groups ({other!r} and {group!r})"
                      if other != group else f"tag {m!r} is listed twice in exclusive group "
                      f"{group!r}", "keep it in one group (a tag can only be exclusive "
                      "with one set of others)")
                continue
            seen[m] = group
            kept.append(m)
        out[group] = tuple(kept)
    return out
