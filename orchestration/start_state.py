"""Whether schedules and sensors start running in a new deployment.

A deployment in live mode (`TALENTVAULT_MODE=live`) backs up nightly and syncs without anyone
switching things on in the UI: every schedule and sensor defaults to RUNNING.
`TALENTVAULT_START_PAUSED=1` makes them all start STOPPED instead (e.g. to run a first backfill by
hand before the nightly chain starts); `TALENTVAULT_START_PAUSED=0` starts them in sandbox mode
too.

In sandbox mode (`TALENTVAULT_MODE=sandbox`, or unset with no vendor setting: config.py) the
default is STOPPED: the sandbox lives on a simulated clock, so a daemon on the wall clock would
ask it for days it has not lived and retention would prune its days as old. `talentvault demo`
drives the same schedule and automation at the sandbox's clock instead (in_process.py).

This only decides the *default*: a schedule or sensor someone started or stopped in the UI keeps
that state. The alert sensors (sensors.py) are always on.
"""

from __future__ import annotations

import os

import dagster as dg

START_PAUSED_ENV = "TALENTVAULT_START_PAUSED"


def start_paused() -> bool:
    explicit = os.environ.get(START_PAUSED_ENV, "").strip().lower()
    if explicit:
        return explicit in ("1", "true", "yes", "on")
    from orchestration.config import ModeError, mode

    try:
        return mode() == "sandbox"
    except ModeError:  # the code location refuses to load with the same message (config.py)
        return True


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.STOPPED if start_paused() else dg.DefaultScheduleStatus.RUNNING


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.STOPPED if start_paused() else dg.DefaultSensorStatus.RUNNING
