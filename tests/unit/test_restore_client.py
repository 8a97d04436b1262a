"""A restore talks to the vendor the environment names, like the Dagster runs do."""

from assets.recovery.restore.plan import open_client


def _base_urls(client) -> list[str]:
    return [v.base_url for v in vars(client).values() if hasattr(v, "base_url")]


def test_restore_uses_the_real_keap_when_its_env_vars_are_set(monkeypatch):
    from tests.unit.test_mode import live_env

    for name, value in live_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEAP_BASE_URL", "https://api.keap.example")
    client = open_client("keap")
    try:
        assert _base_urls(client) == ["https://api.keap.example"]
    finally:
        client.close()

