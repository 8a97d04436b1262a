"""Live vs sandbox is one explicit setting (TALENTVAULT_MODE): live mode with a vendor setting
missing stops at start naming it, and never starts the sandbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.config import VENDORS, ModeError, checked_mode, mode
from sandbox.process import free_port

ROOT = Path(__file__).resolve().parents[2]


def live_env() -> dict[str, str]:
    """A complete live configuration (values that open nothing: these tests never call out)."""
    return {"TALENTVAULT_MODE": "live",
            "GREENHOUSE_BASE_URL": "https://harvest.greenhouse.example",
            "GREENHOUSE_CLIENT_ID": "gh-id", "GREENHOUSE_CLIENT_SECRET": "gh-secret-value",
            "GREENHOUSE_USER_ID": "7", "KEAP_BASE_URL": "https://api.keap.example/crm",
            "KEAP_API_KEY": "keap-secret-value",
            "HIGHLEVEL_BASE_URL": "https://services.highlevel.example",
            "HIGHLEVEL_TOKEN": "hl-secret-value", "HIGHLEVEL_LOCATION_ID": "loc-1"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No vendor setting and no mode inherited from the shell; data root and sandbox in tmp, on
    a port nothing listens on."""
    for v in VENDORS.values():
        for name in v.names():
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TALENTVAULT_MODE", raising=False)
    port = free_port()
    values = {"TALENTVAULT_DATA_DIR": str(tmp_path / "data"),
              "TALENTVAULT_SANDBOX_URL": f"http://127.0.0.1:{port}"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def live_without_keap_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in live_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KEAP_BASE_URL")


def assert_no_sandbox(env: dict[str, str]) -> None:
    """Nothing listens on the sandbox port, no world was generated, no sandbox process runs."""
    port = int(env["TALENTVAULT_SANDBOX_URL"].rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "something listens on the sandbox port"
    assert not (Path(env["TALENTVAULT_DATA_DIR"]) / "sandbox").exists()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        assert not (b"serve" in args and str(port).encode() in args), args


def test_live_mode_without_keap_base_url_stops_the_code_location_at_load(env, monkeypatch):
    live_without_keap_base_url(monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "orchestration.definitions"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ})
    assert proc.returncode != 0
    assert "live mode (TALENTVAULT_MODE=live) needs KEAP_BASE_URL" in proc.stdout + proc.stderr
    assert_no_sandbox(env)


def test_live_mode_without_keap_base_url_stops_a_vendor_command_in_one_line(env, monkeypatch):
    live_without_keap_base_url(monkeypatch)
    result = CliRunner().invoke(app, ["restore", "preview", "--source", "keap",
                                      "--as-of", "2026-01-04T12:00:00Z"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "KEAP_BASE_URL (e.g. https://api.keap.com/crm)" in lines[0]
    assert "TALENTVAULT_MODE=sandbox" in lines[0]          # the other way out
    assert "secret-value" not in result.output
    assert_no_sandbox(env)


def test_a_keap_client_without_base_url_in_live_mode_never_falls_back_to_the_sandbox(
        env, monkeypatch):
    from orchestration.resources import KeapResource

    live_without_keap_base_url(monkeypatch)
    with pytest.raises(ModeError, match="needs KEAP_BASE_URL"):
        KeapResource(api_key="keap-secret-value").open()
    assert_no_sandbox(env)


def test_the_demo_refuses_live_mode(env, monkeypatch):
    for name, value in live_env().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 2
    assert "runs only against the sandbox" in result.output
    assert_no_sandbox(env)


def test_vendor_settings_without_a_mode_are_refused_not_guessed(env, monkeypatch):
    monkeypatch.setenv("KEAP_BASE_URL", "https://api.keap.example/crm")
    with pytest.raises(ModeError, match="KEAP_BASE_URL is set but TALENTVAULT_MODE is not"):
        mode()
    monkeypatch.setenv("TALENTVAULT_MODE", "sandbox")
    with pytest.raises(ModeError, match="sandbox mode never reaches a real vendor"):
        checked_mode()
    monkeypatch.setenv("TALENTVAULT_MODE", "production")
    with pytest.raises(ModeError, match="'production' is not a mode"):
        mode()


def test_no_settings_at_all_is_the_sandbox_and_a_complete_live_setup_passes(env, monkeypatch):
    from orchestration.resources import build_resources

    assert checked_mode() == "sandbox"
    assert build_resources()["keap"].base_url == ""
    for name, value in live_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KEAP_API_KEY")
    for name in ("KEAP_CLIENT_ID", "KEAP_CLIENT_SECRET", "KEAP_REFRESH_TOKEN"):
        monkeypatch.setenv(name, "x")
    assert checked_mode() == "live"
    monkeypatch.delenv("KEAP_CLIENT_SECRET")
    with pytest.raises(ModeError, match=r"needs KEAP_CLIENT_SECRET \(or KEAP_API_KEY\)"):
        checked_mode()
