"""Identity: normalization (against the libraries themselves), clustering, survivorship,
quarantine, duplicates and the field audit, on real Parquet snapshots written by the backups'
own writer and read through DuckDB. No Dagster run and no GX here (see tests/e2e)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from assets.catalog.views import open_catalog
from assets.greenhouse import schemas as gh
from assets.identity.build import build_identity
from assets.identity.config import (
    DuplicatesConfig,
    FieldProfileConfig,
    IdentityConfig,
    NormalizationConfig,
)
from assets.identity.duplicates import possible_duplicates
from assets.identity.emails import normalize_emails, reference_email
from assets.identity.field_profile import field_profile, profile_entities
from assets.identity.normalize import connect
from assets.identity.phones import normalize_phones, reference_phone
from assets.keap import schemas as kp
from orchestration.storage.derived import partition_dir, partition_glob, write_partition
from orchestration.storage.seals import sha256_file
from orchestration.storage.snapshots import SnapshotStorage
from sandbox.world import people as wp

DAY = "2026-01-04"


# -- helpers: vendor-shaped records landed as real snapshot partitions ---------------------------
def candidate(id_: int, first: str | None, last: str | None, emails=(), phones=(), *,
              updated: str = "2026-01-02T10:00:00Z", **extra) -> dict:
    doc = {"id": id_, "created_at": "2025-11-01T09:00:00Z", "updated_at": updated,
           "first_name": first, "last_name": last, "preferred_name": None, "company": None,
           "title": None, "last_activity_at": updated, "private": False, "can_email": True,
           "tags": [], "phone_numbers": [{"value": p, "type": "mobile"} for p in phones],
           "email_addresses": [{"value": e, "type": "personal"} for e in emails],
           "custom_fields": {}}
    doc.update(extra)
    return doc


def application(id_: int, candidate_id: int | None, status: str = "in_process",
                stage: str | None = "Phone Screen", activity: str = "2025-12-01T10:00:00Z"):
    return {"id": id_, "created_at": "2025-11-01T09:00:00Z", "updated_at": activity,
            "candidate_id": candidate_id, "job_id": 100001, "stage_id": 7 if stage else None,
            "stage_name": stage, "status": status, "prospect": False, "rejected_at": None,
            "last_activity_at": activity}


def contact(id_: str, emails=(), phones=()) -> dict:
    return {"id": id_, "given_name": "Given", "family_name": "Family",
            "email_addresses": [{"email": e, "field": f"EMAIL{i + 1}"}
                                for i, e in enumerate(emails)],
            "phone_numbers": [{"number": p, "field": "PHONE1"} for p in phones],
            "create_time": "2025-10-01T00:00:00Z", "update_time": "2025-12-01T00:00:00Z"}


def land(root: Path, schema, day: str, docs: list[dict], deletes=()) -> None:
    end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
    w = SnapshotStorage(root=str(root)).writer(schema, day, mode="full", run_id="test",
                                               window=(None, end))
    w.add(docs)
    w.add_deletes(deletes, deleted_at=end - timedelta(milliseconds=1))
    w.commit()


def world(root: Path, cands: list[dict], apps: list[dict] = (), contacts=(), day=DAY):
    land(root, gh.candidates, day, cands)
    land(root, gh.applications, day, list(apps))
    land(root, kp.contacts, day, list(contacts))


def build(root: Path, cfg: IdentityConfig | None = None, day: str = DAY):
    b = build_identity(root, day, cfg or IdentityConfig(), run_id="test")
    b.close()
    con = duckdb.connect()
    return (con.sql(f"FROM read_parquet('{partition_glob(root, 'candidate_profiles', day)}')"),
            con.sql(f"FROM read_parquet('{partition_glob(root, 'quarantine', day)}')"), b)


def rows(rel: duckdb.DuckDBPyRelation, cols: str, order: str) -> list[tuple]:
    return rel.query("t", f"SELECT {cols} FROM t ORDER BY {order}").fetchall()


# -- normalization: the SQL fast paths give exactly what the libraries give ----------------------
EMAIL_EDGES = [
    "bücher@bücher.example", " X@Y.example ", "a..b@x.com", "a b@x.com", '"q"@x.com', "a@x",
    "a@", "@x.com", "a@x..com", "ｊｏｈｎ@example.com", "a@-x.com", "a@x.123", "a@localhost",
    "a@x.test", "x" * 70 + "@y.com", "a@" + "b" * 64 + ".com", "a@b@c.com", "é@x.com",
    "a.@x.com", ".a@x.com", "A@XN--BCHER-KVA.EXAMPLE", "a@xn--zz.com", "Bob <bob@x.com>",
    "ann+jobs@gmail.com", "\u00a0ann@x.com\u2003",
]


def _normalized(values: list[str], kind: str, cfg: NormalizationConfig) -> dict[str, str | None]:
    con = connect(cfg)
    try:
        con.register("v", pa.table({"raw": values}))
        fn = normalize_emails if kind == "email" else normalize_phones
        fn(con, "SELECT raw FROM v", "out", cfg)
        col = "email" if kind == "email" else "e164"
        return dict(con.execute(f"SELECT raw, {col} FROM out").fetchall())
    finally:
        con.close()


def test_emails_normalize_as_email_validator_does_on_whole_addresses():
    rng = random.Random(3)
    values = list(EMAIL_EDGES)
    for i in range(1500):
        p = wp.make_person(rng, i)
        values += [v for v in (p.email, p.work_email) if v]
        values.append(wp.email_variant(rng, p.email or "a@b.example"))
    got = _normalized(values, "email", NormalizationConfig())
    expected = {v: reference_email(v) for v in set(values)}
    assert got == expected
    assert got[" X@Y.example "] == "x@y.example"
    assert got["bücher@bücher.example"] == "bücher@xn--bcher-kva.example"   # IDNA domain
    assert got["ｊｏｈｎ@example.com"] == "john@example.com"                 # NFKC
    assert got["a..b@x.com"] is None and got["a@x.test"] is None


def test_gmail_rules_are_off_by_default_and_switchable():
    values = ["Jane.Doe+jobs@gmail.com", "janedoe@googlemail.com", "j.doe+x@other.com"]
    assert _normalized(values, "email", NormalizationConfig()) == {
        "Jane.Doe+jobs@gmail.com": "jane.doe+jobs@gmail.com",
        "janedoe@googlemail.com": "janedoe@googlemail.com",
        "j.doe+x@other.com": "j.doe+x@other.com"}
    on = NormalizationConfig(gmail_remove_dots=True, remove_plus_tags=True)
    assert _normalized(values, "email", on) == {
        "Jane.Doe+jobs@gmail.com": "janedoe@gmail.com",
        "janedoe@googlemail.com": "janedoe@gmail.com",
        "j.doe+x@other.com": "j.doe+x@other.com"}
    everywhere = NormalizationConfig(remove_plus_tags=True, plus_tags_gmail_only=False)
    got = _normalized(values, "email", everywhere)
    assert got["j.doe+x@other.com"] == "j.doe@other.com"
    assert all(got[v] == reference_email(v, everywhere) for v in values)


def _phone_corpus(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    values = [wp.make_phone(rng)[0] for _ in range(n)]
    ccs = ["1", "44", "33", "49", "61", "39", "91", "52", "7", "86", "55", "353", "800"]
    for _ in range(n):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 14)))
        values.append(rng.choice([
            "+" + rng.choice(ccs) + " " + digits, digits, "0" + digits, "1-" + digits,
            "011 " + digits, "00" + digits,
            f"({digits[:3]}) {digits[3:6]}-{digits[6:]}{rng.choice(['', ' x12', ' ext. 5'])}"]))
    return values + ["０４１５５５５０１３４", "+44 (0)20 7946 0958", "1-415-555-HIRE", "n/a",
                     "000", "555-0134", "(415) 555-0134 x123"]


@pytest.mark.parametrize("region", ["US", "GB", "DE"])
def test_phones_normalize_as_phonenumbers_does(region):
    cfg = NormalizationConfig(default_phone_region=region)
    values = _phone_corpus(hash(region) % 1000, 600)
    got = _normalized(values, "phone", cfg)
    assert got == {v: reference_phone(v, cfg) for v in set(values)}
    if region == "US":
        assert got["(415) 555-0134 x123"] == "+14155550134"     # E.164 has no extension
        assert got["555-0134"] is None          # local-only (no area code): refused
        assert got["1-415-555-HIRE"] == "+14155554473"


def test_phone_validation_can_require_assigned_ranges():
    values = ["+1 (123) 555-0100", "(415) 555-0134"]
    assert _normalized(values, "phone", NormalizationConfig()) == {
        "+1 (123) 555-0100": "+11235550100", "(415) 555-0134": "+14155550134"}
    strict = NormalizationConfig(phone_validation="valid")
    assert _normalized(values, "phone", strict) == {
        "+1 (123) 555-0100": None, "(415) 555-0134": "+14155550134"}


def test_an_unknown_default_phone_region_is_refused_clearly():
    with pytest.raises(ValueError, match="default_phone_region 'XX'"):
        connect(NormalizationConfig(default_phone_region="XX"))


# -- profiles, survivorship, quarantine ---------------------------------------------------------
def test_records_sharing_any_email_become_one_profile_and_names_are_normalized(tmp_path):
    world(tmp_path, [
        candidate(1, "ANA", "LOPEZ", ["ana@x.example", "ana.work@y.example"]),
        candidate(2, " Ana ", "López", [" Ana@X.example "]),
        candidate(3, "Ａｎａ", "Lo\u0301pez-Ruiz", ["ANA.WORK@y.example"]),   # NFKC, NFD
        candidate(4, "Ana", "Lopez", ["other.ana@x.example"]),      # same name, other person
    ])
    profiles, quarantine, b = build(tmp_path)
    got = rows(profiles, "profile_id, candidate_ids, emails", "profile_id")
    assert got == [(1, [1, 2, 3], ["ana.work@y.example", "ana@x.example"]),
                   (4, [4], ["other.ana@x.example"])]
    assert quarantine.aggregate("count(*)").fetchall() == [(0,)]
    con = connect(IdentityConfig())
    con.register("n", pa.table({"raw": ["ANA", " Ana ", "Ｊｏｓｅ\u0301", "Nu\u0301n\u0303ez",
                                        "O'BRIEN", "van der Berg"]}))
    from assets.identity.names import normalize_names
    normalize_names(con, "SELECT raw FROM n", "nn")
    assert dict(con.execute("SELECT raw, display FROM nn").fetchall()) == {
        "ANA": "Ana", " Ana ": "Ana", "Ｊｏｓｅ\u0301": "José", "Nu\u0301n\u0303ez": "Núñez",
        "O'BRIEN": "O'Brien", "van der Berg": "van der Berg"}
    assert con.execute("SELECT key FROM nn WHERE raw = 'Nu\u0301n\u0303ez'").fetchall() == [
        ("nunez",)]


def test_survivorship_latest_non_empty_all_applications_and_current_stage(tmp_path):
    world(tmp_path, [
        candidate(1, "Ana", "Lopez", ["ana@x.example"], ["(415) 555-0101"], company="Acme",
                  title="Engineer", tags=["Python"], updated="2026-01-01T10:00:00Z"),
        candidate(2, "Anna", "Lopez", ["ANA@x.example"], ["n/a"], company="Globex", title=None,
                  tags=["Referral"], can_email=False, updated="2026-01-03T10:00:00Z"),
    ], [
        application(11, 1, "rejected", None, "2025-12-01T10:00:00Z"),
        application(12, 1, "in_process", "Phone Screen", "2026-01-02T10:00:00Z"),
        application(13, 2, "in_process", "Onsite", "2026-01-03T15:00:00Z"),
    ])
    profiles, _, _ = build(tmp_path)
    assert rows(profiles, "first_name, company, title, phone, tags, can_email, application_ids,"
                " current_application_id, current_stage_name, phones_dropped", "1") == [
        ("Anna", "Globex", "Engineer", "+14155550101", ["Python", "Referral"], False,
         [11, 12, 13], 13, "Onsite", 1)]
    cfg = IdentityConfig(survivorship={"first_name": "earliest", "can_email": "any"})
    profiles, _, _ = build(tmp_path, cfg)
    assert rows(profiles, "first_name, can_email", "1") == [("Ana", True)]
    with pytest.raises(ValueError, match="allowed: union, latest"):
        build(tmp_path, IdentityConfig(survivorship={"tags": "earliest"}))


def test_every_record_that_cannot_be_synced_is_quarantined_with_its_reason(tmp_path):
    world(tmp_path, [
        candidate(1, "Ok", "Person", ["ok@x.example"]),
        candidate(2, "No", "Email", []),
        candidate(3, "Bad", "Email", ["bad@@x.example", "   "]),
        candidate(4, "Eve", "Park", ["family@x.example"]),
        candidate(5, "Frank", "Moss", ["FAMILY@x.example"]),
        candidate(6, "Gina", "Roy", email_addresses="gina@x.example"),   # not a list
        candidate(7, "Half", "Valid", ["nope", "half@x.example"]),        # one valid is enough
    ], [application(11, 1), application(12, 2), application(13, 99), application(14, None)])
    profiles, quarantine, b = build(tmp_path)
    assert rows(quarantine, "entity, record_id, reason, related_ids", "1, 2") == [
        ("applications", 12, "candidate_quarantined", []),
        ("applications", 13, "orphan_application", []),
        ("applications", 14, "unparseable_field", []),
        ("candidates", 2, "no_email", []),
        ("candidates", 3, "invalid_email", []),
        ("candidates", 4, "conflicting_identity", [5]),
        ("candidates", 5, "conflicting_identity", [4]),
        ("candidates", 6, "unparseable_field", []),
    ]
    assert rows(profiles, "profile_id, emails", "1") == [(1, ["ok@x.example"]),
                                                         (7, ["half@x.example"])]
    # the reconciliation: nothing disappears
    assert b.counts["candidates"] == 2 + 5 and b.counts["applications"] == 1 + 3


def test_conflict_policy_separate_keeps_both_and_merge_joins_them(tmp_path):
    world(tmp_path, [candidate(4, "Eve", "Park", ["family@x.example"]),
                     candidate(5, "Frank", "Moss", ["FAMILY@x.example"])])
    profiles, quarantine, _ = build(tmp_path, IdentityConfig(on_conflict="separate"))
    assert rows(profiles, "profile_id, emails", "1") == [(4, ["family@x.example"]),
                                                         (5, ["family@x.example"])]
    profiles, _, _ = build(tmp_path, IdentityConfig(on_conflict="merge"))
    assert rows(profiles, "profile_id, candidate_ids", "1") == [(4, [4, 5])]
    profiles, quarantine, _ = build(tmp_path, IdentityConfig(max_cluster_size=1,
                                                             on_conflict="quarantine"))
    assert profiles.aggregate("count(*)").fetchall() == [(0,)]
    assert {r[0] for r in rows(quarantine, "reason", "1")} == {"conflicting_identity"}


def test_greenhouse_merges_are_honoured_and_a_day_is_read_as_of_its_end(tmp_path):
    day1, day2 = "2026-01-04", "2026-01-05"
    land(tmp_path, gh.candidates, day1, [candidate(1, "Hugo", "Bell", ["hugo@x.example"]),
                                         candidate(2, "Hugo", "Bell", ["hugo@x.example"])])
    land(tmp_path, gh.applications, day1, [application(11, 2)])
    land(tmp_path, kp.contacts, day1, [])
    first, _, b1 = build(tmp_path, day=day1)
    assert rows(first, "candidate_ids, merged_candidate_ids", "1") == [([1, 2], [])]
    # Greenhouse merges 2 into 1: the duplicate is deleted, its application moves
    land(tmp_path, gh.candidates, day2,
         [candidate(1, "Hugo", "Bell", ["hugo@x.example"], updated="2026-01-05T10:00:00Z")],
         deletes=[2])
    land(tmp_path, gh.applications, day2,
         [application(11, 1, activity="2026-01-05T10:00:00Z")])
    land(tmp_path, kp.contacts, day2, [])
    second, _, _ = build(tmp_path, day=day2)
    assert rows(second, "candidate_ids, merged_candidate_ids, application_ids", "1") == [
        ([1], [2], [11])]
    # re-running the first day after the second landed gives the same partition
    fingerprint = b1.manifests["candidate_profiles"]["content_fingerprint"]
    _, _, again = build(tmp_path, day=day1)
    assert again.manifests["candidate_profiles"]["content_fingerprint"] == fingerprint


def test_outputs_land_atomically_with_a_manifest(tmp_path):
    world(tmp_path, [candidate(1, "Ok", "Person", ["ok@x.example"])], [application(11, 1)],
          [contact("1001", ["ok@x.example"])])
    _, _, b = build(tmp_path)
    for name in ("candidate_profiles", "quarantine", "keap_contacts"):
        part = partition_dir(tmp_path, name, DAY)
        m = json.loads((part / "_manifest.json").read_text())
        assert m["rows"] == sum(f["rows"] for f in m["files"])
        assert all(sha256_file(part / f["file"]) == f["sha256"] for f in m["files"])
        assert m["inputs"]["greenhouse/candidates"]["rows"] == 1
        assert not list(part.parent.glob(".staging-*"))
    assert b.manifests["keap_contacts"]["rows"] == 1


def test_keap_contacts_are_keyed_by_normalized_email(tmp_path):
    world(tmp_path, [candidate(1, "Ok", "Person", ["ok@x.example"])], [], [
        contact("1001", ["ana@x.example"], ["+1 (415) 555-0101"]),
        contact("1002", [" ANA@x.example"]),
        contact("1003", ["mia@x.example", "Mia@X.example"]),
        contact("1004", [], ["415.555.0190"])])
    build(tmp_path)
    con = duckdb.connect()
    got = con.execute(f"""SELECT contact_id, email, emails, phone FROM read_parquet(
        '{partition_glob(tmp_path, "keap_contacts", DAY)}') ORDER BY 1""").fetchall()
    assert got == [("1001", "ana@x.example", ["ana@x.example"], "+14155550101"),
                   ("1002", "ana@x.example", ["ana@x.example"], None),
                   ("1003", "mia@x.example", ["mia@x.example"], None),
                   ("1004", None, [], "+14155550190")]


# -- possible duplicates ------------------------------------------------------------------------
def test_possible_duplicates_pair_same_phone_similar_names_and_never_merge(tmp_path):
    world(tmp_path, [
        candidate(1, "Ivy", "Chen", ["ivy@x.example"], ["+1 (212) 555-0199"]),
        candidate(2, "Ivy", "Chen", ["ivy.work@y.example"], ["212.555.0199"]),
        candidate(3, "Jon", "Smith", ["jon@x.example"], ["(303) 555-0142"]),
        candidate(4, "John", "Smith", ["john@x.example"], ["303-555-0142"]),
        candidate(5, "Wei", "Wang", ["wei@x.example"], ["+44 20 7946 0123"]),
        candidate(6, "Wang", "Wei", ["wang@x.example"], ["+44 (0)20 7946 0123"]),
        candidate(7, "Kim", "Lee", ["kim@x.example"], ["(617) 555-0123"]),
        candidate(8, "Zed", "Other", ["zed@x.example"], ["(617) 555-0123"]),   # shared, unlike
        *[candidate(20 + i, "Desk", f"Person{i}", [f"d{i}@x.example"], ["(800) 555-0100"])
          for i in range(4)],                                                 # a switchboard
    ])
    profiles, _, _ = build(tmp_path)
    assert profiles.aggregate("count(*)").fetchall() == [(12,)]            # nothing merged
    con = duckdb.connect()
    counts = possible_duplicates(con, f"SELECT * FROM read_parquet("
                                 f"'{partition_glob(tmp_path, 'candidate_profiles', DAY)}')",
                                 DuplicatesConfig(max_phone_group=3))
    got = con.execute("SELECT profile_id_a, profile_id_b, rule, score = 1 FROM "
                      "possible_duplicates ORDER BY 1").fetchall()
    assert got == [(1, 2, "same_name_same_phone", True),
                   (3, 4, "similar_name_same_phone", False),
                   (5, 6, "same_name_same_phone", True)]
    assert counts["phone_groups_too_large"] == 1 and counts["profiles_in_large_groups"] == 4


# -- field audit --------------------------------------------------------------------------------
def _audit(root: Path, day: str) -> list[dict]:
    cfg = FieldProfileConfig(min_rows=2)
    con = connect(IdentityConfig())
    try:
        entities = [("greenhouse", "candidates"), ("greenhouse", "applications")]
        profile_entities(con, root, day, entities)
        field_profile(con, root, day, cfg)
        write_partition(con, root, "field_profile", day, "SELECT * FROM field_profile",
                        "source, entity, field", run_id="t")
        cur = con.execute("SELECT * FROM field_profile")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def test_field_audit_masks_personal_values_flags_drift_and_unmapped_values(tmp_path):
    status = {"candidate_status": {"name": "Candidate Status", "value": "waiting on refs"}}
    day1, day2 = "2026-01-04", "2026-01-05"
    land(tmp_path, gh.candidates, day1, [
        candidate(i, f"Name{i}", "Smith", [f"person{i}@x.example"], ["(415) 555-0101"],
                  custom_fields=status) for i in range(1, 6)])
    land(tmp_path, gh.applications, day1, [application(11, 1, "in_process", "Phone Screen"),
                                          application(12, 2, "on_hold", "Culture Chat")])
    audit = {(r["entity"], r["field"]): r for r in _audit(tmp_path, day1)}
    emails = audit[("candidates", "emails")]
    assert emails["personal"] and emails["dominant_class"] == "email"
    assert [t["value"] for t in emails["top_values"]] == ["a9@a.a"]          # a shape, no data
    assert audit[("candidates", "first_name")]["top_values"][0]["value"] == "Aa9"
    assert audit[("candidates", "custom_fields.candidate_status")]["dominant_class"] == "text"
    assert [u["value"] for u in audit[("applications", "status")]["unmapped_values"]] == [
        "on_hold"]
    assert [u["value"] for u in audit[("applications", "stage_name")]["unmapped_values"]] == [
        "Culture Chat"]
    assert audit[("applications", "status")]["top_values"][0]["value"] in ("in_process",
                                                                         "on_hold")
    assert all(len(r["drift"]) == 0 for r in audit.values())                 # no baseline yet
    # day 2: the status field turns into timestamps, can_email stops coming
    changed = {"candidate_status": {"name": "Candidate Status", "value": "2026-01-05 10:00"}}
    land(tmp_path, gh.candidates, day2, [
        candidate(i, f"Name{i}", "Smith", [f"person{i}@x.example"], custom_fields=changed,
                  can_email=None, updated="2026-01-05T10:00:00Z") for i in range(1, 4)])
    land(tmp_path, gh.applications, day2, [])
    audit = {(r["entity"], r["field"]): r for r in _audit(tmp_path, day2)}
    drift = audit[("candidates", "custom_fields.candidate_status")]["drift"]
    assert drift == ["date-like values 0% -> 100%"]
    assert audit[("candidates", "can_email")]["sync_field"]
    assert audit[("candidates", "can_email")]["drift"][0].startswith("disappeared")
    assert audit[("candidates", "emails")]["drift"] == []
    assert audit[("candidates", "emails")]["baseline_date"] == date(2026, 1, 4)


def test_catalog_shows_the_latest_identity_partition(tmp_path):
    world(tmp_path, [candidate(1, "Ok", "Person", ["ok@x.example"])], day="2026-01-03")
    build(tmp_path, day="2026-01-03")
    world(tmp_path, [candidate(1, "Ok", "Person", ["ok@x.example"]),
                     candidate(2, "New", "Person", ["new@x.example"])], day=DAY)
    build(tmp_path, day=DAY)
    con = open_catalog(tmp_path)
    assert con.execute("SELECT count(*), min(snapshot_date)::VARCHAR FROM "
                       "identity.candidate_profiles").fetchall() == [(2, DAY)]
    assert con.execute("SELECT count(*) FROM identity.candidate_profiles_by_day"
                       ).fetchall() == [(3,)]
