"""A sandbox install is judged by the sandbox's clock, read without starting it."""

from datetime import UTC, datetime

from orchestration.storage.backup_state import reference_now, source_states
from sandbox.process import free_port
from sandbox.store import Store
from tests.integration.installs import land_install


def test_a_sandbox_world_in_january_is_not_late_in_december(tmp_path, monkeypatch):
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TALENTVAULT_SANDBOX_URL", f"http://127.0.0.1:{free_port()}")  # not running
    store = Store(tmp_path / "sandbox")
    store.set_now(datetime(2026, 1, 5, 9, tzinfo=UTC))
    store.close()
    land_install(tmp_path, {"greenhouse": datetime(2026, 1, 4).date()})
    now, clock = reference_now("sandbox")
    assert (now, clock) == (datetime(2026, 1, 5, 9, tzinfo=UTC), "sandbox world file")
    [greenhouse, *_] = source_states(tmp_path, now, rpo=26)
    assert (greenhouse.day, greenhouse.age_hours, greenhouse.late) == ("2026-01-04", 9.0, False)
    assert reference_now("live")[1] == "real"
