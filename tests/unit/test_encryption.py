"""Encryption at rest (orchestration/storage/crypt.py and the Parquet door, storage/parquet.py):
files round-trip exactly at every size around the chunk boundary, a reader seeks anywhere, a
changed byte / a cut at a chunk boundary / another key fail, DuckDB's threads reading one file
get the right rows, list columns round-trip through DuckDB and pyarrow alike, and the data root's
key is checked with one clear error for each wrong setting."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pyarrow as pa
import pytest

from orchestration.storage import crypt, parquet
from orchestration.storage.parquet import EncryptionKeyError, Key

KEY = Key(bytes(range(32)))
OTHER = Key(bytes(range(1, 33)))


@pytest.mark.parametrize("size", [0, 1, crypt.CHUNK - 1, crypt.CHUNK, crypt.CHUNK + 1,
                                  3 * crypt.CHUNK + 5])
def test_round_trip_and_random_access(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    w = crypt.Writer(str(path), KEY.raw)
    for i in range(0, size, 300_001):  # uneven writes across chunk boundaries
        w.write(data[i:i + 300_001])
    w.close()
    assert crypt.is_encrypted(path)
    assert crypt.plaintext_size(path.stat().st_size) == size
    r = crypt.Reader(str(path), KEY.raw)
    assert r.read() == data
    if size > 10:
        r.seek(size - 7)
        assert r.read() == data[-7:]
        r.seek(3)
        assert r.read(5) == data[3:8]
    r.close()


def _three_chunks(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3 * crypt.CHUNK)
    path = tmp_path / "f.bin"
    w = crypt.Writer(str(path), KEY.raw)
    w.write(data)
    w.close()
    return path, data


def test_a_changed_byte_fails_its_chunk(tmp_path: Path) -> None:
    path, _ = _three_chunks(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[crypt.HEADER.size + crypt.CHUNK + 100] ^= 1      # inside chunk 1
    path.write_bytes(bytes(raw))
    r = crypt.Reader(str(path), KEY.raw)
    assert len(r.read(1000)) == 1000                     # chunk 0 is intact
    r.seek(crypt.CHUNK + 5)
    with pytest.raises(crypt.DecryptionError, match="chunk 1 fails authentication"):
        r.read(10)


def test_a_file_cut_at_a_chunk_boundary_fails(tmp_path: Path) -> None:
    path, _ = _three_chunks(tmp_path)
    os.truncate(path, path.stat().st_size - (crypt.CHUNK + crypt.TAG))
    with pytest.raises(crypt.DecryptionError, match="fails authentication"):
        crypt.Reader(str(path), KEY.raw).read()


def test_another_key_is_refused(tmp_path: Path) -> None:
    path, _ = _three_chunks(tmp_path)
    with pytest.raises(crypt.DecryptionError, match="another key"):
        crypt.Reader(str(path), OTHER.raw)


def test_every_file_gets_its_own_key(tmp_path: Path) -> None:
    """Same plaintext, same operator key: different ciphertexts (a fresh salt per file)."""
    for name in ("a", "b"):
        w = crypt.Writer(str(tmp_path / name), KEY.raw)
        w.write(b"x" * 1000)
        w.close()
    assert (tmp_path / "a").read_bytes() != (tmp_path / "b").read_bytes()


def test_duckdb_threads_read_one_encrypted_file_right(tmp_path: Path) -> None:
    """DuckDB's threads share one handle of a file: each must read its own row groups."""
    path = tmp_path / "big.parquet"
    con = parquet.connect(key=KEY, config={"threads": 4})
    query = ("SELECT range AS id, ['a@x.example', 'b'] AS emails, repeat('x', 100) AS pad "
             "FROM range(1000000)")
    parquet.write_query(con, query, path, key=KEY)
    assert b"a@x.example" not in path.read_bytes()
    for _ in range(3):
        got = con.execute(f"""SELECT count(*), sum(id), count(emails)
            FROM read_parquet('{parquet.duck_path(path, KEY)}')""").fetchone()
        assert got == (1_000_000, 499_999_500_000, 1_000_000)
    con.close()


def test_list_columns_round_trip_through_duckdb_and_pyarrow(tmp_path: Path) -> None:
    """What Parquet modular encryption could not do between DuckDB 2.0 and pyarrow."""
    table = pa.table({"id": [1, 2, 3], "emails": [["a@x.example", "b@y.example"], None, []]})
    by_arrow, by_duck = tmp_path / "arrow.parquet", tmp_path / "duck.parquet"
    parquet.write_table(table, by_arrow, key=KEY)
    con = parquet.connect(key=KEY)
    parquet.write_query(con, f"SELECT * FROM read_parquet('{parquet.duck_path(by_arrow, KEY)}') "
                        "ORDER BY id", by_duck, key=KEY)
    assert parquet.read_table(by_duck, key=KEY).to_pylist() == table.to_pylist()
    assert con.execute(f"SELECT emails FROM read_parquet('{parquet.duck_path(by_duck, KEY)}') "
                       "WHERE id = 1").fetchone() == (["a@x.example", "b@y.example"],)
    con.close()
    with pytest.raises(EncryptionKeyError, match="TALENTVAULT_ENCRYPTION_KEY is unset"):
        parquet.open_file(by_duck, key=None)
    with pytest.raises(EncryptionKeyError, match="set TALENTVAULT_ENCRYPTION_KEY"):
        parquet.open_file(by_duck, key=OTHER)


def _env_key(monkeypatch, key: Key | None) -> None:
    if key is None:
        monkeypatch.delenv(parquet.KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(parquet.KEY_ENV, base64.b64encode(key.raw).decode())
    parquet.check_root.cache_clear()


def test_the_root_remembers_its_key(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    _env_key(monkeypatch, KEY)
    assert parquet.check_root(root) == KEY                       # fresh root: marked
    assert parquet.marker(root)["key_id"] == KEY.key_id
    assert KEY.b64 not in (root / parquet.MARKER).read_text()   # names the key, never holds it
    _env_key(monkeypatch, None)
    with pytest.raises(EncryptionKeyError, match="is encrypted .* is unset"):
        parquet.check_root(root)
    _env_key(monkeypatch, OTHER)
    with pytest.raises(EncryptionKeyError, match="another key"):
        parquet.check_root(root)


def test_a_key_over_an_unencrypted_root_is_refused(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    (root / "keap" / "contacts" / "snapshot_date=2026-01-01").mkdir(parents=True)
    parquet.write_table(pa.table({"id": [1]}),
                        root / "keap" / "contacts" / "snapshot_date=2026-01-01" / "p.parquet",
                        key=None)
    _env_key(monkeypatch, KEY)
    with pytest.raises(EncryptionKeyError, match="holds unencrypted backups.*rotate"):
        parquet.check_root(root)


@pytest.mark.parametrize("value,message", [("not base64!", "is not base64"),
                                           (base64.b64encode(b"short").decode(), "5 bytes")])
def test_a_malformed_key_names_the_setting(value: str, message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=f"TALENTVAULT_ENCRYPTION_KEY.*{message}|"
                                                 f"{message}.*"):
        parquet.parse_key(value)
