"""Contract checks for tests: does a JSON instance fit a vendor's published schema?

Tiny on purpose: load a JSON Schema file, list what an instance breaks (with formats such as
`date-time` checked), and assert with a message that says where and why.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker


@cache
def load_schema(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def violations(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every way the instance breaks the schema, as `path: message` lines (empty if none)."""
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def assert_conforms(instance: Any, schema: dict[str, Any], what: str = "instance") -> None:
    problems = violations(instance, schema)
    assert not problems, f"{what} breaks its schema:\n  " + "\n  ".join(problems)


# -- OpenAPI 3.0 specs (HighLevel): schemas with cross-file $refs and `nullable`, by name or pointer

@cache
def _spec_document(path: Path) -> Any:
    import yaml

    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@cache
def _openapi_registry(spec: Path):  # -> referencing.Registry
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str) -> Resource:
        path = Path(uri.removeprefix("file://"))
        if not path.exists():
            # specs copied out of their repo keep refs like ../common/x.json: the file sits
            # next to the spec now (see the specs' PROVENANCE.md)
            path = spec.parent / path.name
        return Resource.from_contents(_spec_document(path), default_specification=DRAFT4)

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def openapi_violations(instance: Any, spec: Path, schema: str) -> list[str]:
    """Like `violations`, for an OpenAPI schema: a component name (`ContactsSearchSchema`) or a
    JSON pointer into the spec (`#/paths/~1contacts~1/get/responses/200/...`)."""
    from openapi_schema_validator import OAS30Validator

    spec = Path(spec).resolve()
    pointer = schema if schema.startswith("#/") else f"#/components/schemas/{schema}"
    validator = OAS30Validator({"$ref": spec.as_uri() + pointer},
                               registry=_openapi_registry(spec))
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def assert_openapi_conforms(instance: Any, spec: Path, schema: str,
                            what: str = "instance") -> None:
    problems = openapi_violations(instance, spec, schema)
    assert not problems, f"{what} breaks {schema}:\n  " + "\n  ".join(problems)


# -- OpenAPI 3.1 documents (Keap v2): component schemas are JSON Schema 2020-12 ----------------
@cache
def load_openapi(path: Path) -> dict[str, Any]:
    """An OpenAPI document, YAML or JSON, parsed once per test session."""
    import yaml

    text = Path(path).read_text()
    if Path(path).suffix in (".yml", ".yaml"):
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return json.loads(text)


def openapi_schema(path: Path, name: str, *, closed: bool = False) -> dict[str, Any]:
    """A schema for `components.schemas[name]` of an OpenAPI 3.1 document, its `$ref`s resolved
    inside the document. `closed=True` also refuses properties the schemas do not declare: an
    emulator must not invent fields the vendor does not send."""
    return {"$ref": f"#/components/schemas/{name}",
            "components": {"schemas": _component_schemas(Path(path), closed)}}


@cache
def _component_schemas(path: Path, closed: bool) -> dict[str, Any]:
    schemas = load_openapi(path)["components"]["schemas"]
    return _closed(schemas) if closed else schemas


def _closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
