"""A sandbox left running on the port is reused only when it serves this data root with this
code: the demo once backed up against a server started from an older checkout, which answered
the new endpoints 401/404 and failed the run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sandbox import process, version


def health(base_url: str) -> dict:
    return httpx.get(f"{base_url}/_sandbox/health", timeout=5).json()


def test_a_stale_sandbox_is_restarted_and_another_worlds_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://{process.HOST}:{process.free_port()}"
    mine, other = tmp_path / "mine" / "sandbox", tmp_path / "other" / "sandbox"
    try:
        base, started = process.ensure_running(mine, url, candidates=5)
        assert (base, started) == (url, True)
        first = health(url)
        assert Path(first["world"]).parent == mine.resolve()
        assert first["code"] == process.code_version()

        # the same world with the same code: reused as is
        assert process.ensure_running(mine, url, candidates=5) == (url, False)
        assert health(url)["pid"] == first["pid"]

        # another data root's sandbox on the port: refused with the way out, nothing started
        with pytest.raises(process.StaleSandbox, match="serves another world.*sandbox stop"):
            process.ensure_running(other, url, candidates=5)
        assert not (other / "world.db").exists()
        # unless the user named that server's URL: then whatever answers is used
        assert process.ensure_running(other, url, reuse_any=True) == (url, False)

        # this checkout's code changed since the server started: it is restarted on its world
        monkeypatch.setattr(version, "_CODE", ["changed-since"])
        assert process.ensure_running(mine, url, candidates=5) == (url, True)
        monkeypatch.undo()
        second = health(url)
        assert second["pid"] != first["pid"]
        assert second["world"] == first["world"] and second["code"] == process.code_version()

        # a server of other code that this world did not start (no pid file names it) is not
        # killed behind the user's back
        (mine / "server.pid").write_text("1")
        monkeypatch.setattr(version, "_CODE", ["changed-since"])
        with pytest.raises(process.StaleSandbox, match="not started by it"):
            process.ensure_running(mine, url, candidates=5)
        assert health(url)["pid"] == second["pid"]
        (mine / "server.pid").write_text(str(second["pid"]))
    finally:
        process.stop_background(mine)
