"""`talentvault sandbox` on bad input: one line naming the fix, exit 2, nothing created."""

from __future__ import annotations

from typer.testing import CliRunner

from orchestration.cli import app


def test_tick_without_a_world_names_sandbox_init_and_exits_2(tmp_path):
    folder = tmp_path / "nowhere"
    r = CliRunner().invoke(app, ["sandbox", "tick", "--data-dir", str(folder)])
    assert r.exit_code == 2, r.output
    [line] = r.output.strip().splitlines()
    assert str(folder) in line and "talentvault sandbox init" in line
    assert "Traceback" not in r.output
    assert not folder.exists()
