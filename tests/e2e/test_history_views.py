"""History checkpoints (orchestration/storage/checkpoints.py) never change an answer: over a
multi-week history with updates, deletes, re-created ids, several versions of an id in one day,
duplicated versions in overlapping windows and a second full snapshot, the catalog's state
views equal the plain definition (a window over every version, fenced by fulls) for the current
state and as of random times before, between and after the checkpoints, for whole rows; a
checkpoint whose partitions changed is not used and `refresh` removes it."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from orchestration.storage import checkpoints, parquet
from orchestration.storage.state_sql import history_sql, state_sql

START = date(2026, 3, 1)
DAYS = 42


def write_day(con, entity: Path, day: date, query: str, mode: str) -> None:
    folder = entity / f"snapshot_date={day}"
    folder.mkdir(parents=True)
    parquet.write_query(con, f"SELECT * FROM ({query}) ORDER BY id, _source_updated_at",
                        folder / "part-00000.parquet")
    (folder / "_manifest.json").write_text(json.dumps(
        {"snapshot_date": str(day), "mode": mode, "files": [{"file": "part-00000.parquet"}]}))


@pytest.fixture(scope="module")
def entity(tmp_path_factory) -> Path:
    """keap/contacts: 300 ids; each day ~15 changes (some ids twice in a day, 1 in 6 a
    delete), the previous day's last 3 versions repeated (an overlapping window); a full on day
    0 and on day 21 (every live id, deletes for the ones gone)."""
    root = tmp_path_factory.mktemp("history")
    entity = root / "keap" / "contacts"
    con = parquet.connect()
    rng = random.Random(16)
    alive: dict[int, tuple[str, str]] = {i: (f"{START}T00:00:00+00:00", "v0") for i in range(300)}
    gone: set[int] = set()
    previous: list[tuple] = []

    def rows(items: list[tuple]) -> str:
        values = ", ".join(f"('{i:04d}', TIMESTAMPTZ '{ts}', '{op}', '{body}', '{i}@x.test')"
                           for i, ts, op, body in items)
        return (f"SELECT * FROM (VALUES {values}) v(id, _source_updated_at, _op, _raw, "
                "primary_email)")

    for d in range(DAYS):
        day = START + timedelta(days=d)
        if d in (0, 21):
            items = [(i, ts, "upsert", body) for i, (ts, body) in sorted(alive.items())]
            items += [(i, f"{day}T23:00:00+00:00", "delete", "") for i in sorted(gone)]
            gone = set()
            write_day(con, entity, day, rows(items), "full")
            continue
        items = list(previous)
        for k in range(15):
            i = rng.randrange(330)
            ts = f"{day}T{rng.randrange(24):02d}:{k:02d}:00+00:00"
            if i in alive and rng.random() < 1 / 6:
                del alive[i]
                gone.add(i)
                items.append((i, ts, "delete", ""))
            else:
                alive[i] = (ts, f"v{d}-{k}")
                gone.discard(i)
                items.append((i, ts, "upsert", f"v{d}-{k}"))
        previous = items[-3:]
        write_day(con, entity, day, rows(items), "incremental")
    con.close()
    return entity


def plain(entity: Path, as_of: str | None) -> str:
    return state_sql(history_sql(entity), as_of, entity_dir=entity)


def same(con, a: str, b: str) -> tuple[int, int]:
    left, right = con.execute(f"SELECT count(*) FROM ({a})").fetchone()[0], \
        con.execute(f"SELECT count(*) FROM ({b})").fetchone()[0]
    differ = con.execute(f"SELECT count(*) FROM (({a}) EXCEPT ALL ({b}) UNION ALL "
                         f"(({b}) EXCEPT ALL ({a})))").fetchone()[0]
    return left - right, differ


def test_checkpoints_answer_exactly_as_the_plain_definition(entity):
    for day in (10, 27, 34):   # the one on day 10 predates the day-21 full: never used
        assert checkpoints.build(entity, str(START + timedelta(days=day))) is not None
    valid = checkpoints.valid_checkpoints(entity)
    assert [c["day"] for c in valid] == [str(START + timedelta(days=27)),
                                         str(START + timedelta(days=34))]
    con = parquet.connect()
    con.execute("SET TimeZone = 'UTC'")
    assert "_in_fence" in checkpoints.catalog_state_sql(entity)      # the checkpoint is used
    assert same(con, checkpoints.catalog_state_sql(entity), plain(entity, None)) == (0, 0)
    rng = random.Random(7)
    first = datetime.fromisoformat(f"{START}T00:00:00+00:00")
    times = [first + timedelta(minutes=rng.randrange(DAYS * 24 * 60)) for _ in range(24)]
    times += [datetime.fromisoformat(c["valid_from"]) + timedelta(seconds=s)
              for c in valid for s in (-1, 0, 1)]
    for t in times:
        ts = f"TIMESTAMPTZ '{t.isoformat()}'"
        assert same(con, checkpoints.catalog_state_sql(entity, ts), plain(entity, ts)) == \
            (0, 0), t
    # a lookup by id through the checkpoint equals the plain one
    for i in ("0007", "0150", "0321"):
        q = "SELECT * FROM ({}) WHERE id = '" + i + "'"
        assert same(con, q.format(checkpoints.catalog_state_sql(entity)),
                    q.format(plain(entity, None))) == (0, 0)
    con.close()


def test_a_checkpoint_whose_partitions_changed_is_retired(entity, tmp_path):
    import shutil

    copy = tmp_path / "keap" / "contacts"
    shutil.copytree(entity, copy)
    shutil.copytree(checkpoints.checkpoint_root(entity), checkpoints.checkpoint_root(copy))
    assert checkpoints.valid_checkpoints(copy)
    # an old partition re-landed (a re-run, an erasure rewrite): its manifest changes
    m = copy / f"snapshot_date={START + timedelta(days=30)}" / "_manifest.json"
    m.write_text(m.read_text().replace('"incremental"', '"incremental", "rerun": 1'))
    assert [c["day"] for c in checkpoints.valid_checkpoints(copy)] == \
        [str(START + timedelta(days=27))]
    con = parquet.connect()
    assert same(con, checkpoints.catalog_state_sql(copy), plain(copy, None)) == (0, 0)
    con.close()
    result = checkpoints.refresh(tmp_path, every=10)
    assert result["removed"] == 2       # day 34 (changed input) and day 10 (before a full)
    assert result["built"] == 1         # 14 partitions since day 27: a new one at day 41
    assert [c["day"] for c in checkpoints.valid_checkpoints(copy)] == \
        [str(START + timedelta(days=27)), str(START + timedelta(days=DAYS - 1))]
