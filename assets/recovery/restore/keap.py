"""Applying a restore plan to Keap: deletes, recreations, field updates, then tags.

A recreated contact is created without a duplicate option: Keap accounts hold duplicates (two
contacts with one address), and matching by e-mail would overwrite the surviving twin instead of
bringing back the deleted one. A create tried before whose reply was lost is looked for first
and adopted instead of created twice (a write tried before includes one a killed run had only
started: see apply.py): the API is asked for the contacts holding its primary address
(`filter=email==`; the apply's own live read may hold only the selected ids, never the contact
the lost create made), and the one whose primary address it is, created since the preview (the
plan's live watermark, the vendor's clock), that no backup record is matched to and this run
has not adopted yet, is taken.

Its tags follow through the tag endpoints, batched per tag (Keap takes up to 1,000 contacts a
call), one write per contact and tag with an id derived from the backup id and the tag: a re-run
after a run killed in the tag phase derives the same writes for every contact the plan recreated
(in any run), skips the ones that succeeded and sends the rest again (applying a tag a contact
has is answered DUPLICATE, a success). A tag that no longer exists in Keap is created again
under its backed-up name.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import duckdb

from assets.recovery.restore.fields import SPECS
from assets.recovery.restore.keap_config import KeapMaps, create_keap_config, custom_fields_to_live
from assets.recovery.restore.ledger import PERMANENT, RETRYABLE, SUCCEEDED
from assets.recovery.restore.live import keap_contacts_with_email
from assets.recovery.restore.runner import Runner, Write, clean, per_record, values, write_id
from orchestration.http import ApiError
from orchestration.times import parse_ts

if TYPE_CHECKING:
    from orchestration.resources.keap import KeapClient

SPEC = SPECS["keap"]
# array fields: an update sends [] for "no value", not null
KEAP_ARRAYS = ("email_addresses", "phone_numbers", "addresses", "fax_numbers",
               "social_accounts", "custom_fields")


def apply_keap(con: duckdb.DuckDBPyConnection, client: KeapClient, runner: Runner,
               since: str) -> None:
    """`since`: a time (the vendor's clock) before this plan's first write (its preview)."""
    rows = con.execute("SELECT change_id, action, backup_id, live_id, field, new_value, tag "
                       "FROM todo WHERE entity = 'contacts' ORDER BY backup_id, live_id, "
                       "field, tag").fetchall()
    by_action: dict[str, list[tuple]] = defaultdict(list)
    for r in rows:
        by_action[r[1]].append(r)
    # configuration first (keap_config.py): categories, tags, custom fields; the contacts and
    # tags written below name them by their live ids
    maps = create_keap_config(con, client, runner)
    runner.run([_delete(client, r) for r in by_action["delete"]])
    created = _create(con, client, runner, by_action["create"], since, maps)
    runner.run(_updates(client, by_action["update"], maps))
    # contacts an earlier run of this plan recreated: their create is done (the fresh diff
    # matches them), but a run killed in the tag phase left some of their tags unwritten; the
    # same tag writes (same ids) are derived again, the ones that succeeded are skipped
    of_created = _tags_of_created(con, {**_created_before(con, runner), **created})
    # the diff also lists tags of contacts an earlier run recreated: one write per contact/tag
    known = {(a, live, t) for _, a, _, live, t in of_created}
    tags = [(r[0], r[1], r[2], r[3], r[6]) for r in by_action["tag_add"] + by_action["tag_remove"]
            if (r[1], r[3], r[6]) not in known]
    tags += of_created
    _tags(con, client, runner, tags, maps)


def _delete(client: KeapClient, r: tuple) -> Write:
    live_id = r[3]

    def call() -> str:
        client.delete_contact(live_id)
        return live_id
    return Write(r[0], "contacts", "delete", None, live_id, [], call)


def _create(con: duckdb.DuckDBPyConnection, client: KeapClient, runner: Runner,
            rows: list[tuple], since: str, maps: KeapMaps) -> dict[str, str]:
    """Recreate contacts; returns backup id -> new live id (this run's and earlier runs')."""
    docs = values(con, "backup_all", [r[2] for r in rows], SPEC.fields)
    # live contacts a backup record is matched to (by id or through the ledger): never "ours"
    mapped = {r[0] for r in con.execute("SELECT live_id FROM twin").fetchall()}
    lookup, adopted = threading.Lock(), set()
    writes = []
    for change_id, _, backup_id, *_ in rows:
        body = docs.get(backup_id)
        if body is None:
            continue
        body = custom_fields_to_live(body, maps)

        def call(body: dict = body, wid: str = change_id) -> str:
            if runner.tried_before(wid):
                with lookup:
                    twin = _made_by_lost_reply(client, body, mapped | adopted, since)
                    if twin:
                        adopted.add(twin)
                if twin:
                    client.update_contact(twin, body, update_mask=sorted(body))
                    return twin
            return str(client.create_contact(body)["id"])
        writes.append(Write(change_id, "contacts", "create", backup_id, None,
                            sorted(body), call))
    results = runner.run(writes)
    return {w.backup_id: results[w.write_id] for w in writes
            if results.get(w.write_id) and w.backup_id}


def _made_by_lost_reply(client: KeapClient, body: dict, taken: set[str], since: str) -> str | None:
    """The contact an earlier, killed attempt of this create made: read through the API by the
    body's primary address (EMAIL1 sorts first; sent trimmed, as Keap stores it), a contact
    whose primary address it is, created at or after `since`, that is not `taken` (matched to
    a backup record, or adopted by this run: two backed-up twins share one address). The
    newest such contact, or None."""
    emails = [e["email"] for e in body.get("email_addresses") or [] if e.get("email")]
    if not emails:
        return None
    wanted, after = emails[0].strip().lower(), parse_ts(since)
    found = []
    for c in keap_contacts_with_email(client, emails[0]):
        addresses = sorted(c.get("email_addresses") or [], key=lambda e: e.get("field") != "EMAIL1")
        primary = (addresses[0].get("email") or "").strip().lower() if addresses else ""
        created = c.get("create_time")
        if (primary == wanted and str(c["id"]) not in taken and created
                and parse_ts(created) >= after):
            found.append(str(c["id"]))
    return max(found, key=int) if found else None


def _updates(client: KeapClient, rows: list[tuple], maps: KeapMaps) -> list[Write]:
    writes = []
    for (backup_id, live_id), items in per_record(rows, 2).items():
        body: dict[str, Any] = {}
        for _, _, _, _, name, new_value, _ in items:
            value = _parse(new_value)
            body[name] = [] if value is None and name in KEAP_ARRAYS else value
        body = custom_fields_to_live(body, maps)
        mask = sorted(body)

        def call(body: dict = body, mask: list = mask, live_id: str = live_id) -> str:
            client.update_contact(live_id, body, update_mask=mask)
            return live_id
        wid = write_id("update", *sorted(i[0] for i in items))
        writes.append(Write(wid, "contacts", "update", backup_id, live_id, mask, call))
    return writes


def _parse(text: str | None) -> Any:
    return None if text is None else clean(json.loads(text))


def _created_before(con: duckdb.DuckDBPyConnection, runner: Runner) -> dict[str, str]:
    """Backup id -> live id of contacts this plan recreated in an earlier run (still live)."""
    return dict(con.execute("""
        SELECT backup_id, arg_max(live_id, "at") FROM restore_ledger
        WHERE plan_id = ? AND entity = 'contacts' AND action = 'create'
          AND status = 'succeeded' AND backup_id IS NOT NULL AND live_id IS NOT NULL
          AND live_id IN (SELECT id FROM live_all)
        GROUP BY backup_id""", [runner.ledger.plan_id]).fetchall())


def _tags_of_created(con: duckdb.DuckDBPyConnection, created: dict[str, str]
                     ) -> list[tuple]:
    if not created:
        return []
    rows = con.execute(f"SELECT id, {SPEC.tags_sql} FROM backup_all "
                       "WHERE id IN (SELECT unnest(?))", [sorted(created)]).fetchall()
    return [(write_id("create-tag", b, t), "tag_add", b, created[b], t)
            for b, tags in rows for t in tags]


def _tags(con: duckdb.DuckDBPyConnection, client: KeapClient, runner: Runner,
          rows: list[tuple], maps: KeapMaps) -> None:
    """Tag adds/removes batched per tag; one ledger row per contact and tag."""
    pending = [r for r in rows if r[0] not in runner.done]
    runner.skipped += len(rows) - len(pending)
    if not pending:
        return
    # the backup's tags by their live ids (recreated ones included); a backed-up tag whose
    # recreation failed waits (its contacts' writes fail until a re-run recreates it); a tag
    # the configuration backup does not know is created again by name (_ensure_tags)
    unknown = sorted({r[4] for r in pending if r[1] == "tag_add"} - set(maps.tags) - maps.gone)
    tag_ids = {**maps.tags, **_ensure_tags(con, client, unknown)}
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for r in pending:
        groups[(r[1], r[4])].append(r)
    for (action, tag), items in sorted(groups.items()):
        writes = {r[3]: Write(r[0], "contacts", action, r[2], r[3], [], lambda: None, tag=tag)
                  for r in items}
        live_tag = tag_ids.get(tag, tag)
        if action == "tag_add" and tag in maps.gone:
            for w in writes.values():
                runner.record_outcome(w, RETRYABLE, f"tag {tag} not recreated yet (see its "
                                      "`tags` create in the ledger); apply the plan again")
            continue
        runner.start(list(writes.values()))
        try:
            if action == "tag_add":
                results = client.apply_tags(live_tag, sorted(writes))
            else:
                client.remove_tags(live_tag, sorted(writes))
                results = {cid: "SUCCESS" for cid in writes}
        except ApiError as e:
            status = RETRYABLE if e.retryable else PERMANENT
            for w in writes.values():
                runner.record_outcome(w, status, f"HTTP {e.status} on tag {tag}", e.status)
            continue
        for cid, w in writes.items():
            result = results.get(cid, "SUCCESS")
            if result in ("SUCCESS", "DUPLICATE"):
                runner.record_outcome(w, SUCCEEDED)
            else:
                runner.record_outcome(w, PERMANENT, f"Keap answered {result} for tag {tag}")


def _ensure_tags(con: duckdb.DuckDBPyConnection, client: KeapClient, wanted: list[str]
                 ) -> dict[str, str]:
    """Tag id in the backup -> tag id in Keap: the same, or a tag created again by name."""
    if not wanted:
        return {}
    live = {str(t["id"]) for page in client.tag_pages() for t in page}
    missing = [t for t in wanted if t not in live]
    out = {t: t for t in wanted if t in live}
    if missing:
        try:
            names = dict(con.execute(
                "SELECT id, arg_max(name, _source_updated_at) FROM keap.tags_history "
                "WHERE id IN (SELECT unnest(?)) GROUP BY id", [missing]).fetchall())
        except duckdb.CatalogException:
            names = {}
        for tag in missing:
            if tag in names:
                out[tag] = str(client.create_tag(names[tag])["id"])
    return out
