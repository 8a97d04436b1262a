"""Encryption at rest over real backups of the sandbox (TALENTVAULT_ENCRYPTION_KEY): no byte of
any backed-up address sits in the data root or its replica; verify and SQL work with the key; a
missing or wrong key is one clear error naming the setting; `forget` reaches both copies; a key
rotation (interrupted, then run again) and a decryption give back the same answers."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.recovery.erasure import forget
from assets.recovery.verify import verify
from orchestration.cli import app
from orchestration.storage import crypt, parquet, rekey
from tests.e2e.conftest import CRM_SPECS, World

runner = CliRunner()
CONTACTS = Path("keap") / "contacts"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def use_key(monkeypatch, value: str | None, old: str | None = None) -> None:
    for name, v in ((parquet.KEY_ENV, value), (parquet.OLD_KEY_ENV, old)):
        if v is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, v)
    parquet.check_root.cache_clear()


def emails(root: Path) -> set[str]:
    con = parquet.connect()
    try:
        rows = con.execute(f"""SELECT DISTINCT lower(e) FROM (SELECT unnest(emails) AS e
            FROM read_parquet('{parquet.duck_path(root / CONTACTS / '*' / '*.parquet')}'))
            WHERE e IS NOT NULL""").fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def files_holding(base: Path, needles: set[str]) -> list[str]:
    """Every file under `base` whose raw bytes hold one of `needles` (any case)."""
    found = []
    for dirpath, _, names in os.walk(base):
        for name in names:
            raw = (Path(dirpath) / name).read_bytes().lower()
            if any(n.encode() in raw for n in needles):
                found.append(str((Path(dirpath) / name).relative_to(base)))
    return found


def sql_count(root: Path) -> str:
    assert os.environ["TALENTVAULT_DATA_DIR"] == str(root)
    out = runner.invoke(app, ["sql", "--format", "csv",
                              "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM keap.contacts"])
    assert out.exit_code == 0, out.output
    return out.output.strip().splitlines()[-1]


@pytest.fixture
def encrypted(sandbox_world: World, tmp_path: Path, monkeypatch) -> tuple[Path, Path, str]:
    root, copy = tmp_path / "data", tmp_path / "replica"
    key = new_key()
    use_key(monkeypatch, key)
    monkeypatch.setenv("TALENTVAULT_REPLICA_DIR", str(copy))
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(root))   # `talentvault sql` reads it
    w = sandbox_world
    w.backup(w.day(), specs=CRM_SPECS, root=root)
    w.tick(1)
    w.backup(w.day(), specs=CRM_SPECS, root=root)
    return root, copy, key


def test_no_backed_up_address_is_readable_in_the_root_or_the_replica(encrypted):
    root, copy, _ = encrypted
    addresses = emails(root)
    assert len(addresses) > 50
    kept = [p for p in parquet.iter_parquet(root)]
    assert kept and all(crypt.is_encrypted(p) for p in kept)
    assert files_holding(root, addresses) == []
    assert files_holding(copy, addresses) == []
    assert verify(root, read_data=True).ok
    assert sql_count(root).split(",")[0] != "0"


def test_a_missing_or_wrong_key_is_one_clear_error(encrypted, monkeypatch):
    root, _, _ = encrypted
    use_key(monkeypatch, None)
    out = runner.invoke(app, ["sql", "SELECT 1"])
    assert out.exit_code == 2
    assert "is encrypted" in out.output and "TALENTVAULT_ENCRYPTION_KEY is unset" in out.output
    use_key(monkeypatch, new_key())
    out = runner.invoke(app, ["verify", "--data-dir", str(root)])
    assert out.exit_code == 2
    assert "TALENTVAULT_ENCRYPTION_KEY is another key" in out.output
    assert "Traceback" not in out.output


def test_forget_leaves_no_byte_of_the_person_in_either_copy(encrypted):
    root, copy, _ = encrypted
    email = sorted(emails(root))[0]
    forget(root, email=email)
    assert email not in emails(root)
    # decrypted, the person is gone from every file; raw, no file ever held them in clear
    con = parquet.connect()
    for base in (root, copy):
        n = con.execute(f"""SELECT count(*) FROM read_parquet(
            '{parquet.duck_path(base / CONTACTS / '*' / '*.parquet')}')
            WHERE contains(lower(CAST(emails AS VARCHAR)) || lower(_raw), ?)""",
            [email]).fetchone()[0]
        assert n == 0
        assert files_holding(base, {email}) == []
    con.close()
    assert verify(root, read_data=True).ok


def test_rotation_interrupted_then_finished_then_decrypted(encrypted, monkeypatch):
    root, _, key = encrypted
    before = sql_count(root)
    second = new_key()
    use_key(monkeypatch, second, old=key)
    real, calls = rekey._rekey_partition, []

    def crash_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt("power cut")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rekey, "_rekey_partition", crash_after_three)
    out = runner.invoke(app, ["encryption", "rotate", "--data-dir", str(root)])
    assert out.exit_code != 0
    # half-way: every other process refuses the root, whatever key it holds
    use_key(monkeypatch, second)
    refused = runner.invoke(app, ["sql", "SELECT 1"])
    assert refused.exit_code == 2 and "half-way through a key rotation" in refused.output
    monkeypatch.setattr(rekey, "_rekey_partition", real)
    use_key(monkeypatch, second, old=key)
    out = runner.invoke(app, ["encryption", "rotate", "--data-dir", str(root)])
    assert out.exit_code == 0, out.output
    assert "(3 partitions were already under the new key)" in out.output
    use_key(monkeypatch, second)
    assert parquet.marker(root)["key_id"] == parquet.parse_key(second).key_id
    assert verify(root, read_data=True).ok
    assert sql_count(root) == before
    use_key(monkeypatch, None, old=second)
    out = runner.invoke(app, ["encryption", "rotate", "--data-dir", str(root)])
    assert out.exit_code == 0, out.output
    use_key(monkeypatch, None)
    assert parquet.marker(root) is None
    assert not any(crypt.is_encrypted(p) for p in parquet.iter_parquet(root))
    assert verify(root, read_data=True).ok
    assert sql_count(root) == before


def test_the_duckdb_cli_init_script_is_refused_for_an_encrypted_root(encrypted):
    out = runner.invoke(app, ["sql", "--duckdb-init", "-"])
    assert out.exit_code == 2
    assert "the duckdb CLI cannot read an encrypted data root" in out.output
