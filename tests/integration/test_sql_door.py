"""The SQL door as an attacker tries it: every way out to the host is refused, by the statement
check and by DuckDB's own locks (which hold even with the check bypassed, and in the duckdb CLI
init script), while every backup view still answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from assets.catalog import sql_door
from assets.catalog.views import open_catalog
from orchestration.cli import sql as sqlcli
from tests.integration.sql_door_world import SECRET_FILES, build


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("door"))


@pytest.fixture
def env(root, monkeypatch):
    monkeypatch.setenv("TALENTVAULT_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="module")
def door(root) -> duckdb.DuckDBPyConnection:
    return sql_door.connect(root)


@pytest.fixture(scope="module")
def cli_session(root) -> duckdb.DuckDBPyConnection:
    """What `duckdb -init FILE` runs, FILE from `talentvault sql --duckdb-init`."""
    con = duckdb.connect()
    con.execute(sql_door.init_script(root))
    return con


def host_reads(root: Path) -> list[str]:
    secrets = [str(root / f) for f in SECRET_FILES]
    part = next(root.glob("keap/contacts/snapshot_date=*/*.parquet"))
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd', sep = ':')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/proc/self/environ')",
        "SELECT * FROM read_json('/etc/os-release')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM parquet_scan('/etc/passwd')",
        "SELECT * FROM parquet_metadata('/etc/passwd')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        f"SELECT * FROM glob('{root}/**')",
        f"SELECT * FROM glob('{root}/state/*')",
        f"SELECT * FROM read_text('{Path(sql_door.__file__)}')",       # a source file
        *(f"SELECT * FROM read_text('{s}')" for s in secrets),
        *(f"SELECT * FROM read_blob('{s}')" for s in secrets),
        # through an allowed file's folder
        f"SELECT * FROM read_text('{part.parent}/../../../../{SECRET_FILES[0]}')",
        f"SELECT * FROM read_text('{root}/keap/*/../../state/*')",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
        "SELECT * FROM 'http://example.com/x.parquet'",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
        "SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS n",   # in a subquery
        "SELECT * FROM keap.contacts WHERE id IN (SELECT content FROM read_text('/etc/hostname'))",
        "FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv(['/etc/passwd', '/etc/group'])",
        "DESCRIBE SELECT * FROM read_csv('/etc/passwd')",
        "SUMMARIZE SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
        "SELECT * FROM query('COPY (SELECT 1) TO ''/tmp/talentvault-attack.csv''')",
    ]


# DuckDB's words for "no": a path that is not a backup file is not even a table name to it
REFUSALS = ("disabled by configuration", "disabled through configuration", "not allowed here",
            "Table with name /etc/passwd does not exist", "locked",
            "Expected a single SELECT statement")

# statements a SELECT-only check stops, and DuckDB's locks stop again behind it
WRITES_AND_LOOSENERS = [
    "INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs",
    "ATTACH '/tmp/talentvault-attack.db' AS o",
    "COPY (SELECT 1) TO '/tmp/talentvault-attack.csv'",
    "SET enable_external_access = true", "RESET enable_external_access",
    "SET allowed_directories = ['/']", "SET allowed_paths = ['/etc/passwd']",
    "SET lock_configuration = false", "RESET lock_configuration",
    "PRAGMA enable_external_access = true", "SET autoinstall_known_extensions = true",
    "SET autoload_known_extensions = true", "SET disabled_filesystems = ''",
    "SET temp_directory = '/'", "SET GLOBAL enable_external_access = true",
    "SET allowed_configs = ['enable_external_access']", "SET log_query_path = '/tmp/q.log'",
    "SET secret_directory = '/tmp'", "SET home_directory = '/'", "SET file_search_path = '/'",
    "CALL enable_logging(storage = 'file', storage_path = '/tmp/talentvault-attack-log')",
]


def writes_into_backups(root: Path) -> list[str]:
    folder = next(root.glob("keap/contacts/snapshot_date=*"))
    return [f"COPY (SELECT 1 AS id) TO '{folder}/injected.parquet'",
            f"ATTACH '{root}/keap/contacts/injected.db' AS x",
            f"COPY (SELECT 1) TO '{root}/sync/ledger/_wal/*.jsonl'"]


def test_every_host_read_is_refused_through_talentvault_sql(env, door, capsys):
    for query in host_reads(env) + WRITES_AND_LOOSENERS + writes_into_backups(env) + [
            "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/talentvault-attack.csv'",
            "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1) TO '/tmp/talentvault-attack.csv'"]:
        assert sqlcli.run_and_print(query, con=door) == 2, query
        out, err = capsys.readouterr()
        assert out == "", query
        assert any(s in err for s in REFUSALS), (query, err)
        assert "Traceback" not in err and err.count("\n") <= 2, (query, err)
    assert not list(env.rglob("injected*")) and not Path("/tmp/talentvault-attack.csv").exists()


@pytest.mark.parametrize("session", ["door", "cli_session"])
def test_duckdb_locks_hold_without_the_statement_check(request, root, session):
    """Behind `talentvault sql`'s statement check (and in the duckdb CLI recipe, which has
    none) DuckDB itself refuses: no host file, no URL, no extension, no loosened setting."""
    con = request.getfixturevalue(session)
    for query in host_reads(root) + WRITES_AND_LOOSENERS + writes_into_backups(root):
        with pytest.raises(duckdb.Error) as e:
            con.execute(query).fetchall()
        assert any(s in str(e.value) for s in REFUSALS), (query, e.value)
    assert not list(root.rglob("injected*"))
    assert not [p for p in root.rglob("*.jsonl") if p.name.startswith("*")]
    assert con.execute("SELECT current_setting('enable_external_access'), "
                       "current_setting('lock_configuration')").fetchone() == (False, True)


@pytest.mark.parametrize("session", ["door", "cli_session"])
def test_every_backup_view_still_answers(request, root, session):
    con = request.getfixturevalue(session)
    plain = open_catalog(root)
    views = [r[0] for r in plain.execute(
        "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal "
        "ORDER BY 1").fetchall()]
    assert {"keap.contacts", "keap.contacts_history", "identity.candidate_profiles",
            "sync.ledger", "sync.dead_letter", "sync.keap_rejects", "audit.events",
            "webhooks.events", "webhooks.deletions"} <= set(views)
    for view in views:     # the trail grows with each query; the door shows it as it opened
        count = f"SELECT count(*) FROM {view}"
        if view == "audit.events":
            assert con.execute(count).fetchone()[0] >= 1
        else:
            assert con.execute(count).fetchone() == plain.execute(count).fetchone(), view
    assert con.execute("SELECT count(*) FROM keap.contacts_as_of('2026-01-05T12:00:00Z')"
                       ).fetchone() == (7,)


def test_a_host_read_exits_non_zero_with_one_clear_line(root):
    out = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "sql", "SELECT * FROM read_csv('/etc/passwd')"],
        env={**os.environ, "TALENTVAULT_DATA_DIR": str(root)},
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert "root:" not in out.stderr and "Traceback" not in out.stderr
    assert "reads only the backup files" in out.stderr, out.stderr


def test_duckdb_init_writes_the_locked_recipe(env, tmp_path):
    target = tmp_path / "talentvault.sql"
    assert sqlcli.write_init_script(target) == 0
    con = duckdb.connect()
    con.execute(target.read_text())
    assert con.execute("SELECT count(*) FROM keap.contacts").fetchone() == (7,)
    with pytest.raises(duckdb.PermissionException):
        con.execute("SELECT * FROM read_text('/etc/passwd')")
    assert sqlcli.write_init_script(env / "talentvault.sql") == 2   # never into the data root


def test_the_python_recipe_is_locked_and_leaves_a_trail(root):
    con = sql_door.locked_connection(root)
    assert con.execute("SELECT count(*) FROM keap.contacts").fetchone() == (7,)
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"SELECT * FROM read_text('{root / SECRET_FILES[0]}')")
    sessions = open_catalog(root).execute(
        "SELECT details FROM audit.events WHERE action = 'sql_session'").fetchall()
    assert '{"via": "python"}' in [d for (d,) in sessions]


def test_a_view_naming_a_secret_does_not_open_it(root, monkeypatch):
    """Even a (future) view over `state/` reads nothing there through the door."""
    salt = root / SECRET_FILES[0]
    statements = sql_door.catalog_statements(root) + [
        f"CREATE VIEW keap.leak AS SELECT * FROM read_text('{salt}')",
        f"CREATE VIEW keap.leak_glob AS SELECT * FROM read_text('{root}/state/*')"]
    monkeypatch.setattr(sql_door, "catalog_statements", lambda _root: statements)
    _, files = sql_door.pinned_statements(root)
    assert files and not [f for f in files if "/state/" in f]
    with pytest.raises(duckdb.PermissionException):
        sql_door.connect(root)
