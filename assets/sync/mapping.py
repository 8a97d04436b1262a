"""The Keap sync's mapping document: load, validate, and answer questions about it.

The document is YAML (`assets/sync/default_mapping.yaml` is the shipped one; docs/sync.md
describes every key). `load_mapping()` reads it, checks its shape with pydantic and its meaning
with the rules below, and raises `MappingError` listing every problem as
`file:line: what is wrong — how to fix`. Lines come from the YAML node marks. A file that is not
YAML at all (unreadable, a syntax error, a key written twice, which YAML parsers would silently
resolve to the last) raises `MappingSyntaxError`, naming the line and column.

`check_mapping(mapping, root, day)` goes further and compares the document with the latest
snapshots: ATS fields whose columns are not in the backup, stage names and statuses present in
the backup that nothing maps.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(__file__).with_name("default_mapping.yaml")
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
PLACEHOLDERS = {"stage": ("stage",), "job": ("job_name", "job_id", "department_id"),
                "reason": ("reason", "reason_type")}


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
    AtsField("current_rejection_reason", "derived", "text", ("rejection_reasons", "name"),
             "why the current application was rejected (null unless rejected)"),
    AtsField("last_applied_at", "derived", "timestamp", ("applications", "created_at"),
             "when the person's most recent application was created"),
    AtsField("application_count", "derived", "integer", ("applications", "id"),
             "how many applications the person has"),
)}


# -- problems ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        where += f":{self.column}" if self.line and self.column else ""
        note = "warning: " if self.severity == "warning" else ""
        return f"{where}: {note}{self.message} — {self.fix}"


class MappingError(ValueError):
    """The mapping document is not valid; `problems` lists each one with its line and fix."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid Keap sync mapping:\n" + "\n".join(f"  {p}" for p in problems))


class MappingSyntaxError(MappingError):
    """The file cannot be read as one YAML document (one problem, with its line and column)."""


# -- the document's shape (pydantic) ------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EventSpec(_Strict):
    tags: list[str] = []


class WithdrawnWhen(_Strict):
    reason_types: list[str] = ["They rejected us"]
    reasons: list[str] = []


class EventsDoc(_Strict):
    cross: dict[str, EventSpec | None] = {}
    never: list[str] = []
    withdrawn_when: WithdrawnWhen = WithdrawnWhen()
    quiet_statuses: list[str] = ["converted"]


class FieldDoc(_Strict):
    source: str = Field(alias="from")
    transforms: list[Any] = []
    null: Any = "leave"
    conflict: Any = "ats_wins"
    field_type: str | None = None
    on_missing: Any = None


class CustomFieldsDoc(_Strict):
    on_missing: Any = "create"


class ConsentDoc(_Strict):
    can_email_false: Any = "sync"


class StagesDoc(_Strict):
    map: dict[str, str | None] = {}
    unmapped: str | None = None


class JobsDoc(_Strict):
    template: str | None = "Job: {job_name}"
    applications: Any = "all"


class ReasonsDoc(_Strict):
    template: str | None = "Rejection: {reason}"
    map: dict[str, str | None] = {}


class TagsDoc(_Strict):
    stages: StagesDoc = StagesDoc()
    jobs: JobsDoc = JobsDoc()
    rejection_reasons: ReasonsDoc = ReasonsDoc()
    categories: dict[str, list[str]] = {}
    exclusive: dict[str, list[str]] = {}


class MappingDoc(_Strict):
    version: Literal[1] = 1
    events: EventsDoc = EventsDoc()
    fields: dict[str, FieldDoc] = {}
    custom_fields: CustomFieldsDoc = CustomFieldsDoc()
    consent: ConsentDoc = ConsentDoc()
    tags: TagsDoc = TagsDoc()


# -- the compiled mapping -----------------------------------------------------------------------
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
    fingerprint: str = ""
    _rules: dict[str, TagRule] = field(default_factory=dict, repr=False)

    # -- tags --------------------------------------------------------------------------------
    def fixed_tags(self) -> set[str]:
        """Tags that do not depend on the backup's values (events, stage map, reason map)."""
        tags = {t for ts in self.cross.values() for t in ts}
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

    def job_tag(self, name: str | None, job_id: Any, department_id: Any) -> str | None:
        if self.job_template is None or name is None:
            return None
        return (self.job_template.replace("{job_name}", name)
                .replace("{job_id}", "" if job_id is None else str(job_id))
                .replace("{department_id}", "" if department_id is None
                         else str(department_id)))

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
        """The document as data (comments, order of keys and spacing removed)."""
        return self.doc.model_dump(mode="json", by_alias=True)


# -- loading --------------------------------------------------------------------------------
def mapping_path(path: str | Path | None = None) -> Path:
    """The mapping in use: `path`, else $TALENTVAULT_SYNC_MAPPING, else the shipped default."""
    chosen = path or os.environ.get(ENV_VAR) or DEFAULT_PATH
    return Path(chosen).expanduser().resolve()


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and validate a mapping document; raises MappingError naming every problem."""
    p = mapping_path(path)
    if not p.is_file():
        raise MappingSyntaxError([Problem(
            str(p), None, "the mapping file does not exist" if not p.exists() else
            "the mapping path is not a file", f"create it (copy {DEFAULT_PATH}) or point "
            f"{ENV_VAR} at an existing file")])
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise MappingSyntaxError([Problem(str(p), None, f"not UTF-8 text (byte {e.start})",
                                          "save the file as UTF-8")]) from None
    except OSError as e:
        raise MappingSyntaxError([Problem(str(p), None, f"cannot be read ({e.strerror})",
                                          "check the path and its permissions")]) from None
    return parse_mapping(text, p)


def parse_mapping(text: str, path: str | Path = "<mapping>") -> Mapping:
    name = str(path)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line, column = _error_position(e, text)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise MappingSyntaxError([Problem(name, line, f"not valid YAML: {what}",
                                          "fix the syntax (indentation, quotes, colons)",
                                          column=column)]) from None
    twice = _duplicate_key(node)
    if twice is not None:
        key, mark, first = twice
        raise MappingSyntaxError([Problem(
            name, mark.line + 1, f"key {key!r} appears twice in the same mapping (first on "
            f"line {first}); YAML would silently keep only the last",
            "merge the two entries into one", column=mark.column + 1)])
    lines = _lines(node)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError([Problem(name, 1, "the document must be a mapping of keys",
                                    f"start from {DEFAULT_PATH}")])
    data = _stringify_keys(data)
    try:
        doc = MappingDoc.model_validate(data)
    except ValidationError as e:
        raise MappingError([_pydantic_problem(name, lines, err) for err in e.errors()]
                           ) from None
    return _compile(doc, Path(path), lines)


def _stringify_keys(v: Any) -> Any:
    """YAML reads `30001:` as an int key; every key of the document is text."""
    if isinstance(v, dict):
        return {("null" if k is None else str(k)) if not isinstance(k, str) else k:
                _stringify_keys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_stringify_keys(x) for x in v]
    return v


def _error_position(e: yaml.YAMLError, text: str) -> tuple[int | None, int | None]:
    """1-based line and column of a YAML error (parser marks, or a reader's offset)."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    at = getattr(e, "position", None)       # yaml.reader.ReaderError: a bad character
    if isinstance(at, int):
        before = text[:at]
        return before.count("\n") + 1, at - (before.rfind("\n") + 1) + 1
    return None, None


def _duplicate_key(node: yaml.Node | None) -> tuple[str, yaml.Mark, int] | None:
    """The first key written twice in one mapping: (key, its second mark, first line)."""
    stack = [node] if node is not None else []
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        return k.value, k.start_mark, seen[k.value]
                    seen[k.value] = k.start_mark.line + 1
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack += n.value
    return None


def _lines(node: yaml.Node | None) -> dict[tuple, int]:
    """Path (keys and list indexes) -> 1-based line, for every node of the document."""
    out: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                out[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
                out[(*path, key)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*path, i))

    if node is not None:
        walk(node, ())
    return out


def _line(lines: dict[tuple, int], path: tuple) -> int | None:
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _pydantic_problem(name: str, lines: dict[tuple, int], err: dict[str, Any]) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (
        p.startswith("function-") or p in ("EventSpec", "str", "none", "list[str]"))))
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        parent = loc[:-1]
        allowed = _allowed_keys(parent)
        fix = f"remove it or use one of: {', '.join(allowed)}" if allowed else "remove it"
        return Problem(name, _line(lines, loc), f"unknown key {key!r} in {_dotted(parent)}",
                       fix)
    if kind == "missing":
        return Problem(name, _line(lines, loc[:-1]), f"{_dotted(loc)} is required",
                       f"add `{loc[-1] if loc else ''}:`" if loc[-1:] != ("from",)
                       else "add `from: <ATS field>` (docs/sync.md lists them)")
    if kind == "literal_error" and loc == ("version",):
        return Problem(name, _line(lines, loc), "unsupported version", "set `version: 1`")
    return Problem(name, _line(lines, loc), f"{_dotted(loc)}: {err['msg']}",
                   "give a value of the expected type (see docs/sync.md)")


def _allowed_keys(parent: tuple) -> list[str]:
    models: dict[tuple, type[BaseModel]] = {
        (): MappingDoc, ("events",): EventsDoc, ("events", "withdrawn_when"): WithdrawnWhen,
        ("custom_fields",): CustomFieldsDoc, ("consent",): ConsentDoc, ("tags",): TagsDoc,
        ("tags", "stages"): StagesDoc, ("tags", "jobs"): JobsDoc,
        ("tags", "rejection_reasons"): ReasonsDoc}
    if len(parent) == 2 and parent[0] == "fields":
        return ["from", "transforms", "null", "conflict", "field_type", "on_missing"]
    if len(parent) == 3 and parent[:2] == ("events", "cross"):
        return ["tags"]
    model = models.get(tuple(parent))
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


# -- meaning --------------------------------------------------------------------------------
class _Collector:
    def __init__(self, name: str, lines: dict[tuple, int]):
        self.name, self.lines, self.problems = name, lines, []

    def add(self, path: tuple, message: str, fix: str) -> None:
        self.problems.append(Problem(self.name, _line(self.lines, path), message, fix))


def _compile(doc: MappingDoc, path: Path, lines: dict[tuple, int]) -> Mapping:
    c = _Collector(str(path), lines)
    cross = _events(doc, c)
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
    known = {tg for ts in cross.values() for tg in ts} | {v for v in stage_map.values() if v} | {
        v for v in t.rejection_reasons.map.values() if v}
    categories = _categories(t, known, c)
    exclusive = _exclusive(t, known, c)
    if c.problems:
        raise MappingError(c.problems)
    m = Mapping(
        path=path, doc=doc, fields=fields, cross=cross, never=tuple(doc.events.never),
        withdrawn_reason_types=tuple(doc.events.withdrawn_when.reason_types),
        withdrawn_reasons=tuple(doc.events.withdrawn_when.reasons),
        quiet_statuses=tuple(doc.events.quiet_statuses), can_email_false=can_email,
        stage_map=stage_map, stage_unmapped=t.stages.unmapped, job_template=t.jobs.template,
        job_scope=t.jobs.applications, reason_template=t.rejection_reasons.template,
        reason_map=dict(t.rejection_reasons.map), categories=categories, exclusive=exclusive)
    m.fingerprint = hashlib.sha256(json.dumps(m.normalized(), sort_keys=True,
                                              ensure_ascii=False).encode()).hexdigest()
    return m


def _events(doc: MappingDoc, c: _Collector) -> dict[str, tuple[str, ...]]:
    known = (*CROSSABLE_EVENTS, *NEVER_EVENTS)
    out: dict[str, tuple[str, ...]] = {}
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
        tags = tuple(spec.tags) if spec is not None else ()
        for i, tag in enumerate(tags):
            if not tag.strip() or tag.startswith("@"):
                c.add((*where, "tags", i), f"event {name!r} has an invalid tag name {tag!r}",
                      "use a plain, non-empty tag name")
        out[name] = tags
    for i, name in enumerate(doc.events.never):
        if name not in known:
            c.add(("events", "never", i), f"unknown event {name!r}",
                  f"use one of: {', '.join(known)}")
    return {e: out[e] for e in CROSSABLE_EVENTS if e in out}


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
        if u not in allowed:
            c.add(where, f"unknown placeholder {{{u}}} in {template!r}",
                  f"use {', '.join('{' + a + '}' for a in allowed)}")
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


# -- what the sync reads ----------------------------------------------------------------------
# Greenhouse state the desired state reads besides the profiles (entity -> columns)
GREENHOUSE_READS: dict[str, tuple[str, ...]] = {
    "applications": ("candidate_id", "job_id", "stage_name", "status", "source_id",
                     "created_at"),
    "jobs": ("name", "department_id"),
    "job_stages": ("name",),
    "application_stages": ("application_id",),
    "interviews": ("application_id", "status"),
    "offers": ("application_id", "status", "version"),
    "rejection_details": ("application_id", "rejection_reason_id"),
    "rejection_reasons": ("name", "type_name"),
}
# what the identity step reads to build profiles
IDENTITY_READS: dict[str, tuple[str, ...]] = {
    "candidates": ("first_name", "last_name", "emails", "phones", "tags", "can_email",
                   "updated_at"),
    "applications": ("candidate_id", "job_id", "stage_name", "status", "last_activity_at"),
}
ENTITIES_READ = ("candidates", *GREENHOUSE_READS)


def sync_fields(mapping: Mapping) -> dict[tuple[str, str], tuple[str, ...]]:
    """(source, entity) -> the snapshot fields the sync reads with this mapping."""
    out: dict[tuple[str, str], set[str]] = {}
    for entity, cols in (*IDENTITY_READS.items(), *GREENHOUSE_READS.items()):
        out.setdefault(("greenhouse", entity), set()).update(cols)
    for f in mapping.fields:
        entity, column = ATS_FIELDS[f.source].backing
        if column != "id":
            out.setdefault(("greenhouse", entity), set()).add(column)
    return {k: tuple(sorted(v)) for k, v in sorted(out.items())}


def mapped_values(mapping: Mapping) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """(source, entity, field) -> the values the sync maps (anything else is "unmapped" in the
    field audit). Stage names are left out when `tags.stages.unmapped` is a template (every
    stage then gets a tag)."""
    out: dict[tuple[str, str, str], tuple[str, ...]] = {
        ("greenhouse", "applications", "status"): (*EVENT_STATUSES, *mapping.quiet_statuses),
        ("greenhouse", "offers", "status"): OFFER_STATUSES,
        ("greenhouse", "interviews", "status"): INTERVIEW_STATUSES,
    }
    if mapping.stage_unmapped is None:
        stages = tuple(mapping.stage_map)
        out[("greenhouse", "applications", "stage_name")] = stages
        out[("greenhouse", "job_stages", "name")] = stages
    return out


# -- checking against the backup --------------------------------------------------------------


def latest_day(root: Path) -> str | None:
    """The latest day with a landed Greenhouse applications snapshot."""
    base = Path(root) / "greenhouse" / "applications"
    days = sorted(d.name.split("=", 1)[1] for d in base.glob("snapshot_date=*")
                  if (d / "_manifest.json").exists())
    return days[-1] if days else None


def check_mapping(mapping: Mapping, root: Path, day: str | None = None) -> list[Problem]:
    """Problems of `mapping` against the backup of `day` (default: the latest): ATS fields
    whose Greenhouse column is not in the snapshots, stage names and statuses in the backup that
    nothing maps, value maps without an entry for a value present in the backup (errors), and
    mapped stage names the backup does not hold (warnings: a typo, or a stage not used yet)."""
    from assets.identity.config import NormalizationConfig
    from assets.identity.inputs import has_partition, load_state
    from assets.identity.normalize import connect

    name = str(mapping.path)
    lines = _lines(yaml.compose(mapping.path.read_text(encoding="utf-8"))) \
        if mapping.path.exists() else {}
    out: list[Problem] = []

    def add(path: tuple, message: str, fix: str, severity: str = "error") -> None:
        out.append(Problem(name, _line(lines, path), message, fix, severity))

    day = day or latest_day(root)
    if day is None:
        return [Problem(name, None, f"no Greenhouse backup under {root}",
                        "back up Greenhouse first (talentvault demo or a backup run)")]
    present = {e: has_partition(root, "greenhouse", e, day) for e in ENTITIES_READ}
    columns = {e: _snapshot_columns(root, e, day) for e in ENTITIES_READ if present[e]}
    for f in mapping.fields:
        entity, column = ATS_FIELDS[f.source].backing
        if not present.get(entity):
            add(("fields", f.target, "from"), f"{f.target}: the ATS field {f.source!r} comes "
                f"from greenhouse/{entity}, which has no snapshot for {day}",
                f"back up greenhouse/{entity} for {day}, or map another field")
        elif column != "id" and column not in columns[entity]:
            add(("fields", f.target, "from"), f"{f.target}: the ATS field {f.source!r} needs "
                f"greenhouse/{entity}.{column}, which is not in the snapshot of {day}",
                "map another field, or check the Greenhouse export (the field audit shows "
                "what changed)")
    con = connect(NormalizationConfig())
    try:
        stages: dict[str, int] = {}
        if present["applications"]:
            load_state(con, root, "greenhouse", "applications", day,
                       ["stage_name", "status", "source_id"], "_app")
            for v, n in con.execute("SELECT stage_name, count(*) FROM _app WHERE stage_name "
                                    "IS NOT NULL GROUP BY ALL").fetchall():
                stages[v] = stages.get(v, 0) + n
            statuses = dict(con.execute("SELECT status, count(*) FROM _app WHERE status IS NOT "
                                        "NULL GROUP BY ALL ORDER BY ALL").fetchall())
            for status, n in statuses.items():
                if status not in EVENT_STATUSES and status not in mapping.quiet_statuses:
                    add(("events", "quiet_statuses"), f"application status {status!r} "
                        f"({n} applications) is not mapped to any event",
                        "add it to events.quiet_statuses (no event), or ask for the event "
                        "derivation to learn it")
            values = {"current_status": statuses, "current_source_id": dict(con.execute(
                "SELECT CAST(source_id AS VARCHAR), count(*) FROM _app WHERE source_id IS NOT "
                "NULL GROUP BY ALL ORDER BY ALL").fetchall())}
            for f in mapping.fields:
                for i, t in enumerate(f.transforms):
                    if t.name != "value_map" or f.source not in values or i > 0:
                        continue
                    keys = {k for k, _ in t.values}
                    if FALLBACK_KEY in keys:
                        continue
                    for v, n in values[f.source].items():
                        if v not in keys:
                            add(("fields", f.target, "transforms", i),
                                f"{f.target}: value {v!r} of {f.source} ({n} applications) "
                                "has no entry in value_map",
                                f"add `{v!r}: <Keap value>` or a fallback `\"*\": <value>`")
        if present["job_stages"]:
            load_state(con, root, "greenhouse", "job_stages", day, ["name"], "_stage")
            for v, n in con.execute("SELECT name, count(*) FROM _stage WHERE name IS NOT NULL "
                                    "GROUP BY ALL").fetchall():
                stages[v] = stages.get(v, 0) + n
        if mapping.stage_unmapped is None:
            for stage in sorted(stages):
                if stage not in mapping.stage_map:
                    add(("tags", "stages", "map"), f"stage {stage!r} is in the backup "
                        f"({stages[stage]} jobs/applications) but has no tag",
                        f"add `{stage}: <tag>` under tags.stages.map (null for no tag), or "
                        "set tags.stages.unmapped to a template like \"Stage: {stage}\"")
        if stages:
            for stage in mapping.stage_map:
                if stage not in stages:
                    add(("tags", "stages", "map", stage), f"stage {stage!r} is mapped but no "
                        f"job or application in the backup of {day} has it",
                        "check the spelling against Greenhouse (a stage not used yet is fine)",
                        "warning")
        if present["offers"]:
            load_state(con, root, "greenhouse", "offers", day, ["status"], "_offer")
            for (v,) in con.execute("SELECT DISTINCT status FROM _offer WHERE status IS NOT "
                                    "NULL ORDER BY 1").fetchall():
                if v not in OFFER_STATUSES:
                    add(("events", "cross"), f"offer status {v!r} is in the backup but no "
                        "event understands it", f"offer events read only "
                        f"{', '.join(OFFER_STATUSES)}; report this Greenhouse change")
    finally:
        con.close()
    return out


def _snapshot_columns(root: Path, entity: str, day: str) -> set[str]:
    m = Path(root) / "greenhouse" / entity / f"snapshot_date={day}" / "_manifest.json"
    manifest = json.loads(m.read_text())
    return {c["name"] for c in manifest.get("schema", [])}
