"""Notes and tasks in a restore: a contact's children, compared and put back after the contacts.

What the vendors' APIs can write decides what comes back (specs/keap/keap-rest-v2.openapi.yml,
specs/highlevel/contacts.json):

- Keap notes (`/contacts/{contact_id}/notes`): title, text, type, pinned, custom fields are
  created (`user_id`, required, is the backed-up author) and updated (PATCH, `update_mask`); a
  note moved to another contact is moved back (`contact_id`). Not writable: create/update times,
  who last edited it, when it was pinned (the pin itself comes back).
- Keap tasks (`/tasks`): title, description, type, priority, completion (`completed` and its
  `completion_time`), due time, reminder, assignee, opportunity, accepted, custom fields, the
  contact. A task's completion time is compared only while it is completed (Keap keeps the time
  of a task marked not done again). Not writable: create/modification times, the creator.
- HighLevel notes (`/contacts/{contactId}/notes`): body, title, colour, pinned, author
  (`userId`); `dateAdded` is not writable (a recreated note is dated when it is recreated).
- HighLevel tasks (`/contacts/{contactId}/tasks`): title, body, due date, completed, assignee,
  all writable. A task carries no time at all, so one added after T cannot be told from one the
  backup never saw: `delete-new` never deletes a HighLevel task (counted, not deleted).

Matching: a backup note or task's live twin has its id, or the id an earlier restore gave it
(the ledger's `restore_idmap`, entity `notes` / `tasks`). One without a live twin is recreated
(new id) on its contact's live id: the contact's own, or the new id of a contact recreated in
the same plan (the apply writes children after the contacts and reads their new ids from the
ledger). One whose contact is gone and not recreated by the plan cannot come back: counted
(`notes_without_contact`) and named. HighLevel notes and tasks cannot move between contacts.

Selections and modes: the notes and tasks of the selected contacts follow the contacts' modes
(create-missing, update-existing, delete-new: a live child created after T, on a selected
contact, unknown to the backup); `--fields` restores them only when it names `notes` / `tasks`;
Keap tasks without a contact only in a restore of everything. A kind that was never backed up
is not compared (the preview says so). Live reads: the children of the selected live contacts
that have backed-up children (of every selected contact with `delete-new`): Keap one listing
per contact up to KEAP_PER_CONTACT_MAX contacts, else the account's whole listing; HighLevel one
unpaged call per contact and kind (it has no other listing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from assets.recovery.restore.diff import COLUMNS, insert_changes, long_values, record_hash
from assets.recovery.restore.fields import Field, objects, text
from assets.recovery.restore.live import table

if TYPE_CHECKING:
    from orchestration.resources import CrmClient

KEAP_PER_CONTACT_MAX = 50   # above this many contacts, one listing of the account is cheaper
SHOWN = 20                  # children named per kind in the preview


def exact(name: str, personal: bool = True) -> Field:
    """Text as stored: notes keep their whitespace (neither vendor trims a note)."""
    return Field(name, f"to_json(nullif(json_extract_string(_raw, '$.\"{name}\"'), ''))",
                 personal)


def flag(name: str, sql: str | None = None) -> Field:
    value = sql or f"TRY_CAST(json_extract(_raw, '$.\"{name}\"') AS BOOLEAN)"
    return Field(name, f"to_json(coalesce({value}, false))", False)


def ts(name: str, when: str = "true") -> Field:
    """A time, compared and sent as UTC with milliseconds (`when`: only if this holds)."""
    value = f"TRY_CAST(json_extract_string(_raw, '$.\"{name}\"') AS TIMESTAMPTZ)"
    return Field(name, f"CASE WHEN {when} THEN to_json(strftime(timezone('UTC', {value}), "
                       f"'%Y-%m-%dT%H:%M:%S.%gZ')) END", False)


def number(name: str) -> Field:
    return Field(name, f"to_json(TRY_CAST(json_extract(_raw, '$.\"{name}\"') AS BIGINT))", False)


KEAP_CUSTOM = objects("custom_fields", '{"id": "VARCHAR", "content": "JSON"}',
                      where="tv_is_value(x.content)")
KEAP_DONE = "coalesce(TRY_CAST(json_extract(_raw, '$.completed') AS BOOLEAN), false)"


@dataclass(frozen=True)
class Kind:
    """One kind of a contact's children on one vendor."""

    source: str
    entity: str                  # notes | tasks (the backup entity and the ledger's)
    fields: tuple[Field, ...]    # compared and written, in this order (the record hash)
    parent: str                  # the contact id, from `_raw`
    created: str | None          # the creation time from `_raw` (None: the vendor has none)
    match: tuple[str, ...]       # what finds a create whose reply was lost
    moves: bool                  # the API can move it to another contact (`contact_id`)
    kept_out: str                # what the API cannot write back (the preview says it)

    @property
    def label(self) -> str:
        return f"{'Keap' if self.source == 'keap' else 'HighLevel'} {self.entity}"


def _created(path: str) -> str:
    return f"TRY_CAST(json_extract_string(_raw, '$.{path}') AS TIMESTAMPTZ)"


KINDS: dict[str, tuple[Kind, ...]] = {
    "keap": (
        Kind("keap", "notes", (exact("title"), exact("text"), text("type", personal=False),
                               flag("is_pinned", "json_extract_string(_raw, '$.pinned_at') "
                                    "IS NOT NULL"), KEAP_CUSTOM),
             "json_extract_string(_raw, '$.contact_id')", _created("create_time"),
             ("title", "text"), True,
             "create and update times, who last edited it, when it was pinned"),
        Kind("keap", "tasks", (exact("title"), exact("description"),
                               *(text(n, personal=False) for n in ("type", "priority")),
                               flag("completed"), ts("completion_time", KEAP_DONE),
                               ts("due_time"), number("remind_time_mins"),
                               *(text(n, personal=False) for n in ("assigned_to_user_id",
                                                                   "opportunity_id")),
                               flag("accepted"), KEAP_CUSTOM),
             "json_extract_string(_raw, '$.contact_id')", _created("create_time"),
             ("title", "description", "due_time"), True,
             "create and modification times, its creator"),
    ),
    "highlevel": (
        Kind("highlevel", "notes", (exact("body"), exact("title"),
                                    text("color", personal=False), flag("pinned"),
                                    text("userId", personal=False)),
             "json_extract_string(_raw, '$.contactId')", _created("dateAdded"),
             ("body", "title"), False, "`dateAdded` (a recreated note is dated now)"),
        Kind("highlevel", "tasks", (exact("title"), exact("body"), ts("dueDate"),
                                    flag("completed"), text("assignedTo", personal=False)),
             "json_extract_string(_raw, '$.contactId')", None,
             ("title", "body", "dueDate"), False,
             "nothing else: a task has no time of its own; with none, one added after T cannot "
             "be told from one the backup never saw, so delete-new never deletes tasks"),
    ),
}
KIND_DDL = {
    "child_backup": "entity VARCHAR, id VARCHAR, parent_backup_id VARCHAR, _raw VARCHAR",
    "child_live": "entity VARCHAR, id VARCHAR, parent_live_id VARCHAR, created_at TIMESTAMPTZ, "
                  "_source_updated_at TIMESTAMPTZ, live_version VARCHAR, _raw VARCHAR",
    "child_pairs": "entity VARCHAR, backup_id VARCHAR, live_id VARCHAR, "
                   "parent_backup_id VARCHAR, alive BOOLEAN, live_updated_at TIMESTAMPTZ, "
                   "live_version VARCHAR, live_parent VARCHAR, parent_live_id VARCHAR, "
                   "parent_alive BOOLEAN, parent_created BOOLEAN",
}


def kind_of(source: str, entity: str) -> Kind:
    return next(k for k in KINDS[source] if k.entity == entity)


def rel(table_name: str, entity: str) -> str:
    return f"(SELECT * FROM {table_name} WHERE entity = '{entity}') AS r"


def _backed_up(con: duckdb.DuckDBPyConnection, source: str, entity: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND "
                            "view_name = ?", [source, entity]).fetchone()[0])


# -- preview (and the apply's fresh diff) ------------------------------------------------------
def child_changes(con: duckdb.DuckDBPyConnection, client: CrmClient, source: str, as_of: str,
                  modes: set[str], fields: list[str] | None, everything: bool
                  ) -> dict[str, int]:
    """Read the live children, diff them against the backup as of T into `changes`.

    Needs `backup_all`, `backup_sel`, `live_all`, `sel`, `twin` and the contact changes."""
    for name, ddl in KIND_DDL.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({ddl})")
    counts: dict[str, int] = {}
    for kind in KINDS[source]:
        if fields is not None and kind.entity not in fields:
            continue
        if not _backed_up(con, source, kind.entity):
            counts[f"{kind.entity}_not_backed_up"] = 1
            continue
        parent = kind.parent
        con.execute(f"""INSERT INTO child_backup SELECT '{kind.entity}', CAST(id AS VARCHAR),
            {parent}, CAST(_raw AS VARCHAR)
            FROM {source}.{kind.entity}_as_of(TIMESTAMPTZ '{as_of}')
            WHERE {parent} IN (SELECT id FROM backup_all) OR {parent} IS NULL""")
        _read_live(con, client, kind, modes, everything)
        counts |= _diff(con, kind, as_of, modes, everything)
    return counts


def _read_live(con: duckdb.DuckDBPyConnection, client: CrmClient, kind: Kind, modes: set[str],
               everything: bool) -> None:
    """The live children of the selected contacts that have backed-up ones (every selected
    contact with delete-new), as rows of the backup's schema."""
    wanted = sorted(r[0] for r in con.execute(f"""
        SELECT DISTINCT s.live_id FROM sel s WHERE s.alive AND ({'true' if 'delete-new' in modes
        else 'false'} OR s.backup_id IN (SELECT parent_backup_id FROM child_backup
                                         WHERE entity = '{kind.entity}'))""").fetchall())
    listing = kind.source == "keap" and (everything or len(wanted) > KEAP_PER_CONTACT_MAX)
    if listing:
        pages = client.note_pages() if kind.entity == "notes" else client.task_pages()
    else:
        pages = (children_of(client, kind, cid) for cid in wanted)
    live = table(kind.source, kind.entity, pages)
    con.register("child_arrow", live)
    keep = "true" if everything and kind.source == "keap" else "parent IN (SELECT unnest(?))"
    con.execute(f"""INSERT INTO child_live SELECT * FROM (
        SELECT '{kind.entity}', CAST(id AS VARCHAR), {kind.parent} AS parent,
               {kind.created or 'NULL::TIMESTAMPTZ'}, _source_updated_at,
               md5(CAST(_raw AS VARCHAR)), CAST(_raw AS VARCHAR) FROM child_arrow)
        WHERE {keep}""", [] if keep == "true" else [wanted])
    con.unregister("child_arrow")


def children_of(client: CrmClient, kind: Kind, contact_id: str) -> list[dict[str, Any]]:
    if kind.source == "highlevel":
        return client.contact_children(contact_id, kind.entity) or []
    if kind.entity == "notes":
        return client.contact_notes(contact_id) or []
    return client.contact_tasks(contact_id)


def _diff(con: duckdb.DuckDBPyConnection, kind: Kind, as_of: str, modes: set[str],
          everything: bool) -> dict[str, int]:
    e, src = kind.entity, kind.source
    parentless = "OR b.parent_backup_id IS NULL" if everything else ""
    con.execute(f"""INSERT INTO child_pairs
        SELECT '{e}', b.id, coalesce(im.live_id, b.id), b.parent_backup_id, l.id IS NOT NULL,
               l._source_updated_at, l.live_version, l.parent_live_id, s.live_id,
               coalesce(s.alive, false),
               b.parent_backup_id IN (SELECT backup_id FROM changes
                                      WHERE entity = 'contacts' AND action = 'create')
        FROM (SELECT * FROM child_backup WHERE entity = '{e}') b
        LEFT JOIN restore_idmap im ON im.source = '{src}' AND im.entity = '{e}'
          AND im.backup_id = b.id
        LEFT JOIN child_live l ON l.entity = '{e}' AND l.id = coalesce(im.live_id, b.id)
        LEFT JOIN sel s ON s.backup_id = b.parent_backup_id
        WHERE b.parent_backup_id IN (SELECT id FROM backup_sel) {parentless}""")
    pairs = f"(SELECT * FROM child_pairs WHERE entity = '{e}')"
    cols = COLUMNS + ", live_version"
    if "create-missing" in modes:
        insert_changes(con, src, f"""(SELECT '{e}', 'create', p.backup_id, NULL,
            p.parent_backup_id, NULL, NULL, NULL, {record_hash(kind.fields)}, NULL, NULL,
            NULL::TIMESTAMPTZ, NULL
            FROM {pairs} p JOIN child_backup b ON b.entity = '{e}' AND b.id = p.backup_id
            WHERE NOT p.alive AND (p.parent_alive OR p.parent_created
                                   OR p.parent_backup_id IS NULL))""", cols)
    if "update-existing" in modes:
        insert_changes(con, src, f"""(
            WITH b AS ({long_values(rel('child_backup', e), 'id', kind.fields)}),
                 l AS ({long_values(rel('child_live', e), 'id', kind.fields)})
            SELECT '{e}', 'update', p.backup_id, p.live_id, p.parent_backup_id, b.field,
                   l.value, b.value, md5(coalesce(b.value, '∅')), b.personal, NULL,
                   p.live_updated_at, p.live_version
            FROM {pairs} p JOIN b ON b.rid = p.backup_id
            JOIN l ON l.rid = p.live_id AND l.field = b.field
            WHERE p.alive AND b.value IS DISTINCT FROM l.value)""", cols)
        if kind.moves:      # put back on its contact (the contact's live id, sent at apply)
            insert_changes(con, src, f"""(SELECT '{e}', 'update', p.backup_id, p.live_id,
                p.parent_backup_id, 'contact_id', to_json(p.live_parent),
                to_json(p.parent_backup_id), md5(to_json(p.parent_backup_id)), false, NULL,
                p.live_updated_at, p.live_version
                FROM {pairs} p WHERE p.alive AND p.parent_backup_id IS NOT NULL
                  AND (p.parent_alive OR p.parent_created)
                  AND p.live_parent IS DISTINCT FROM
                      CASE WHEN p.parent_alive THEN p.parent_live_id END)""", cols)
    known = f"""SELECT coalesce(im.live_id, b.id) FROM child_backup b
        LEFT JOIN restore_idmap im ON im.source = '{src}' AND im.entity = '{e}'
          AND im.backup_id = b.id WHERE b.entity = '{e}'"""
    scope = ("l.parent_live_id IN (SELECT live_id FROM sel WHERE alive)"
             + (" OR l.parent_live_id IS NULL" if everything else ""))
    unknown = f"""FROM child_live l WHERE l.entity = '{e}' AND ({scope})
        AND l.id NOT IN ({known})"""
    if "delete-new" in modes and kind.created:
        insert_changes(con, src, f"""(SELECT '{e}', 'delete', NULL, l.id, l.parent_live_id,
            NULL, NULL, NULL, NULL, NULL, NULL, l._source_updated_at, l.live_version
            {unknown} AND l.created_at > TIMESTAMPTZ '{as_of}')""", cols)
    singular = e[:-1]
    out = {f"{e}_without_contact": con.execute(
        f"SELECT count(*) FROM {pairs} WHERE NOT alive AND NOT parent_alive AND NOT "
        "parent_created AND parent_backup_id IS NOT NULL").fetchone()[0]}
    if "delete-new" in modes:
        out[f"{singular}_unknown_before_as_of"] = con.execute(
            f"SELECT count(*) {unknown} AND coalesce(l.created_at <= TIMESTAMPTZ '{as_of}', "
            "true)").fetchone()[0]
    return out


# -- what a person reads -------------------------------------------------------------------------
def child_report(con: duckdb.DuckDBPyConnection, source: str, counts: dict[str, int]
                 ) -> list[str]:
    """Per kind: what comes back, how it is matched, what cannot come back and why."""
    out: list[str] = []
    for kind in KINDS[source]:
        e, one = kind.entity, kind.entity[:-1]
        if counts.get(f"{e}_not_backed_up"):
            out.append(f"- **{kind.label}**: not compared: no backup of `{source}/{e}` (back "
                       "it up to restore them).")
            continue
        compared = con.execute("SELECT count(*) FROM child_backup WHERE entity = ?",
                               [e]).fetchone()[0]
        if not compared and not any(k.startswith(f"{one}_") for k in counts):
            continue
        c = dict(con.execute("SELECT action, count(DISTINCT coalesce(backup_id, live_id)) "
                             "FROM changes WHERE entity = ? GROUP BY ALL", [e]).fetchall())
        on_new = con.execute("""SELECT count(*) FROM changes c WHERE c.entity = ? AND
            c.action = 'create' AND c.parent_backup_id IN (SELECT backup_id FROM changes
            WHERE entity = 'contacts' AND action = 'create')""", [e]).fetchone()[0]
        moved = con.execute("SELECT count(*) FROM changes WHERE entity = ? AND action = "
                            "'update' AND field = 'contact_id'", [e]).fetchone()[0]
        edited = [r[0] for r in con.execute(
            "SELECT DISTINCT field FROM changes WHERE entity = ? AND action = 'update' "
            "ORDER BY 1", [e]).fetchall()]
        parts = []
        if c.get("create"):
            parts.append(f"{c['create']} missing (deleted since T) come back as new {e} "
                         f"(new ids): {c['create'] - on_new} on their contact, {on_new} on the "
                         "new id of a contact this plan recreates")
        if c.get("update"):
            parts.append(f"{c['update']} edited since T are put back to their T values (an "
                         f"update of {', '.join(edited)})" + (
                             f"; {moved} moved back to their contact" if moved else ""))
        if c.get("delete"):
            parts.append(f"{c['delete']} added after T are deleted (delete-new)")
        orphans = counts.get(f"{e}_without_contact", 0)
        if orphans:
            parts.append(f"{orphans} cannot come back: their contact is gone and this plan does "
                         "not recreate it (restore the contact too, e.g. with create-missing)")
        unknown = counts.get(f"{one}_unknown_before_as_of", 0)
        if unknown:
            parts.append(f"{unknown} live {e} unknown to the backup are kept: " + (
                "created before T (or without a creation time)" if kind.created else
                "HighLevel tasks have no creation time"))
        lines = "; ".join(parts) if parts else "nothing to do"
        out.append(f"- **{kind.label}** ({compared} in the backup as of T for the selected "
                   f"contacts; matched by id, or through the ledger for one an earlier restore "
                   f"recreated): {lines}. Not restorable through the API: {kind.kept_out}.")
        out += _named(con, kind, orphans)
    return (["", "### Notes and tasks", ""] + out) if out else []


def _named(con: duckdb.DuckDBPyConnection, kind: Kind, orphans: int) -> list[str]:
    """The recreated ones with the contact they go to, and the ones that cannot come back."""
    rows = con.execute(f"""
        SELECT c.backup_id, c.parent_backup_id,
               CASE WHEN p.parent_created THEN 'the new id of contact ' || c.parent_backup_id
                    WHEN c.parent_backup_id IS NULL THEN 'no contact'
                    ELSE 'contact ' || p.parent_live_id END
        FROM changes c JOIN child_pairs p ON p.entity = c.entity AND p.backup_id = c.backup_id
        WHERE c.entity = ? AND c.action = 'create' ORDER BY 1 LIMIT {SHOWN}""",
                       [kind.entity]).fetchall()
    out = [f"  - {kind.entity[:-1]} `{b}` (contact `{p}` at T) recreated on {where}"
           for b, p, where in rows]
    if orphans:
        gone = con.execute(f"""SELECT backup_id, parent_backup_id FROM child_pairs
            WHERE entity = ? AND NOT alive AND NOT parent_alive AND NOT parent_created
              AND parent_backup_id IS NOT NULL ORDER BY 1 LIMIT {SHOWN}""",
                           [kind.entity]).fetchall()
        out += [f"  - {kind.entity[:-1]} `{b}` not restorable: contact `{p}` is gone"
                for b, p in gone]
    return out


def live_rows_sql() -> str:
    """(entity, id, _source_updated_at, live_version) of the live children read."""
    return "SELECT entity, id, _source_updated_at, live_version FROM child_live"

