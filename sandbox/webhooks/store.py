"""Webhook subscriptions and the change outbox, kept in the world file (`world.db`).

Every process that writes the world (the server's API handlers, `talentvault sandbox tick` in
another process, tests writing the store directly) must have its changes emitted exactly once.
So changes are caught by SQLite itself: while at least one hook is configured, triggers on
`records` (insert or replace) and on `tombstones` (a delete) copy each change of a watched entity
into `webhook_outbox`, in the same transaction as the change. The server's delivery worker claims
outbox rows (select + delete in one write transaction, so two servers on one world never share a
row) and turns them into vendor events.

With no hook configured there are no triggers at all: writes cost exactly what they cost before.
`Store.wipe` (init, load, the tests' fresh worlds) removes hooks, outbox and triggers.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sandbox.store import Store, iso

# the entities whose changes vendors announce by webhook
WATCHED: dict[str, tuple[str, ...]] = {
    "greenhouse": ("candidates", "applications", "offers", "jobs"),
    "keap": ("contacts", "notes", "tasks", "opportunities", "companies"),
    "highlevel": ("contacts", "opportunities", "notes", "tasks", "appointments"),
}
SOURCES = tuple(WATCHED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_hooks (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,      -- Keap: the hook key, Greenhouse / HighLevel: 'default'
    event      TEXT,               -- Keap: the eventKey, others: NULL (every event)
    url        TEXT NOT NULL,
    secret     TEXT,               -- Greenhouse HMAC secret / Keap X-Hook-Secret
    status     TEXT NOT NULL,      -- Verified | Unverified | Inactive (Keap), Active (others)
    api_base   TEXT,               -- the sandbox base URL the hook was created through
    created_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_outbox (
    n           INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    id          TEXT NOT NULL,
    op          TEXT NOT NULL,     -- add | edit | delete
    at          TEXT NOT NULL,     -- the record's update time / the deletion time
    before      TEXT,              -- the doc before the change (edit, delete)
    after       TEXT,              -- the doc after the change (add, edit)
    merged_into TEXT
);
"""
TRIGGERS = ("webhook_record_write", "webhook_record_delete")


@dataclass(frozen=True)
class Hook:
    source: str
    key: str
    event: str | None
    url: str
    secret: str | None
    status: str
    api_base: str | None
    created_at: str


@dataclass(frozen=True)
class Change:
    n: int
    source: str
    entity: str
    id: str
    op: str
    at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    merged_into: str | None


def ensure_schema(store: Store) -> None:
    # statement by statement: executescript would commit a surrounding transaction
    for statement in SCHEMA.split(";"):
        if statement.strip():
            store.conn.execute(statement)


def has_tables(store: Store) -> bool:
    return store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_hooks'"
    ).fetchone() is not None


def hooks(store: Store, source: str | None = None) -> list[Hook]:
    if not has_tables(store):
        return []
    sql = "SELECT source, key, event, url, secret, status, api_base, created_at FROM webhook_hooks"
    args: tuple = ()
    if source:
        sql += " WHERE source = ?"
        args = (source,)
    return [Hook(*r) for r in store.conn.execute(sql + " ORDER BY source, created_at, key", args)]


def get_hook(store: Store, source: str, key: str) -> Hook | None:
    if not has_tables(store):
        return None
    r = store.conn.execute(
        "SELECT source, key, event, url, secret, status, api_base, created_at FROM webhook_hooks"
        " WHERE source = ? AND key = ?", (source, key)).fetchone()
    return Hook(*r) if r else None


def put_hook(store: Store, hook: Hook) -> None:
    """Create or replace a hook and (re)install the triggers for the configured sources."""
    if hook.source not in WATCHED:
        raise ValueError(f"unknown webhook source {hook.source!r}: one of {', '.join(WATCHED)}")
    with store.transaction():
        ensure_schema(store)
        store.conn.execute(
            "INSERT OR REPLACE INTO webhook_hooks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (hook.source, hook.key, hook.event, hook.url, hook.secret, hook.status,
             hook.api_base, hook.created_at))
        install_triggers(store)


def set_status(store: Store, source: str, key: str, status: str) -> None:
    with store.transaction():
        if has_tables(store):
            store.conn.execute("UPDATE webhook_hooks SET status = ? WHERE source = ? AND key = ?",
                               (status, source, key))


def delete_hook(store: Store, source: str, key: str) -> bool:
    with store.transaction():
        if not has_tables(store):
            return False
        n = store.conn.execute("DELETE FROM webhook_hooks WHERE source = ? AND key = ?",
                               (source, key)).rowcount
        install_triggers(store)
    return n > 0


def new_key() -> str:
    return secrets.token_hex(8)


def install_triggers(store: Store) -> None:
    """Triggers for exactly the sources that have a hook; none when there is no hook.

    Call inside a transaction. Dropping the triggers when the last hook goes also empties the
    outbox of that source's pending changes (nobody is listening any more)."""
    for name in TRIGGERS:
        store.conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    configured = [r[0] for r in store.conn.execute("SELECT DISTINCT source FROM webhook_hooks")]
    if not configured:
        store.conn.execute("DELETE FROM webhook_outbox")
        return
    cond = " OR ".join(
        f"(NEW.source = '{s}' AND NEW.entity IN ({', '.join(repr(e) for e in WATCHED[s])}))"
        for s in sorted(configured) if s in WATCHED)
    if not cond:
        return
    same = "source = NEW.source AND entity = NEW.entity AND id = NEW.id"
    # BEFORE INSERT sees the row an INSERT OR REPLACE is about to replace: add vs edit + before
    store.conn.execute(f"""
        CREATE TRIGGER webhook_record_write BEFORE INSERT ON records WHEN {cond}
        BEGIN
            INSERT INTO webhook_outbox (source, entity, id, op, at, before, after)
            VALUES (NEW.source, NEW.entity, NEW.id,
                    CASE WHEN EXISTS (SELECT 1 FROM records WHERE {same}) THEN 'edit'
                         ELSE 'add' END,
                    NEW.updated_at, (SELECT doc FROM records WHERE {same}), NEW.doc);
        END""")
    store.conn.execute(f"""
        CREATE TRIGGER webhook_record_delete AFTER INSERT ON tombstones WHEN {cond}
        BEGIN
            INSERT INTO webhook_outbox (source, entity, id, op, at, before, merged_into)
            VALUES (NEW.source, NEW.entity, NEW.id, 'delete', NEW.deleted_at, NEW.doc,
                    NEW.merged_into);
        END""")


def claim(store: Store, limit: int = 5000) -> list[Change]:
    """Take (and remove) the oldest pending changes, in change order."""
    if not has_tables(store):
        return []
    with store.transaction():
        rows = store.conn.execute(
            "SELECT n, source, entity, id, op, at, before, after, merged_into FROM webhook_outbox"
            " ORDER BY n LIMIT ?", (limit,)).fetchall()
        if rows:
            store.conn.execute("DELETE FROM webhook_outbox WHERE n <= ?", (rows[-1][0],))
    return [Change(r[0], r[1], r[2], r[3], r[4], r[5],
                   json.loads(r[6]) if r[6] else None, json.loads(r[7]) if r[7] else None, r[8])
            for r in rows]


def pending(store: Store) -> int:
    if not has_tables(store):
        return 0
    return store.conn.execute("SELECT count(*) FROM webhook_outbox").fetchone()[0]


def now_iso(store: Store) -> str:
    return iso(store.now())
