"""Keap -> Greenhouse (the mapping's `reverse` section) against the sandbox over real sockets.

A small world is backed up, the forward sync runs, then people act in the sandbox the way they do
in the products: one opts out of email in Keap (an unsubscribe click), recruiters edit Keap custom
fields and tags, a recruiter edits the same candidates in Greenhouse. The next day's backups, the
forward push and the reverse sync run: each field's conflict rule decides (keap_wins, ats_wins,
newest_wins), read back from Greenhouse over HTTP; a re-run writes nothing; the day after, the
forward sync sends nothing back for those people and the reverse sync writes nothing again (no
loop). Without the section nothing is read or written."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from assets.catalog.views import open_catalog
from assets.identity.build import build_identity
from assets.identity.config import IdentityConfig
from assets.sync.changeset import build_changeset
from assets.sync.desired import write_desired
from assets.sync.mapping import DEFAULT_PATH, load_mapping
from assets.sync.mapping.reads import GREENHOUSE_READS, OPTIONAL_READS
from assets.sync.push import run_push
from assets.sync.reverse import declares_reverse, run_reverse
from sandbox.store import iso
from tests.e2e.conftest import SYNC_SPECS, served_world

# what the forward and the reverse sync read (not the candidates' notes, scorecards, emails...)
READ = {"greenhouse": {*GREENHOUSE_READS, *OPTIONAL_READS, "candidates", "candidate_tags",
                       "custom_fields"},
        "keap": {"contacts", "tags", "tag_categories", "custom_fields"}}
SPECS = [s for s in SYNC_SPECS if s.schema.entity in READ[s.schema.source]]

REVERSE = """
reverse:
  fields:
    opted_out:
      from: email_opt_out
      to: "tag:Email Opt-Out"
      conflict: keap_wins
    newsletter:
      from: "custom:Newsletter Frequency"
      to: "custom:candidate_status"
      conflict: ats_wins
    vip:
      from: "tag:VIP"
      to: "tag:VIP"
      conflict: newest_wins
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("reverse")
    mapping = base / "mapping.yaml"
    mapping.write_text(Path(DEFAULT_PATH).read_text() + REVERSE)
    with served_world(base, candidates=20, seed=5) as w:
        yield w, mapping


def forward(w, day: str, mapping: Path, run: str) -> list[tuple]:
    """Backups, identity, desired, changeset and push for `day`; the changeset's rows."""
    w.backup(date.fromisoformat(day), SPECS, run_id=f"backup-{run}")
    build_identity(w.root, day, IdentityConfig(), f"identity-{run}").close()
    write_desired(w.root, day, load_mapping(mapping), f"desired-{run}")
    build_changeset(w.root, day, f"changeset-{run}").close()
    rows = duckdb.sql(f"""SELECT profile_id, action, fields, tag, conflict FROM read_parquet(
        '{w.root}/sync/keap_changeset/snapshot_date={day}/*.parquet')""").fetchall()
    keap = w.clients()["keap"]
    try:
        run_push(keap, w.root, day, f"push-{run}")
    finally:
        keap.close()
    return rows


def reverse(w, day: str, mapping: Path, run: str):
    gh = w.clients()["greenhouse"]
    try:
        return gh, run_reverse(gh, w.root, day, run, load_mapping(mapping).reverse)
    finally:
        gh.close()


def next_day(w) -> str:
    """Move the sandbox clock to the next midnight: the open day becomes a whole day (what
    happened in it so far, our writes included, is in its backup)."""
    now = w.store.now()
    w.admin("POST", "/clock", json={"now": iso(
        (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0))})
    return w.day().isoformat()


def people(w, day: str) -> list[tuple[int, str, int]]:
    """(profile, pre-existing Keap contact the push updated, the profile's one candidate)."""
    return duckdb.sql(f"""
        SELECT DISTINCT l.profile_id, l.contact_id, p.candidate_ids[1]
        FROM read_parquet('{w.root}/sync/ledger/*/*.parquet') l
        JOIN read_parquet('{w.root}/identity/candidate_profiles/snapshot_date={day}/*.parquet') p
          USING (profile_id)
        WHERE l.action = 'update' AND l.status = 'succeeded' AND len(p.candidate_ids) = 1
        ORDER BY 1""").fetchall()


def desired(w, day: str, profiles: list[int]) -> list[tuple]:
    return duckdb.sql(f"""SELECT profile_id, fields, tags, emails FROM read_parquet(
        '{w.root}/sync/keap_desired/snapshot_date={day}/*.parquet')
        WHERE profile_id IN ({", ".join(map(str, profiles))}) ORDER BY 1""").fetchall()


def candidate(gh, cid: int) -> dict:
    return gh.http.request("GET", f"/v3/candidates/{cid}").json()


def test_keap_to_greenhouse_per_rule_without_loops(world) -> None:
    w, mapping = world
    assert declares_reverse(str(mapping)) and not declares_reverse()
    d1 = w.day().isoformat()
    forward(w, d1, mapping, "1")
    reverse(w, d1, mapping, "reverse-1")
    keap, gh = w.clients()["keap"], w.clients()["greenhouse"]
    try:
        cands = {cid: candidate(gh, cid) for _, _, cid in people(w, d1)}
        picks = [p for p in people(w, d1) if "VIP" not in cands[p[2]]["tags"]]
        assert len(picks) >= 5
        a, b, c, d, e = picks[:5]
        field_id = next(f["id"] for f in keap.contact_model()["custom_fields"]
                        if f["label"] == "Newsletter Frequency")
        vip = next(t["id"] for t in w.sandbox_docs("keap", "tags").values() if t["name"] == "VIP")
        gh_vip = gh.create_candidate_tag("VIP")["id"]
        # A opts out of email in Keap
        w.admin("POST", f"/keap/contacts/{a[1]}/email_status", json={"status": "LIST_UNSUBSCRIBE"})
        # B: Keap says Weekly, a recruiter keeps their own value in Greenhouse (ats_wins: kept)
        # C: Keap says Monthly, Greenhouse has none (ats_wins: filled)
        for who, value in ((b, "Weekly"), (c, "Monthly")):
            keap.update_contact(who[1], {"custom_fields": [{"id": field_id, "content": value}]},
                                ["custom_fields"])
        gh.update_candidate(b[2], {"custom_fields": [{"name_key": "candidate_status",
                                                      "value": "Recruiter's note"}]})
        gh.update_candidate(c[2], {"custom_fields": [{"name_key": "candidate_status",
                                                      "delete_value": True}]})
        # E: no VIP in Keap for ages, a recruiter tags the candidate VIP in Greenhouse now
        # (newest_wins: Greenhouse's, the tag stays); D: VIP added in Keap now, after anything
        # in Greenhouse (newest_wins: Keap's, the candidate is tagged)
        gh.apply_candidate_tag(e[2], gh_vip)
        keap.apply_tags(vip, [d[1]])
    finally:
        keap.close()

    d2 = next_day(w)
    forward(w, d2, mapping, "2")
    before = len(w.admin("GET", "/requests", params={"source": "greenhouse"})["requests"])
    gh, result = reverse(w, d2, mapping, "reverse-2")
    assert result.failed_permanent == result.failed_retryable == 0, result.counts()
    gh = w.clients()["greenhouse"]
    try:
        assert "Email Opt-Out" in candidate(gh, a[2])["tags"]
        assert candidate(gh, b[2])["custom_fields"]["candidate_status"]["value"] == \
            "Recruiter's note"
        assert candidate(gh, c[2])["custom_fields"]["candidate_status"]["value"] == "Monthly"
        assert "VIP" in candidate(gh, d[2])["tags"]
        assert "VIP" in candidate(gh, e[2])["tags"]
    finally:
        gh.close()
    assert result.outcomes.get("newsletter/kept_ats_wins", 0) >= 1
    assert result.outcomes.get("vip/kept_ats_newer", 0) >= 1
    ledger = duckdb.sql(f"""SELECT candidate_id, field, action, status FROM read_parquet(
        '{w.root}/sync/reverse_ledger/*/*.parquet')""").fetchall()
    done = {(cid, f) for cid, f, _, s in ledger if s == "succeeded"}
    assert {(a[2], "opted_out"), (c[2], "newsletter"), (d[2], "vip")} <= done
    assert not {(b[2], "newsletter"), (e[2], "vip")} & {(cid, f) for cid, f, _, _ in ledger}
    writes = [r for r in w.admin("GET", "/requests", params={"source": "greenhouse"})["requests"]
              [before:] if r["method"] != "GET" and "/v3/" in r["path"]]
    assert len(writes) == result.write_calls > 0

    sql = open_catalog(w.root)
    assert sql.execute("SELECT count(*) FROM sync.reverse_ledger WHERE status = 'succeeded'"
                       ).fetchone()[0] == len(done)
    sql.close()
    # the same day again: nothing to write (our writes are laid over the backup)
    again = reverse(w, d2, mapping, "reverse-2b")[1]
    assert (again.planned, again.write_calls) == (0, 0)

    # the next day: Greenhouse's backup holds our writes; what the forward sync wants in Keap
    # for these people is what it wanted before them (nothing comes back), it sends none of the
    # reverse fields, and the reverse sync recognises its own writes
    d3 = next_day(w)
    rows = forward(w, d3, mapping, "3")
    ours = sorted({a[0], b[0], c[0], d[0], e[0]})
    assert desired(w, d3, ours) == desired(w, d2, ours)
    assert [r for r in rows if r[0] in ours] == []
    third = reverse(w, d3, mapping, "reverse-3")[1]
    assert third.planned == 0 and third.write_calls == 0


def test_without_the_section_nothing_is_read_or_written(world) -> None:
    w, _ = world
    day = w.day().isoformat()
    files = sorted((w.root / "sync").rglob("*"))
    before = w.admin("GET", "/requests", params={"source": "greenhouse"})["requests"]
    result = run_reverse(None, w.root, day, "no-section", load_mapping().reverse)
    assert (result.fields, result.planned, result.write_calls) == (0, 0, 0)
    assert w.admin("GET", "/requests", params={"source": "greenhouse"})["requests"] == before
    assert sorted((w.root / "sync").rglob("*")) == files
