"""What starts running in a new deployment: everything in live mode, nothing in sandbox mode
(its clock is simulated) or when asked to start paused."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.config import VENDORS
from orchestration.start_state import START_PAUSED_ENV, schedule_status, sensor_status

RUNNING = (dg.DefaultScheduleStatus.RUNNING, dg.DefaultSensorStatus.RUNNING)
STOPPED = (dg.DefaultScheduleStatus.STOPPED, dg.DefaultSensorStatus.STOPPED)


@pytest.fixture
def clean(monkeypatch):
    for v in VENDORS.values():
        for name in v.names():
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(START_PAUSED_ENV, raising=False)
    monkeypatch.delenv("TALENTVAULT_MODE", raising=False)
    return monkeypatch


def test_live_mode_starts_everything(clean):
    clean.setenv("TALENTVAULT_MODE", "live")
    assert (schedule_status(), sensor_status()) == RUNNING


def test_start_paused_stops_everything(clean):
    clean.setenv("TALENTVAULT_MODE", "live")
    clean.setenv(START_PAUSED_ENV, "1")
    assert (schedule_status(), sensor_status()) == STOPPED


def test_the_sandbox_starts_stopped_unless_asked(clean):
    assert (schedule_status(), sensor_status()) == STOPPED
    clean.setenv(START_PAUSED_ENV, "0")
    assert (schedule_status(), sensor_status()) == RUNNING


def test_the_code_location_declares_its_automation_sensor():
    from orchestration.definitions import defs

    names = {s.name for s in defs.sensors}
    assert {"default_automation_condition_sensor", "webhook_sensor"} <= names
    sensor = next(s for s in defs.sensors if s.name == "default_automation_condition_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
