"""Whether schedules and sensors start running in a new deployment.

A deployment against the real vendors backs up nightly and syncs without anyone switching things
on in the UI: every schedule and sensor defaults to RUNNING. `TALENTVAULT_START_PAUSED=1` makes
them all start STOPPED instead (e.g. to run a first backfill by hand before the nightly chain
starts); `TALENTVAULT_START_PAUSED=0` starts them even against the sandbox.

Against the sandbox only (`TALENTVAULT_MODE=sandbox`, or no vendor `*_BASE_URL` set) the default
is STOPPED: the sandbox lives on a simulated clock, so a daemon on the wall clock would ask it for
days it has not lived and retention would prune its days as old. `talentvault demo` drives the same
schedule and automation at the sandbox's clock instead (orchestration/in_process.py).

This only decides the *default*: a schedule or sensor someone started or stopped in the UI keeps
that state.
"""

from __future__ import annotations

import os

import dagster as dg

START_PAUSED_ENV = "TALENTVAULT_START_PAUSED"


def start_paused() -> bool:
    explicit = os.environ.get(START_PAUSED_ENV, "").strip().lower()
    if explicit:
        return explicit in ("1", "true", "yes", "on")
    mode = os.environ.get("TALENTVAULT_MODE", "").strip().lower()
    if mode:
        return mode == "sandbox"
    return not any(os.environ.get(f"{v}_BASE_URL") for v in ("GREENHOUSE", "KEAP", "HIGHLEVEL"))


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.STOPPED if start_paused() else dg.DefaultScheduleStatus.RUNNING


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.STOPPED if start_paused() else dg.DefaultSensorStatus.RUNNING
