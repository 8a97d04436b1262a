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

from assets.sync.mapping.check import check_mapping
from assets.sync.mapping.load import load_mapping, parse_mapping
from assets.sync.mapping.model import Mapping
from assets.sync.mapping.problems import MappingError, MappingSyntaxError, Problem
from assets.sync.mapping.reads import GREENHOUSE_READS, mapped_values, sync_fields
from assets.sync.mapping.vocabulary import ATS_FIELDS, DEFAULT_PATH, FALLBACK_KEY

__all__ = ["ATS_FIELDS", "DEFAULT_PATH", "FALLBACK_KEY", "GREENHOUSE_READS", "Mapping",
           "MappingError", "MappingSyntaxError", "Problem", "check_mapping", "load_mapping",
           "mapped_values", "parse_mapping", "sync_fields"]
