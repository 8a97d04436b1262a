"""The mapping's `reverse` section (Keap -> ATS): what a well-formed section compiles to, and each
mistake told on one line naming the field, its line and the fix; without the section nothing is
declared and the forward sync's fingerprint does not move."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.sync.mapping import DEFAULT_PATH, MappingError, load_mapping, parse_mapping

BASE = Path(DEFAULT_PATH).read_text()
FIRST = len(BASE.splitlines()) + 4     # the line of the first reverse field's name


def at(offset: int) -> str:
    return f"m.yaml:{FIRST + offset}"


def compile_with(section: str):
    return parse_mapping(BASE + "\nreverse:\n  fields:\n" + section, "m.yaml")


def problems(section: str) -> list[str]:
    with pytest.raises(MappingError) as e:
        compile_with(section)
    return [str(p) for p in e.value.problems]


def test_a_declared_section_compiles() -> None:
    m = compile_with('    opted_out:\n      from: email_opt_out\n      to: "tag:Email Opt-Out"\n'
                     '    pref:\n      from: "custom:Newsletter Frequency"\n'
                     '      to: "custom:newsletter"\n      conflict: newest_wins\n')
    assert [(f.name, f.source_kind, f.source, f.target_kind, f.target, f.conflict)
            for f in m.reverse] == [
        ("opted_out", "email_opt_out", "", "tag", "Email Opt-Out", "keap_wins"),
        ("pref", "custom", "Newsletter Frequency", "custom", "newsletter", "newest_wins")]
    # the forward sync's fingerprint is the shipped mapping's: the section does not move it
    assert m.fingerprint == load_mapping().fingerprint


def test_the_shipped_mapping_declares_nothing() -> None:
    assert load_mapping().reverse == []


@pytest.mark.parametrize("section, wanted", [
    ('    x:\n      from: phone\n      to: "tag:A"\n',
     at(1) + ": reverse field 'x': unknown Keap source 'phone' — use email_opt_out, "
     "tag:<Keap tag name> or custom:<Keap custom field label>"),
    ('    x:\n      from: email_opt_out\n      to: "can_email"\n',
     at(2) + ": reverse field 'x': unknown Greenhouse target 'can_email' — use "
     "tag:<Greenhouse candidate tag> or custom:<candidate custom field name_key>"),
    ('    x:\n      from: email_opt_out\n      to: "tag:A"\n      conflict: loudest\n',
     at(3) + ": reverse field 'x': unknown conflict rule 'loudest' — use keap_wins, "
     "ats_wins, newest_wins"),
    ('    x:\n      from: "custom:Notes"\n      to: "tag:A"\n',
     at(2) + ": reverse field 'x': a Greenhouse tag is on or off, but 'custom:Notes' holds "
     "text — map a custom field to a candidate custom field (to: custom:<name_key>), or read "
     "a yes/no source (email_opt_out, tag:<name>)"),
    ('    x:\n      from: "custom:Last Stage"\n      to: "custom:stage"\n',
     at(1) + ": reverse field 'x': the forward sync writes Keap's 'Last Stage' "
     "(fields.custom:Last Stage), so its value would come back to Greenhouse and ping-pong — "
     "read a Keap field the forward sync does not write, or remove it from `fields`"),
    ('    x:\n      from: "tag:Hired"\n      to: "tag:Hired in Keap"\n',
     at(1) + ": reverse field 'x': the forward sync manages the Keap tag 'Hired', so it "
     "would come back to Greenhouse and ping-pong — read a tag the mapping's `events`/`tags` "
     "sections do not name"),
    ('    x:\n      from: email_opt_out\n      to: "tag:A"\n'
     '    y:\n      from: "tag:DNC"\n      to: "tag:a"\n',
     at(5) + ": reverse field 'y': 'tag:a' is already written by reverse field 'x' — give "
     "each reverse field its own target"),
    ('    x:\n      from: email_opt_out\n',
     at(0) + ": reverse.fields.x.to is required — add `to: <Greenhouse target>` "
     "(tag:<candidate tag> or custom:<candidate custom field key>)"),
    ('    x:\n      from: email_opt_out\n      to: "tag:A"\n      when: always\n',
     at(3) + ": unknown key 'when' in reverse.fields.x — remove it or use one of: from, to, "
     "conflict"),
])
def test_each_mistake_is_one_line_with_its_fix(section: str, wanted: str) -> None:
    assert problems(section) == [wanted]
