"""The mapping's `reverse` section: Keap -> Greenhouse for a declared set of fields.

    reverse:
      fields:
        <name>:
          from: email_opt_out | "tag:<Keap tag>" | "custom:<Keap custom field label>"
          to:   "tag:<Greenhouse candidate tag>" | "custom:<candidate custom field name_key>"
          conflict: keap_wins | ats_wins | newest_wins        (default keap_wins)

Absent (or no fields): the reverse sync does nothing. `compile_reverse` checks the document alone
(one problem per mistake, naming the field and the fix); `check_reverse` checks it against the
latest backups (the custom fields and tags it names exist)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assets.sync.mapping.document import MappingDoc

CONFLICTS = ("keap_wins", "ats_wins", "newest_wins")
OPT_OUT = "email_opt_out"
# Keap email statuses that mean the person withdrew consent (or was opted out for them): an
# unsubscribe link, a list-unsubscribe header, a spam report or feedback loop, a user or admin
# opting them out, Keap's lockdown. Bounces and invalid addresses are deliverability, not consent.
OPT_OUT_STATUSES = ("LIST_UNSUBSCRIBE", "SPAM", "FEEDBACK", "MANUAL", "ADMIN", "SYSTEM",
                    "LOCKDOWN")
SOURCE_HELP = ("email_opt_out, tag:<Keap tag name> or custom:<Keap custom field label>")
TARGET_HELP = "tag:<Greenhouse candidate tag> or custom:<candidate custom field name_key>"


@dataclass(frozen=True)
class ReverseField:
    name: str
    source_kind: Literal["email_opt_out", "tag", "custom"]
    source: str          # the Keap tag name or custom field label ("" for email_opt_out)
    target_kind: Literal["tag", "custom"]
    target: str          # the Greenhouse tag name or candidate custom field name_key
    conflict: Literal["keap_wins", "ats_wins", "newest_wins"]

    @property
    def yes_no(self) -> bool:
        """Does the Keap source hold yes/no (opted out, tag held) rather than text?"""
        return self.source_kind != "custom"


def _split(text: str, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    if text.strip() == OPT_OUT and OPT_OUT in kinds:
        return OPT_OUT, ""
    kind, sep, name = text.partition(":")
    kind = kind.strip()
    if sep and kind in kinds and name.strip():
        return kind, name.strip()
    return None


def compile_reverse(doc: MappingDoc, forward_custom: set[str], forward_tags: set[str],
                    add: Callable[[tuple, str, str], None]) -> list[ReverseField]:
    """The declared fields; each mistake reported through `add(path, message, fix)`.
    `forward_custom`: Keap custom field labels the forward sync writes (lower case);
    `forward_tags`: Keap tags it manages by name (lower case)."""
    out: list[ReverseField] = []
    targets: dict[tuple[str, str], str] = {}
    for name, f in doc.reverse.fields.items():
        where = ("reverse", "fields", name)
        src = _split(f.source, (OPT_OUT, "tag", "custom"))
        dst = _split(f.target, ("tag", "custom"))
        ok = True
        if src is None:
            add((*where, "from"), f"reverse field {name!r}: unknown Keap source {f.source!r}",
                f"use {SOURCE_HELP}")
            ok = False
        if dst is None:
            add((*where, "to"), f"reverse field {name!r}: unknown Greenhouse target "
                f"{f.target!r}", f"use {TARGET_HELP}")
            ok = False
        if f.conflict not in CONFLICTS:
            add((*where, "conflict"), f"reverse field {name!r}: unknown conflict rule "
                f"{f.conflict!r}", f"use {', '.join(CONFLICTS)}")
            ok = False
        if not ok:
            continue
        field = ReverseField(name, src[0], src[1], dst[0], dst[1], f.conflict)
        if field.target_kind == "tag" and not field.yes_no:
            add((*where, "to"), f"reverse field {name!r}: a Greenhouse tag is on or off, but "
                f"{f.source!r} holds text", "map a custom field to a candidate custom field "
                "(to: custom:<name_key>), or read a yes/no source (email_opt_out, tag:<name>)")
            continue
        if field.source_kind == "custom" and field.source.lower() in forward_custom:
            add((*where, "from"), f"reverse field {name!r}: the forward sync writes Keap's "
                f"{field.source!r} (fields.custom:{field.source}), so its value would come "
                "back to Greenhouse and ping-pong", "read a Keap field the forward sync does "
                "not write, or remove it from `fields`")
            continue
        if field.source_kind == "tag" and field.source.lower() in forward_tags:
            add((*where, "from"), f"reverse field {name!r}: the forward sync manages the Keap "
                f"tag {field.source!r}, so it would come back to Greenhouse and ping-pong",
                "read a tag the mapping's `events`/`tags` sections do not name")
            continue
        key = (field.target_kind, field.target.lower())
        if key in targets:
            add((*where, "to"), f"reverse field {name!r}: {f.target!r} is already written by "
                f"reverse field {targets[key]!r}", "give each reverse field its own target")
            continue
        targets[key] = name
        out.append(field)
    return out


def check_reverse(fields: list[ReverseField], root: Path, day: str,
                  add: Callable[..., None]) -> None:
    """The reverse fields against the backups of `day`: a Keap custom field or a Greenhouse
    candidate custom field that does not exist is an error (listing those that do); a tag
    missing on either side a warning (Keap: nobody has it yet; Greenhouse: created on the
    first write)."""
    from assets.identity.config import NormalizationConfig
    from assets.identity.inputs import has_partition, load_state
    from assets.identity.normalize import connect

    if not fields:
        return
    con = connect(NormalizationConfig())
    try:
        def names(source: str, entity: str, col: str, where: str = "true",
                  extra: tuple[str, ...] = ()) -> set[str] | None:
            if not has_partition(root, source, entity, day):
                return None
            load_state(con, root, source, entity, day, [col, *extra], "_names")
            return {r[0] for r in con.execute(f"SELECT {col} FROM _names WHERE {where} "
                                              f"AND {col} IS NOT NULL").fetchall()}

        keap_fields = names("keap", "custom_fields", "label")
        keap_tags = names("keap", "tags", "name")
        gh_fields = names("greenhouse", "custom_fields", "name_key",
                          "field_type = 'candidate' AND coalesce(active, true)",
                          ("field_type", "active"))
        gh_tags = names("greenhouse", "candidate_tags", "name")
    finally:
        con.close()
    for f in fields:
        where = ("reverse", "fields", f.name)
        if f.source_kind == "custom" and keap_fields is not None and f.source.lower() not in {
                x.lower() for x in keap_fields}:
            add((*where, "from"), f"reverse field {f.name!r}: Keap has no custom field "
                f"{f.source!r} (backup of {day})",
                f"use one of: {', '.join(sorted(keap_fields)) or 'none defined'}")
        if f.source_kind == "tag" and keap_tags is not None and f.source not in keap_tags:
            add((*where, "from"), f"reverse field {f.name!r}: Keap has no tag {f.source!r} yet "
                f"(backup of {day})", "check the spelling (a tag nobody has yet is fine)",
                "warning")
        if f.target_kind == "custom" and gh_fields is not None and f.target not in gh_fields:
            add((*where, "to"), f"reverse field {f.name!r}: Greenhouse has no candidate custom "
                f"field with key {f.target!r} (backup of {day})",
                f"create it in Greenhouse, or use one of: "
                f"{', '.join(sorted(gh_fields)) or 'none defined'}")
        if f.target_kind == "tag" and gh_tags is not None and f.target not in gh_tags:
            add((*where, "to"), f"reverse field {f.name!r}: Greenhouse has no candidate tag "
                f"{f.target!r} yet", "it is created on the first write; check the spelling",
                "warning")
