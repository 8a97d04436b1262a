"""The names the desired-state steps share: the asset's keys, the Greenhouse state read, SQL
quoting helpers."""

from __future__ import annotations

import dagster as dg

from assets.sync.mapping import GREENHOUSE_READS
from assets.sync.mapping.reads import OPTIONAL_READS

NAME = "keap_desired"


SOURCE = "sync"


KEY = dg.AssetKey([SOURCE, NAME])


PROFILES_KEY = dg.AssetKey(["identity", "candidate_profiles"])


QUARANTINE_KEY = dg.AssetKey(["identity", "quarantine"])


# Greenhouse state read (entity -> columns)
STATE: dict[str, list[str]] = {e: list(c) for e, c in GREENHOUSE_READS.items()}


# read when present (older days were backed up before these entities were): names for tags
OPTIONAL_STATE: dict[str, list[str]] = {e: list(c) for e, c in OPTIONAL_READS.items()}


GREENHOUSE_KEYS = [dg.AssetKey(["greenhouse", e]) for e in (*STATE, *OPTIONAL_STATE)]


BLANK = r"^[\s\p{Z}]+|[\s\p{Z}]+$"


TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"


def quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def sql_in(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")" if values else "(NULL)"
