"""Applying a restore plan's notes and tasks (restore/children.py), after every contact write.

Per kind (notes, then tasks): deletes (delete-new), recreations, updates. A recreated note or
task goes to its contact's live id: the new id of a contact this plan recreated (its `create`
row in the ledger, this run's included: the write-ahead log is read again here), else the
contact's own live id; one whose contact has no live id yet (its create failed this run) is left
for the next run. Updates go through the record's current contact (Keap notes and HighLevel
children are addressed under it) and send only the fields that differ (Keap: `update_mask`;
a Keap note also carries its backed-up author as `user_id`, which the API requires).

A create is not idempotent. One tried before whose reply was lost (a killed run's `started` row,
or a failure) is looked for before it is sent again: the live notes or tasks of its contact
(one listing call), the one with the same title and text / body (tasks: and due time), created
at or after the preview (the plan's live watermark, the vendor's clock; HighLevel tasks carry no
time, so any), that no backup record is matched to and this run has not adopted yet, is adopted:
its id is recorded as the recreation's, and the next preview matches it through the ledger.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from assets.recovery.restore.children import KINDS, Kind, children_of, rel
from assets.recovery.restore.ledger import ledger_relation
from assets.recovery.restore.runner import Runner, Write, clean, per_record, values, write_id
from orchestration.times import parse_ts

if TYPE_CHECKING:
    from orchestration.resources import CrmClient

CREATED_KEY = {"keap": "create_time", "highlevel": "dateAdded"}
TIMES = ("due_time", "dueDate", "completion_time")
# Keap note author: required by createNote and updateNote (`user_id`)
AUTHOR = ("coalesce(json_extract_string(_raw, '$.assigned_to_user.id'), "
          "json_extract_string(_raw, '$.created_by_user_id'))")


def apply_children(con: duckdb.DuckDBPyConnection, root: Path, client: CrmClient,
                   runner: Runner, source: str, since: str) -> None:
    rows = con.execute("SELECT change_id, entity, action, backup_id, live_id, field, new_value, "
                       "parent_backup_id FROM todo WHERE entity IN ('notes', 'tasks') "
                       "ORDER BY entity, backup_id, live_id, field").fetchall()
    if not rows:
        return
    ledger_relation(con, root)          # this run's contact creates are in its write-ahead log
    parents = dict(con.execute("""
        SELECT t.backup_id, coalesce(n.live_id, CASE WHEN t.live_id IN (SELECT id FROM live_all)
                                                     THEN t.live_id END)
        FROM twin t LEFT JOIN (
            SELECT backup_id, arg_max(live_id, "at") AS live_id FROM restore_ledger
            WHERE plan_id = ? AND entity = 'contacts' AND action = 'create'
              AND status = 'succeeded' AND live_id IS NOT NULL GROUP BY backup_id) n
          ON n.backup_id = t.backup_id""", [runner.ledger.plan_id]).fetchall())
    for kind in KINDS[source]:
        mine = [r for r in rows if r[1] == kind.entity]
        if mine:
            writer = _Writer(con, client, runner, kind, parents, since)
            runner.run([writer.delete(r) for r in mine if r[2] == "delete"])
            runner.run(writer.creates([r for r in mine if r[2] == "create"]))
            runner.run(writer.updates([r for r in mine if r[2] == "update"]))


class _Writer:
    def __init__(self, con: duckdb.DuckDBPyConnection, client: CrmClient, runner: Runner,
                 kind: Kind, parents: dict[str, str | None], since: str):
        self.con, self.client, self.runner, self.kind = con, client, runner, kind
        self.parents, self.since = parents, since
        e = kind.entity
        # the live contact each live note or task is on now
        self.live_parent = dict(con.execute("SELECT id, parent_live_id FROM child_live WHERE "
                                            "entity = ?", [e]).fetchall())
        self.authors = dict(con.execute(f"SELECT id, {AUTHOR} FROM child_backup WHERE entity "
                                        "= ?", [e]).fetchall()) if kind.source == "keap" else {}
        # live records a backup record is matched to: never taken for a lost create
        self.taken = {r[0] for r in con.execute(
            "SELECT coalesce(im.live_id, b.id) FROM child_backup b LEFT JOIN restore_idmap im "
            "ON im.source = ? AND im.entity = ? AND im.backup_id = b.id WHERE b.entity = ?",
            [kind.source, e, e]).fetchall()}
        self.lock = threading.Lock()

    # -- the calls ------------------------------------------------------------------------------
    def _create(self, parent: str | None, body: dict[str, Any]) -> str:
        k, c = self.kind, self.client
        if k.source == "highlevel":
            return str(c.create_child(parent, k.entity, body)["id"])
        if k.entity == "notes":
            return str(c.create_note(parent, body)["id"])
        return str(c.create_task({**body, **({"contact_id": parent} if parent else {})})["id"])

    def _update(self, live_id: str, body: dict[str, Any]) -> None:
        k, c, at = self.kind, self.client, self.live_parent.get(live_id)
        if k.source == "highlevel":
            c.update_child(at, k.entity, live_id, body)
        elif k.entity == "notes":
            c.update_note(at, live_id, body, [f for f in body if f != "user_id"])
        else:
            c.update_task(live_id, body, sorted(body))

    def _remove(self, live_id: str) -> None:
        k, c, at = self.kind, self.client, self.live_parent.get(live_id)
        if k.source == "highlevel":
            c.delete_child(at, k.entity, live_id)
        elif k.entity == "notes":
            c.delete_note(at, live_id)
        else:
            c.delete_task(live_id)

    # -- the writes -----------------------------------------------------------------------------
    def delete(self, r: tuple) -> Write:
        def call(live_id: str = r[4]) -> str:
            self._remove(live_id)
            return live_id
        return Write(r[0], self.kind.entity, "delete", None, r[4], [], call)

    def creates(self, rows: list[tuple]) -> list[Write]:
        e = self.kind.entity
        docs = values(self.con, rel("child_backup", e), [r[3] for r in rows], self.kind.fields)
        writes = []
        for wid, _, _, backup_id, _, _, _, parent_backup in rows:
            body = docs.get(backup_id)
            parent = self.parents.get(parent_backup) if parent_backup else None
            if body is None or (parent_backup and not parent):
                continue     # its contact has no live id yet (its create failed): next run
            if self.authors.get(backup_id):
                body = {**body, "user_id": self.authors[backup_id]}

            def call(body: dict = body, parent: str | None = parent, wid: str = wid) -> str:
                if parent and self.runner.tried_before(wid):
                    with self.lock:
                        found = self._made_by_lost_reply(parent, body)
                    if found:
                        return found
                new_id = self._create(parent, body)
                with self.lock:
                    self.taken.add(new_id)
                return new_id
            writes.append(Write(wid, e, "create", backup_id, None, sorted(body), call))
        return writes

    def _made_by_lost_reply(self, parent: str, body: dict[str, Any]) -> str | None:
        """The record an earlier, killed attempt of this create made on `parent`, or None."""
        k = self.kind
        after = parse_ts(self.since)
        for c in sorted(children_of(self.client, k, parent), key=lambda c: str(c["id"])):
            cid, made = str(c["id"]), c.get(CREATED_KEY[k.source])
            if cid in self.taken or (k.created and not (made and parse_ts(made) >= after)):
                continue
            if all(_same(key, c.get(key), body.get(key)) for key in k.match):
                self.taken.add(cid)
                return cid
        return None

    def updates(self, rows: list[tuple]) -> list[Write]:
        writes = []
        for (backup_id, live_id), items in per_record(rows, 3).items():
            body: dict[str, Any] = {}
            for r in items:
                body[r[5]] = self._value(r[5], r[6])
            if "contact_id" in body:
                body["contact_id"] = self.parents.get(body["contact_id"])
                if not body["contact_id"]:
                    continue     # its contact has no live id yet: next run
            fields = sorted(body)
            if self.authors.get(backup_id) and self.kind.entity == "notes":
                body["user_id"] = self.authors[backup_id]

            def call(body: dict = body, live_id: str = live_id) -> str:
                self._update(live_id, body)
                return live_id
            wid = write_id("update", *sorted(i[0] for i in items))
            writes.append(Write(wid, self.kind.entity, "update", backup_id, live_id, fields,
                                call))
        return writes

    def _value(self, name: str, new_value: str | None) -> Any:
        """What to send to set a field to its restored value: an empty list of custom fields
        resets them (Keap); HighLevel takes "" (not null) to clear a text."""
        value = None if new_value is None else clean(json.loads(new_value))
        if value is None and name == "custom_fields":
            return []
        if value is None and self.kind.source == "highlevel":
            return ""
        return value


def _same(key: str, live: Any, sent: Any) -> bool:
    if key in TIMES and live and sent:
        return parse_ts(str(live)) == parse_ts(str(sent))
    return (live or None) == (sent or None)
