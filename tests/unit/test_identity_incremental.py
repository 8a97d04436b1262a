"""The incremental identity build equals the full build (assets/identity/incremental.py), day
after day, over the cases that move people between profiles: an email shared by a new record
(two profiles join), an email edited away (a profile splits), a new record with another
person's name on a profile's email (a conflict), the conflicting record deleted (resolved), a
Greenhouse merge, an orphan application whose candidate appears, deletions, a version landed
in an old partition but updated after that day, a full snapshot repeating every version,
a re-landed day and Keap contacts changing. Real Parquet partitions, real DuckDB; each day
the full build runs on a copy of the data root."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from assets.greenhouse import schemas as gh
from assets.identity.build import build_identity
from assets.identity.config import IdentityConfig
from assets.identity.incremental import MODE_VAR, OUTPUT_NAMES
from assets.keap import schemas as kp
from orchestration.storage.derived import partition_glob
from orchestration.storage.snapshots import SnapshotStorage
from tests.unit.test_identity import application, candidate, contact

D1, D2, D3, D4 = "2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"


def land(root: Path, schema, day: str, docs: list[dict], deletes=(), *,
         mode: str = "incremental") -> None:
    end = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)
    w = SnapshotStorage(root=str(root)).writer(schema, day, mode=mode, run_id=f"t-{day}",
                                               window=(None, end))
    w.add(docs)
    w.add_deletes(deletes, deleted_at=end - timedelta(hours=1))
    w.commit()


def on(day: str, hour: int = 9) -> str:
    return f"{day}T{hour:02d}:00:00Z"


def content(root: Path, day: str) -> dict[str, list[str]]:
    con = duckdb.connect()
    return {name: sorted(map(repr, con.sql(
        f"SELECT * FROM read_parquet('{partition_glob(root, name, day)}')").fetchall()))
        for name in OUTPUT_NAMES}


def check_equal(root: Path, day: str, cfg: IdentityConfig, tmp: Path, tag: str,
                mp: pytest.MonkeyPatch) -> dict:
    copy = tmp / f"full-{tag}"
    shutil.copytree(root, copy)
    mp.setenv(MODE_VAR, "full")
    full = build_identity(copy, day, cfg, f"full-{tag}")
    full.close()
    mp.setenv(MODE_VAR, "auto")
    inc = build_identity(root, day, cfg, f"inc-{tag}")
    inc.close()
    assert full.counts["build"] == f"full: {MODE_VAR}=full"
    assert content(root, day) == content(copy, day), (tag, inc.counts["build"])
    for key in ("profiles", "quarantined", "profiled_candidates", "merged_candidate_ids"):
        assert inc.counts[key] == full.counts[key], (tag, key)
    return inc.counts


def day1(root: Path) -> None:
    land(root, gh.candidates, D1, [
        candidate(1, "Ann", "Lee", ["ann@x.example"]),
        candidate(2, "Ann", "Lee", ["ANN@x.example"]),
        candidate(3, "Bob", "Ray", ["bob@x.example"]),
        candidate(4, "Eve", "Park", ["fam@x.example"]),
        candidate(5, "Frank", "Moss", ["fam@x.example"]),
        candidate(6, "Gil", "Tor", ["gil@x.example"]),
        candidate(7, "No", "Mail", []),
        candidate(8, "Hal", "Ode", ["hal@x.example", "hal2@x.example"]),
        candidate(9, "Hal", "Ode", ["hal@x.example"]),
        candidate(20, "Kim", "Vo", ["kim@x.example"]),
    ], mode="full")
    land(root, gh.applications, D1, [
        application(11, 1), application(12, 2), application(13, 3), application(14, 99),
        application(15, 7), application(16, 4), application(17, 8), application(18, 9),
        application(19, 20)], mode="full")
    land(root, kp.contacts, D1, [contact("k1", ["ann@x.example"]),
                                 contact("k2", ["bob@x.example"]),
                                 contact("k3", ["gil@x.example"])], mode="full")


def day2(root: Path) -> None:
    land(root, gh.candidates, D2, [
        candidate(10, "Bob", "Ray", ["bob@x.example"], updated=on(D2)),       # joins 3
        candidate(2, "Ann", "Lee", ["ann.lee@y.example"], updated=on(D2)),    # splits 1, 2
        candidate(99, "Zed", "Quo", ["zed@x.example"], updated=on(D2)),       # orphan's own
        candidate(7, "No", "Mail", ["seven@x.example"], updated=on(D2)),      # out of quarantine
        candidate(6, "Gil", "Tor", ["gil@x.example"], title="Chef", updated=on(D2)),
    ], deletes=[20])
    # 16 moves from 4 to 6, both still there: 4 is no merged-away id
    land(root, gh.applications, D2, [application(21, 10, activity=on(D2)),
                                     application(16, 6, activity=on(D2))], deletes=[17])
    land(root, kp.contacts, D2, [contact("k4", ["hal@x.example"])], deletes=["k2"])


def day3(root: Path) -> None:
    land(root, gh.candidates, D3, [
        candidate(11, "Zoe", "Kim", ["HAL2@x.example"], updated=on(D3)),      # a conflict
        candidate(8, "Hal", "Ode", ["hal@x.example", "hal2@x.example"], updated=on(D3)),
        # landed today, updated after today's end: tomorrow's state, not today's
        candidate(3, "Bob", "Ray", ["bob@x.example", "robert@x.example"], updated=on(D4, 8)),
        candidate(12, "Ann", "Other", ["ann.lee@y.example"], updated=on(D4, 8)),
    ], deletes=[5, 9])                                                        # 5 resolves
    # a Greenhouse merge of 9 into 8: the application moves
    land(root, gh.applications, D3, [application(18, 8, activity=on(D3))])
    land(root, kp.contacts, D3, [contact("k1", ["ann@x.example", "x@x.example"])])


def day4(root: Path, extra: bool = False) -> None:
    """A full snapshot: every alive record again (most versions unchanged), one new."""
    alive = [
        candidate(1, "Ann", "Lee", ["ann@x.example"]),
        candidate(2, "Ann", "Lee", ["ann.lee@y.example"], updated=on(D2)),
        candidate(3, "Bob", "Ray", ["bob@x.example", "robert@x.example"], updated=on(D4, 8)),
        candidate(4, "Eve", "Park", ["fam@x.example"]),
        candidate(6, "Gil", "Tor", ["gil@x.example"], title="Chef", updated=on(D2)),
        candidate(7, "No", "Mail", ["seven@x.example"], updated=on(D2)),
        candidate(8, "Hal", "Ode", ["hal@x.example", "hal2@x.example"], updated=on(D3)),
        candidate(10, "Bob", "Ray", ["bob@x.example"], updated=on(D2)),
        candidate(11, "Zoe", "Kim", ["HAL2@x.example"], updated=on(D3)),
        candidate(12, "Ann", "Other", ["ann.lee@y.example"], updated=on(D4, 8)),
        candidate(99, "Zed", "Quo", ["zed@x.example"], updated=on(D2)),
        candidate(13, "Bob", "Ray", ["robert@x.example"], updated=on(D4)),    # joins 3 by
    ]                                                                         # its new email
    land(root, gh.candidates, D4, alive, mode="full")
    apps = [application(22, 13, activity=on(D4))]
    if extra:
        apps.append(application(23, 11, activity=on(D4, 12)))
    land(root, gh.applications, D4, apps)
    land(root, kp.contacts, D4, [])


@pytest.mark.parametrize("policy", ["quarantine", "separate", "merge"])
def test_incremental_equals_full_day_after_day(tmp_path: Path, policy: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root, cfg = tmp_path / "root", IdentityConfig(on_conflict=policy)
    day1(root)
    assert check_equal(root, D1, cfg, tmp_path, "1", monkeypatch)["build"] == \
        "full: no earlier identity build"
    for day, land_day, tag in ((D2, day2, "2"), (D3, day3, "3"), (D4, day4, "4")):
        land_day(root)
        counts = check_equal(root, day, cfg, tmp_path, tag, monkeypatch)
        assert counts["build"] == f"incremental on {_before(day)}", (tag, counts["build"])
        assert counts["region_candidates"] > 0, (tag, counts)
        # day 2 reaches everyone in merge mode (the application that moved was 4 and 5's)
        assert tag == "2" or counts["region_candidates"] < counts["candidates"], (tag, counts)
    # the same day again, nothing new: nothing recomputed, the same partition
    again = check_equal(root, D4, cfg, tmp_path, "4-again", monkeypatch)
    assert again["build"] == f"incremental on {D4}" and again["region_candidates"] == 0
    # the day's applications re-landed with one more: the day itself is no base any more
    day4(root, extra=True)
    relanded = check_equal(root, D4, cfg, tmp_path, "4-relanded", monkeypatch)
    assert relanded["build"] == f"incremental on {D3}"


def _before(day: str) -> str:
    return {D2: D1, D3: D2, D4: D3}[day]


def test_what_a_day_changes_is_what_is_recomputed(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Day 2 touches 3 (a new record on its email), 1 and 2 (split), 99 (with its orphan
    application), 7 (an email at last), 6 (edited), 20 (deleted), 8 and 9 (their application
    deleted): not 4 and 5."""
    root = tmp_path / "root"
    day1(root)
    build_identity(root, D1, IdentityConfig(), "one").close()
    day2(root)
    b = build_identity(root, D2, IdentityConfig(), "two")
    try:
        assert b.counts["changed_candidates"] == 6          # 10, 2, 99, 7, 6 and 20 (gone)
        # the 5 still there, 1 and 3 (their profiles), 8 and 9 (the deleted application's)
        assert b.counts["region_candidates"] == 9
        assert b.counts["changed_keap_contacts"] == 2 and b.counts["region_keap_contacts"] == 1
    finally:
        b.close()


def test_a_changed_configuration_or_the_full_setting_builds_in_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    day1(root)
    build_identity(root, D1, IdentityConfig(), "one").close()
    day2(root)
    b = build_identity(root, D2, IdentityConfig(max_cluster_size=7), "two")
    b.close()
    assert b.counts["build"] == f"full: the identity configuration changed since {D1}"
    b = build_identity(root, D2, IdentityConfig(survivorship={"emails": "latest"}), "three")
    b.close()
    assert b.counts["build"] == "full: the emails survivorship rule is not union"
    monkeypatch.setenv(MODE_VAR, "sometimes")
    with pytest.raises(ValueError, match="TALENTVAULT_IDENTITY='sometimes'"):
        build_identity(root, D2, IdentityConfig(), "bad")


def test_partitions_retention_prunes_behind_a_full_keep_the_base(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention prunes the oldest partition every day: behind a full snapshot taken before the
    base day that changes nothing, and the build stays incremental (and equal to a full one);
    a pruned partition no full fences off makes it full."""
    import shutil as sh

    root, cfg = tmp_path / "root", IdentityConfig()
    day1(root)
    for day, land_day in ((D1, None), (D2, day2), (D3, day3), (D4, day4)):
        if land_day:
            land_day(root)
        build_identity(root, day, cfg, f"b-{day}").close()
    d5, d6 = "2026-01-08", "2026-01-09"
    land(root, gh.candidates, d5, [candidate(30, "Uma", "Tan", ["uma@x.example"],
                                             updated=on(d5))])
    land(root, gh.applications, d5, [])
    land(root, kp.contacts, d5, [])
    build_identity(root, d5, cfg, "b-5").close()
    # retention prunes the candidates of day 2: the full of day 4 fences them off
    sh.rmtree(root / "greenhouse" / "candidates" / f"snapshot_date={D2}")
    land(root, gh.candidates, d6, [candidate(31, "Vic", "Lo", ["vic@x.example"],
                                             updated=on(d6))])
    land(root, gh.applications, d6, [])
    land(root, kp.contacts, d6, [])
    counts = check_equal(root, d6, cfg, tmp_path, "pruned", monkeypatch)
    assert counts["build"] == f"incremental on {d5}", counts["build"]
    # the applications' only full is day 1: a pruned day 2 is fenced off by none
    sh.rmtree(root / "greenhouse" / "applications" / f"snapshot_date={D2}")
    counts = check_equal(root, d6, cfg, tmp_path, "pruned-2", monkeypatch)
    assert counts["build"].startswith("full: a backup partition"), counts["build"]
