"""The Keap changeset on crafted inputs (real Parquet, real DuckDB, the real storage writers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.unit.sync_changeset_world import World, contact, profile


def by_action(rows, action):
    return [r for r in rows if r["action"] == action]


@pytest.fixture
def w(tmp_path):
    return World(tmp_path)


def build(w: World):
    w.backup_keap()
    w.write_desired()
    return w.changeset()


def test_creates_only_for_unmatched_emails_with_full_body_and_tags(w):
    w.contacts = [contact(5, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com"),
                  profile(2, "bob@example.com", fields={"given_name": "Bob", "phone":
                                                        "+14155550134",
                                                        "custom:Last Stage": "Onsite",
                                                        "job_title": None},
                          tags=["Candidate", "Active Applicant"])]
    rows = build(w)
    creates = by_action(rows, "create")
    assert [r["profile_id"] for r in creates] == [2]
    c = creates[0]
    assert c["contact_id"] is None and c["match_email"] == "bob@example.com"
    assert json.loads(c["body"]) == {
        "email_addresses": [{"email": "bob@example.com", "field": "EMAIL1"}],
        "phone_numbers": [{"field": "PHONE1", "number": "+14155550134"}],
        "given_name": "Bob", "family_name": "Lee",
        "custom_fields": [{"content": "Onsite", "id": "7"}]}
    assert c["fields"] == ["custom:Last Stage", "email", "family_name", "given_name", "phone"]
    assert c["update_mask"] is None
    adds = by_action(rows, "tag_add")
    assert {(r["tag"], r["tag_id"], r["contact_id"], r["depends_on"]) for r in adds} == {
        ("Candidate", "101", None, c["change_id"]),
        ("Active Applicant", "102", None, c["change_id"])}
    # profile 1 matches contact 5 and nothing differs
    assert not [r for r in rows if r["profile_id"] == 1]
    assert all(len(r["change_id"]) == 32 for r in rows)


def test_email_case_and_whitespace_variants_match(w):
    w.contacts = [contact(5, ["  Ann@Example.COM "])]
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Anna"})]
    rows = build(w)
    assert [(r["action"], r["contact_id"]) for r in rows] == [("update", "5")]
    assert rows[0]["update_mask"] == ["given_name"]


def test_keap_duplicates_pick_the_oldest_and_report(w):
    w.contacts = [contact(57, ["ann@example.com"]), contact(12, ["ANN@example.com"]),
                  contact(300, ["other@example.com", "ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Anna"})]
    rows = build(w)
    assert [(r["action"], r["contact_id"]) for r in rows] == [("update", "12")]
    assert rows[0]["conflict"] == ("contacts 12, 57, 300 share this email; 12 chosen (oldest)")
    assert not by_action(rows, "create")


def test_a_contact_holding_the_primary_email_beats_an_older_one_holding_another(w):
    w.contacts = [contact(3, ["old@example.com"]), contact(9, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", emails=["ann@example.com", "old@example.com"],
                          fields={"given_name": "Anna"})]
    rows = build(w)
    assert [(r["action"], r["contact_id"]) for r in rows] == [("update", "9")]
    assert "chosen (holds the primary email, then oldest)" in rows[0]["conflict"]


def test_only_changed_fields_are_in_the_update(w):
    w.contacts = [contact(5, ["ann@example.com"], job_title="Engineer",
                          custom=[{"id": "7", "content": "Onsite"}, {"id": "8", "content": 3}])]
    w.profiles = [profile(1, "ann@example.com", fields={
        "family_name": "Lee-Smith", "job_title": "Engineer", "custom:Last Stage": "Onsite",
        "custom:Score": "3"})]
    rows = build(w)
    (u,) = rows
    assert u["action"] == "update" and u["update_mask"] == ["family_name"]
    assert u["fields"] == ["family_name"]
    assert json.loads(u["body"]) == {"family_name": "Lee-Smith"}


def test_arrays_are_merged_never_dropping_what_a_human_added(w):
    w.contacts = [contact(5, ["ann@example.com", "ann.home@example.org"],
                          phones=["(415) 555-0100"],
                          custom=[{"id": "8", "content": 42}])]
    w.profiles = [profile(1, "ann@example.com", fields={
        "phone": "+14155550199", "custom:Last Stage": "Offer", "custom:Source": "Referral"})]
    rows = build(w)
    (u,) = rows
    assert u["update_mask"] == ["custom_fields", "phone_numbers"]
    assert u["fields"] == ["custom:Last Stage", "custom:Source", "phone"]
    body = json.loads(u["body"])
    assert body["phone_numbers"] == [
        {"field": "PHONE1", "number": "(415) 555-0100", "type": "Mobile"},
        {"field": "PHONE2", "number": "+14155550199"}]
    # Score (a human's) kept; Last Stage set by id; Source unknown in Keap: by label
    assert body["custom_fields"] == [{"content": "Offer", "id": "7"},
                                     {"content": 42, "id": "8"},
                                     {"content": "Referral", "label": "Source"}]
    assert "email_addresses" not in body


def test_primary_email_missing_from_the_matched_contact_goes_in_a_free_slot(w):
    w.contacts = [contact(5, ["ann.old@example.com", "x@example.com"],
                          email_slots=["EMAIL1", "EMAIL3"])]
    w.profiles = [profile(1, "ann@example.com",
                          emails=["ann@example.com", "ann.old@example.com"])]
    rows = build(w)
    (u,) = rows
    assert json.loads(u["body"])["email_addresses"] == [
        {"email": "ann.old@example.com", "field": "EMAIL1"},
        {"email": "ann@example.com", "field": "EMAIL2"},
        {"email": "x@example.com", "field": "EMAIL3"}]
    assert u["update_mask"] == ["email_addresses"]


def test_only_managed_tags_are_removed(w):
    # contact carries Active Applicant (managed), VIP (a human's) and Candidate
    w.contacts = [contact(5, ["ann@example.com"], tags=["101", "102", "104"])]
    w.profiles = [profile(1, "ann@example.com", tags=["Candidate", "Offer Extended"])]
    rows = build(w)
    assert [(r["action"], r["tag"], r["tag_id"], r["contact_id"]) for r in rows] == [
        ("tag_remove", "Active Applicant", "102", "5"),
        ("tag_add", "Offer Extended", "103", "5")]
    assert all(r["body"] is None and r["depends_on"] is None for r in rows)


def test_unknown_tag_has_no_id_so_the_push_creates_it(w):
    w.contacts = [contact(5, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", tags=["Hired"])]
    rows = build(w)
    assert [(r["action"], r["tag"], r["tag_id"]) for r in rows] == [("tag_add", "Hired", None)]


def test_keap_wins_keeps_a_value_a_human_changed(w):
    w.conflict = {"job_title": "keap_wins", "given_name": "ats_wins"}
    w.contacts = [contact(5, ["ann@example.com"], given="Annie", job_title="Head of Data")]
    w.profiles = [profile(1, "ann@example.com",
                          fields={"job_title": "Data Engineer", "given_name": "Ann"})]
    rows = build(w)
    (u,) = rows
    assert u["update_mask"] == ["given_name"]         # ats_wins: overwritten
    assert json.loads(u["body"]) == {"given_name": "Ann"}
    assert "job_title kept: Keap's value was set outside the sync (keap_wins)" in u["conflict"]


def test_keap_wins_value_kept_on_the_first_run_stays_kept_after_we_write_the_contact(w):
    """A human's job title survives our write of another field (whose reply makes the
    contact's update time ours)."""
    w.conflict = {"job_title": "keap_wins"}
    w.contacts = [contact(5, ["ann@example.com"], job_title="Head of Data")]
    w.profiles = [profile(1, "ann@example.com",
                          fields={"job_title": "Data Engineer", "given_name": "Anna"})]
    (u,) = build(w)
    assert u["update_mask"] == ["given_name"]
    w.record([u], keap_update_time=datetime(2025, 11, 4, tzinfo=UTC))
    assert w.changeset() == []


def test_keap_wins_field_empty_in_keap_is_filled(w):
    w.conflict = {"job_title": "keap_wins"}
    w.contacts = [contact(5, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", fields={"job_title": "Data Engineer"})]
    (u,) = build(w)
    assert u["update_mask"] == ["job_title"]


@pytest.mark.parametrize(("keap_now", "expect_update"), [("Engineer", True), ("Nurse", False)])
def test_keap_wins_looks_at_the_value_we_last_wrote(w, keap_now, expect_update):
    """We wrote job_title; Keap was touched afterwards (its update time is later, e.g. a tag).
    If the field still holds our value, the new ATS value goes through; if a human changed it,
    Keap's value is kept."""
    w.conflict = {"job_title": "keap_wins"}
    w.contacts = [contact(5, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", fields={"job_title": "Engineer"})]
    (ours,) = build(w)
    assert ours["update_mask"] == ["job_title"]
    w.record([ours], keap_update_time=datetime(2025, 11, 2, 12, tzinfo=UTC))
    # Keap backed up again after the push: update time later than our write
    w.contacts = [contact(5, ["ann@example.com"], job_title=keap_now,
                          updated="2025-11-02T18:00:00Z")]
    w.profiles = [profile(1, "ann@example.com", fields={"job_title": "Data Engineer"})]
    w.backup_keap()
    w.write_desired()
    rows = w.changeset()
    if expect_update:
        (u,) = rows
        assert u["update_mask"] == ["job_title"] and u["conflict"] is None
    else:
        assert rows == []


def test_unchanged_contacts_give_zero_rows(w):
    w.contacts = [contact(5, ["ann@example.com"], phones=["415-555-0100"], tags=["101"],
                          custom=[{"id": "8", "content": 7}])]
    w.profiles = [profile(1, "ann@example.com", tags=["Candidate"],
                          fields={"phone": "+14155550100", "custom:Score": "7",
                                  "job_title": None})]
    assert build(w) == []


def test_ledger_overlay_makes_the_recomputation_after_a_push_empty(w):
    w.contacts = [contact(5, ["ann@example.com"], tags=["102"], phones=["415-555-0100"])]
    w.profiles = [
        profile(1, "ann@example.com", tags=["Candidate"],
                fields={"given_name": "Anna", "phone": "+14155550111",
                        "custom:Last Stage": "Onsite"}),
        profile(2, "bob@example.com", tags=["Candidate", "Hired"],
                fields={"phone": "+14155550122", "custom:Source": "Referral"})]
    rows = build(w)
    assert {r["action"] for r in rows} == {"create", "update", "tag_add", "tag_remove"}
    # the push wrote everything (contact 900 created for profile 2) after the backup
    w.record(rows, contact_ids={2: "900"}, keap_update_time=datetime(2025, 11, 4, tzinfo=UTC))
    assert w.changeset() == []
    # and again (the partition rewritten empty: values come from the archive of applied rows)
    assert w.changeset() == []
    # a new ATS change for the created contact is an update of contact 900, arrays merged
    w.profiles[1] = profile(2, "bob@example.com", tags=["Candidate", "Hired"],
                            fields={"phone": "+14155550122", "custom:Source": "Referral",
                                    "custom:Last Stage": "Offer"})
    w.write_desired()
    (u,) = w.changeset()
    assert (u["action"], u["contact_id"]) == ("update", "900")
    assert json.loads(u["body"]) == {"custom_fields": [
        {"content": "Offer", "id": "7"}, {"content": "Referral", "label": "Source"}]}


def test_dead_lettered_change_is_skipped_until_its_input_changes(w):
    w.contacts = [contact(5, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Anna"})]
    (u,) = build(w)
    w.record([u], status="failed_permanent")
    assert w.changeset() == []
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Annabel"})]
    w.write_desired()
    (u2,) = w.changeset()
    assert u2["change_id"] != u["change_id"] and u2["update_mask"] == ["given_name"]


def test_change_ids_are_deterministic_and_rows_sorted(w):
    w.contacts = [contact(5, ["ann@example.com"], tags=["102"])]
    w.profiles = [profile(3, "cy@example.com", tags=["Candidate"]),
                  profile(1, "ann@example.com", fields={"given_name": "Anna"},
                          tags=["Candidate"])]
    first = build(w)
    again = w.changeset()
    assert first == again
    assert [(r["profile_id"], r["action"]) for r in first] == [
        (1, "update"), (1, "tag_remove"), (1, "tag_add"), (3, "create"), (3, "tag_add")]


def test_two_profiles_pointing_at_one_contact_do_not_fight(w):
    w.contacts = [contact(5, ["ann@example.com", "ann2@example.com"])]
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Anna"}),
                  profile(2, "other@example.com", emails=["other@example.com",
                                                          "ann2@example.com"],
                          fields={"given_name": "Zed"})]
    rows = build(w)
    assert [(r["profile_id"], r["action"], r["contact_id"]) for r in rows] == [
        (1, "update", "5")]


def test_preview_masks_values_and_the_ui_markdown_has_none(w, capsys):
    from assets.sync import preview

    w.contacts = [contact(5, ["ann@example.com"], tags=["102"])]
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Annabel"}),
                  profile(2, "bob@example.com", fields={"given_name": "Bob"},
                          tags=["Candidate"])]
    build(w)
    p = preview.load(w.root, limit=10)
    assert p.day == w.day
    assert (p.counts["create"], p.counts["update"], p.counts["tag_add"],
            p.counts["tag_remove"]) == (1, 1, 1, 1)
    assert p.fields_touched == {"given_name": 2, "email": 1, "family_name": 1}
    md = preview.markdown(p)
    for value in ("Annabel", "bob@example.com", "Bob", "Lee"):
        assert value not in md
    assert "| update | 1 | 5 | given_name |" in md
    update = next(r for r in p.sample if r["action"] == "update")
    assert update["masked"] == ["given_name=A…(7)"]
    preview.render(p)
    out = capsys.readouterr().out
    assert "A…(7)" in out and "Annabel" not in out and "bob@example.com" not in out


def test_the_asset_materializes_with_metadata(w):
    import dagster as dg

    from assets.sync.changeset import keap_changeset
    from orchestration.storage.snapshots import SnapshotStorage

    w.contacts = [contact(5, ["ann@example.com"]), contact(6, ["ann@example.com"])]
    w.profiles = [profile(1, "ann@example.com", fields={"given_name": "Anna"}),
                  profile(2, "bob@example.com")]
    w.backup_keap()
    w.write_desired()
    result = dg.materialize([keap_changeset], partition_key=w.day,
                            resources={"storage": SnapshotStorage(root=str(w.root))})
    assert result.success
    (mat,) = result.asset_materializations_for_node("sync__keap_changeset")
    md = mat.metadata
    assert (md["create"].value, md["update"].value, md["tag_add"].value) == (1, 1, 0)
    assert md["conflicts"].value == 1 and md["dagster/row_count"].value == 2
    assert md["fields_touched"].value == {"email": 1, "family_name": 1, "given_name": 2}
    assert "Anna" not in md["preview"].value and "ann@" not in md["preview"].value
