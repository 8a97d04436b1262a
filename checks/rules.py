"""What a snapshot partition's rows must satisfy, as data: one `EntityRules` per entity.

The rules themselves live per source (`checks/<source>/rules.py`); `checks/snapshots.py` turns
them into Great Expectations suites over the partition just written.
"""

from __future__ import annotations

from dataclasses import dataclass

# The checks every snapshot partition gets (names say what must hold).
PRIMARY_KEY_UNIQUE = "primary_key_unique"
REQUIRED_FIELDS_PRESENT = "required_fields_present"
TIMESTAMPS_PARSEABLE = "timestamps_parseable"
TIMESTAMPS_NOT_IN_FUTURE = "timestamps_not_in_future"
ENUMERATIONS_KNOWN = "enumerations_known"
REFERENCES_RESOLVE = "references_resolve"
ROW_COUNT_MATCHES_MANIFEST = "row_count_matches_manifest"
INCREMENTALS_CONTIGUOUS = "incrementals_contiguous"


@dataclass(frozen=True)
class Enum:
    """Values a field may take (the vendor's published enumeration)."""

    name: str                      # the column, or what the SQL below yields
    values: tuple[str, ...]
    sql: str | None = None         # SQL over a partition row; default: the column `name`
    many: bool = False             # the SQL yields a list of values per row


@dataclass(frozen=True)
class Ref:
    """A reference to another entity of the same source, resolved against its backed-up state."""

    column: str                    # the referencing column of this entity
    target: str                    # the referenced entity
    target_ids: str = "id"         # SQL over the target's state yielding the referenced ids
    many: bool = False             # `column` holds a list of ids

    @property
    def label(self) -> str:
        suffix = "" if self.target_ids == "id" else f" ({self.target_ids})"
        return f"{self.column} -> {self.target}{suffix}"


@dataclass(frozen=True)
class EntityRules:
    required: tuple[str, ...] = ()        # columns every upsert row must carry
    enums: tuple[Enum, ...] = ()
    refs: tuple[Ref, ...] = ()
    dates: tuple[str, ...] = ()           # text columns holding calendar dates (YYYY-MM-DD)
    appointments: tuple[str, ...] = ()    # timestamps that may lie ahead (scheduled events)
    guards_push: bool = False             # the Keap push reads it: structural checks block
    informative: frozenset[str] = frozenset()   # checks that only warn, even when guarding
