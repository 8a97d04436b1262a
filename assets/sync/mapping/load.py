"""Loading a mapping document: YAML with line marks, its shape checked by pydantic, every
problem told as `file:line: what is wrong — how to fix`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from assets.sync.mapping.compile import compile_mapping
from assets.sync.mapping.document import (
    ConsentDoc,
    CustomFieldsDoc,
    EventsDoc,
    JobsDoc,
    MappingDoc,
    ReasonsDoc,
    ReverseDoc,
    StagesDoc,
    TagsDoc,
    WithdrawnWhen,
)
from assets.sync.mapping.model import Mapping
from assets.sync.mapping.positions import dotted, line_of, lines_of
from assets.sync.mapping.problems import MappingError, MappingSyntaxError, Problem
from assets.sync.mapping.vocabulary import DEFAULT_PATH, ENV_VAR


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
    lines = lines_of(node)
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
    return compile_mapping(doc, Path(path), lines)


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


def _pydantic_problem(name: str, lines: dict[tuple, int], err: dict[str, Any]) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (
        p.startswith("function-") or p in ("EventSpec", "str", "none", "list[str]"))))
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        parent = loc[:-1]
        allowed = _allowed_keys(parent)
        fix = f"remove it or use one of: {', '.join(allowed)}" if allowed else "remove it"
        return Problem(name, line_of(lines, loc), f"unknown key {key!r} in {dotted(parent)}",
                       fix)
    if kind == "missing":
        return Problem(name, line_of(lines, loc[:-1]), f"{dotted(loc)} is required",
                       _missing_fix(loc))
    if kind == "literal_error" and loc == ("version",):
        return Problem(name, line_of(lines, loc), "unsupported version", "set `version: 1`")
    return Problem(name, line_of(lines, loc), f"{dotted(loc)}: {err['msg']}",
                   "give a value of the expected type (see docs/sync.md)")


def _missing_fix(loc: tuple) -> str:
    if loc[:1] == ("reverse",):
        return {"from": "add `from: <Keap source>` (email_opt_out, tag:<Keap tag>, "
                        "custom:<Keap custom field label>)",
                "to": "add `to: <Greenhouse target>` (tag:<candidate tag> or "
                      "custom:<candidate custom field key>)"}.get(str(loc[-1]), "add it")
    if loc[-1:] == ("from",):
        return "add `from: <ATS field>` (docs/sync.md lists them)"
    return f"add `{loc[-1] if loc else ''}:`"


def _allowed_keys(parent: tuple) -> list[str]:
    models: dict[tuple, type[BaseModel]] = {
        (): MappingDoc, ("events",): EventsDoc, ("events", "withdrawn_when"): WithdrawnWhen,
        ("custom_fields",): CustomFieldsDoc, ("consent",): ConsentDoc, ("tags",): TagsDoc,
        ("tags", "stages"): StagesDoc, ("tags", "jobs"): JobsDoc,
        ("tags", "rejection_reasons"): ReasonsDoc, ("reverse",): ReverseDoc}
    if len(parent) == 2 and parent[0] == "fields":
        return ["from", "transforms", "null", "conflict", "field_type", "on_missing"]
    if len(parent) == 3 and parent[:2] == ("reverse", "fields"):
        return ["from", "to", "conflict"]
    if len(parent) == 3 and parent[:2] == ("events", "cross"):
        return ["tags"]
    model = models.get(tuple(parent))
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]
