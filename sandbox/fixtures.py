"""Loading a hand-made world: JSONL fixtures in the vendors' own JSON shapes.

    DIR/greenhouse/<entity>.jsonl   one Harvest v3 record per line (e.g. candidates.jsonl)
    DIR/keap/<entity>.jsonl         Keap v2 records (contacts, tags, tag_categories, custom_fields)
    DIR/highlevel/<entity>.jsonl    HighLevel records (contacts, opportunities, pipelines, ...)
    DIR/world.json                  optional: {"now": "2026-01-05T00:00:00Z", "seed": 7}

Everything is checked before anything changes: a bad line gives a `FixtureError` listing every
problem as `path:line: what is wrong and how to fix it`, and the world stays as it was. A good set
replaces the whole world in one transaction, so concurrent readers see the old world or the new
one, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox import records
from sandbox.records import _B62, _MULT
from sandbox.store import DEFAULT_START, Store, iso, parse_ts
from sandbox.world.clock import midnight
from sandbox.world.generate import set_highlevel_counters

SOURCES = ("greenhouse", "keap", "highlevel")
MAX_LISTED = 200               # problems listed in one error (the count covers all)
IGNORED_SUFFIXES = (".md", ".txt")
WORLD_KEYS = {"now", "seed"}
# fields that must hold an ISO-8601 time, besides each entity's update field
REQUIRED_TIMES = {"greenhouse": ("created_at",), "keap": (), "highlevel": ()}


class FixtureError(Exception):
    """The fixtures are not loadable; `problems` lists every one (nothing was changed)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:MAX_LISTED])
        more = (f"\n  ... and {len(problems) - MAX_LISTED} more"
                if len(problems) > MAX_LISTED else "")
        super().__init__(f"{len(problems)} problem(s) in the fixtures, nothing was loaded:\n"
                         f"{shown}{more}")


@dataclass
class _Plan:
    """What a valid fixture folder holds."""

    files: list[tuple[str, str, Path]] = field(default_factory=list)
    now: datetime | None = None
    seed: int | None = None
    latest: str | None = None          # the latest update time in any record


def load(folder: Path | str, fixture_dir: Path | str) -> dict[str, Any]:
    """Replace the world in `folder` with the fixtures in `fixture_dir`; returns counts."""
    fixture_dir = Path(fixture_dir)
    plan = validate(fixture_dir)
    store = Store(folder)
    try:
        with store.transaction():
            store.wipe()
            counts = _insert(store, plan)
            now = plan.now or _ceil_midnight(plan.latest)
            store.set_now(now)
            store.set_meta("seed", plan.seed if plan.seed is not None else 0)
            store.set_meta("world", {"kind": "fixtures", "source": str(fixture_dir.resolve()),
                                     "candidates": None})
        return {"now": iso(now), "fixtures": str(fixture_dir), "counts": counts}
    finally:
        store.close()


def validate(fixture_dir: Path) -> _Plan:
    """Check the whole folder; raise FixtureError with every problem found."""
    problems: list[str] = []
    plan = _Plan()
    if not fixture_dir.is_dir():
        raise FixtureError([f"{fixture_dir}: no such folder (expected a folder holding "
                            "greenhouse/, keap/ and/or highlevel/ with <entity>.jsonl files)"])
    _scan(fixture_dir, plan, problems)
    for source, entity, path in plan.files:
        for problem in _check_file(source, entity, path, plan):
            problems.append(problem)
    if plan.now is not None and plan.latest is not None and plan.latest > iso(plan.now):
        problems.append(f"{fixture_dir / 'world.json'}: \"now\" {iso(plan.now)} is before the "
                        f"latest update time in the records ({plan.latest}); set it later or "
                        "leave it out (the clock then starts at the next midnight)")
    if problems:
        raise FixtureError(problems)
    return plan


def _scan(fixture_dir: Path, plan: _Plan, problems: list[str]) -> None:
    for child in sorted(fixture_dir.iterdir()):
        if child.name.startswith(".") or child.suffix.lower() in IGNORED_SUFFIXES:
            continue
        if child.is_dir() and child.name in SOURCES:
            _scan_source(child, plan, problems)
        elif child.is_dir():
            problems.append(f"{child}: unknown folder; fixtures live in "
                            f"{', '.join(s + '/' for s in SOURCES)}")
        elif child.name == "world.json":
            _world_json(child, plan, problems)
        else:
            problems.append(f"{child}: unexpected file; put records in <source>/<entity>.jsonl "
                            "and world settings in world.json")
    if not plan.files and not problems:
        problems.append(f"{fixture_dir}: no fixture files found (expected e.g. "
                        "greenhouse/candidates.jsonl)")


def _scan_source(source_dir: Path, plan: _Plan, problems: list[str]) -> None:
    source = source_dir.name
    known = sorted(e for s, e in records.RULES if s == source)
    for path in sorted(source_dir.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() in IGNORED_SUFFIXES:
            continue
        if path.suffix == ".jsonl" and path.stem in known:
            plan.files.append((source, path.stem, path))
        elif path.suffix == ".jsonl":
            problems.append(f"{path}: unknown {source} entity {path.stem!r}; "
                            f"known: {', '.join(known)}")
        else:
            problems.append(f"{path}: not a .jsonl file; name it <entity>.jsonl with one JSON "
                            "object per line")


def _world_json(path: Path, plan: _Plan, problems: list[str]) -> None:
    try:
        world = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(f"{path}: not valid JSON ({e}); expected e.g. "
                        '{"now": "2026-01-05T00:00:00Z"}')
        return
    if not isinstance(world, dict):
        problems.append(f"{path}: expected a JSON object like "
                        '{"now": "2026-01-05T00:00:00Z"}')
        return
    for key in sorted(set(world) - WORLD_KEYS):
        problems.append(f"{path}: unknown key {key!r}; allowed: {', '.join(sorted(WORLD_KEYS))}")
    if "now" in world:
        try:
            plan.now = parse_ts(str(world["now"]))
        except ValueError:
            problems.append(f"{path}: \"now\" is not an ISO-8601 time: {world['now']!r} "
                            "(e.g. \"2026-01-05T00:00:00Z\")")
    if "seed" in world:
        if isinstance(world["seed"], int) and not isinstance(world["seed"], bool):
            plan.seed = world["seed"]
        else:
            problems.append(f"{path}: \"seed\" must be an integer, got {world['seed']!r}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="strict") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, line


def _check_file(source: str, entity: str, path: Path, plan: _Plan) -> Iterator[str]:
    rule = records.rule(source, entity)
    seen: dict[Any, int] = {}
    try:
        for n, line in _lines(path):
            doc, problem = _parse_line(line)
            if problem:
                yield f"{path}:{n}: {problem}"
                continue
            yield from (f"{path}:{n}: {p}" for p in _check_doc(source, rule, doc, plan))
            key = doc.get("id")
            if key is not None and not isinstance(key, (dict, list)):
                if key in seen:
                    yield f"{path}:{n}: duplicate id {key!r} (first on line {seen[key]}); ids " \
                          "must be unique within an entity"
                seen.setdefault(key, n)
    except UnicodeDecodeError as e:
        yield f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8"


def _parse_line(line: str) -> tuple[dict[str, Any], str | None]:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as e:
        return {}, (f"not valid JSON ({e.msg}, column {e.colno}); each line must be one "
                    "complete JSON object")
    if not isinstance(doc, dict):
        return {}, f"expected a JSON object ({{...}}), got {type(doc).__name__}"
    return doc, None


def _check_doc(source: str, rule: records.Rule, doc: dict[str, Any], plan: _Plan) -> list[str]:
    problems = []
    if "id" not in doc:
        return ['missing "id": every record needs the vendor\'s id']
    problems += _check_id(source, doc["id"])
    if rule.parent and source == "greenhouse" and doc.get(rule.parent) is not None:
        value = doc[rule.parent]
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f'"{rule.parent}" must be an integer id (e.g. 123), got {value!r}')
    times = ((rule.updated,) if rule.updated else ()) + REQUIRED_TIMES[source]
    for name in times:
        value = doc.get(name)
        if value is None:
            problems.append(f'missing "{name}": an ISO-8601 time like "2026-01-04T15:30:00Z"')
            continue
        try:
            stamp = iso(parse_ts(str(value)))
        except ValueError:
            problems.append(f'"{name}" is not an ISO-8601 time: {value!r} '
                            '(e.g. "2026-01-04T15:30:00Z")')
            continue
        if not isinstance(value, str):
            problems.append(f'"{name}" must be a string, got {value!r}')
        elif plan.latest is None or stamp > plan.latest:
            plan.latest = stamp
    return problems


def _check_id(source: str, value: Any) -> list[str]:
    if source == "greenhouse" and (not isinstance(value, int) or isinstance(value, bool)
                                   or value <= 0):
        return [f'"id" must be a positive integer in Greenhouse (e.g. "id": 123), got {value!r}']
    if source == "keap" and not (isinstance(value, str) and value.isdigit()):
        return [f'"id" must be a string of digits in Keap v2 (e.g. "id": "123"), got {value!r}']
    if source == "highlevel" and not (isinstance(value, str) and value.strip()):
        return [f'"id" must be a non-empty string in HighLevel (e.g. "id": '
                f'"ve9EPM428h8vShlRW1KT"), got {value!r}']
    return []


# -- loading ------------------------------------------------------------------------------------
def _insert(store: Store, plan: _Plan) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    highest_hl = 0
    for source, entity, path in plan.files:
        docs = (json.loads(line) for _, line in _lines(path))
        counts.setdefault(source, {})[entity] = records.save_many(store, source, entity, docs)
        if source == "highlevel":
            highest_hl = max(highest_hl, _highest_highlevel(store, entity))
        else:
            _continue_counter(store, source, entity)
    set_highlevel_counters(store, highest_hl)
    for entity in {e for s, e, _ in plan.files if s == "highlevel"}:
        # the rows loaded took seq 1..n: new rows must sort after them
        used = store.conn.execute("SELECT max(seq) FROM records WHERE source = 'highlevel' "
                                  "AND entity = ?", (entity,)).fetchone()[0] or 0
        key = f"next_id:highlevel:{entity}:seq"
        store.set_meta(key, str(max(int(store.get_meta(key, "1")), used + 1)))
    return counts


def _continue_counter(store: Store, source: str, entity: str) -> None:
    """Ids created through the API after loading continue above the highest loaded id."""
    top = store.conn.execute("SELECT max(seq) FROM records WHERE source = ? AND entity = ?",
                             (source, entity)).fetchone()[0]
    store.set_meta(f"next_id:{source}:{entity}", str((top or 0) + 1))


def _highest_highlevel(store: Store, entity: str) -> int:
    """The highest sequence number behind loaded ids made by `records.highlevel_id` (ids from
    elsewhere look random and cannot collide with new ones)."""
    top = 0
    for (id_,) in store.conn.execute(
            "SELECT id FROM records WHERE source = 'highlevel' AND entity = ?", (entity,)):
        n = highlevel_number(id_)
        if n is not None:
            top = max(top, n)
    return top


_INVERSE = pow(_MULT, -1, 62 ** 20)


def highlevel_number(id_: str, salt: int = 0x5EED) -> int | None:
    """n such that `records.highlevel_id(n) == id_`, if n is plausibly a counter value."""
    if len(id_) != 20 or any(c not in _B62 for c in id_):
        return None
    x = 0
    for c in reversed(id_):
        x = x * 62 + _B62.index(c)
    n = ((x - salt) * _INVERSE) % (62 ** 20)
    return n if n < 2 ** 48 and records.highlevel_id(n, salt) == id_ else None


def _ceil_midnight(latest: str | None) -> datetime:
    if latest is None:
        return DEFAULT_START
    t = parse_ts(latest)
    day = midnight(t)
    return day if day == t else day + timedelta(days=1)
