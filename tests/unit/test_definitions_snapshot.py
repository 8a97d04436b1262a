"""Every asset, asset check, job, schedule, sensor and resource of the code location, by name,
against the checked-in list definitions_snapshot.txt: removing or renaming one by accident fails
here with a diff. After a deliberate change, regenerate the list and commit it with the change:

    UPDATE_SNAPSHOT=1 uv run pytest tests/unit/test_definitions_snapshot.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.txt")
REGENERATE = "UPDATE_SNAPSHOT=1 uv run pytest tests/unit/test_definitions_snapshot.py"


def snapshot(defs: dg.Definitions) -> str:
    """One section per kind of definition, one sorted name a line."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    sections = {
        "assets": [key.to_user_string() for key in graph.get_all_asset_keys()],
        "asset checks": [f"{key.asset_key.to_user_string()}:{key.name}"
                         for key in graph.asset_check_keys],
        # __ASSET_JOB is Dagster's implicit job over every asset, not one of ours
        "jobs": [job.name for job in repo.get_all_jobs() if not job.name.startswith("__")],
        "schedules": [schedule.name for schedule in repo.schedule_defs],
        "sensors": [sensor.name for sensor in repo.sensor_defs],
        "resources": list(repo.get_top_level_resources()),
    }
    lines = [f"# the code location's definitions, by name ({REGENERATE} after a change)"]
    for kind, names in sections.items():
        lines += ["", f"[{kind}] {len(names)}", *sorted(names)]
    return "\n".join(lines) + "\n"


def test_the_definitions_match_the_checked_in_list():
    from orchestration.definitions import defs

    current = snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(current)
    expected = SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                        current.splitlines(keepends=True),
                                        "definitions_snapshot.txt (checked in)",
                                        "the code location now"))
    assert not diff, (f"the code location's definitions changed (- gone, + new); if that is "
                      f"meant, regenerate the list with `{REGENERATE}`:\n{diff}")


def test_a_removed_definition_shows_in_the_diff():
    # the comparison is only as good as what it reads: a job taken out must change the text
    @dg.asset
    def a() -> None: ...

    @dg.asset_check(asset=a)
    def a_ok() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    job = dg.define_asset_job("a_job", selection=[a])
    schedule = dg.ScheduleDefinition(name="a_daily", job=job, cron_schedule="0 1 * * *")
    full = snapshot(dg.Definitions(assets=[a], asset_checks=[a_ok], jobs=[job],
                                   schedules=[schedule]))
    assert "[assets] 1\na\n" in full and "[asset checks] 1\na:a_ok\n" in full
    assert "[jobs] 1\na_job\n" in full and "[schedules] 1\na_daily\n" in full
    without_schedule = snapshot(dg.Definitions(assets=[a], asset_checks=[a_ok], jobs=[job]))
    assert "a_daily" not in without_schedule and "[schedules] 0\n" in without_schedule
