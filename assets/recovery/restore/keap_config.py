"""Keap configuration in a restore: tag categories, tags and contact custom fields.

What Keap REST v2 can write decides what comes back (specs/keap/keap-rest-v2.openapi.yml):
- **Tag categories** (`POST /rest/v2/tags/categories`, name and description) deleted since T
  are recreated first of all writes.
- **Tags** (`POST /rest/v2/tags`, name, description and `category.id`) deleted since T are
  recreated next, each in its category (the recreated one's new id when the category was
  deleted too).
- **Contact custom fields** (`POST /rest/v2/contacts/model/customFields`: label, field type,
  options, group) deleted since T are recreated before any contact is written, so the values a
  contact held land on the new field. What the create cannot carry is listed in the plan's
  `configuration.md`: a field's `default_value` (not in `CreateCustomFieldRequest`) and its
  `field_name` (the database name Keap derives from the label: filters naming the old one
  must be updated). Options come back by label with new option ids; Keap keeps a contact's
  dropdown value as the option's label, so the values match.
Then contacts, their field values and their tags are written as before (keap.py).

Matching backup to live, as for HighLevel's configuration (config.py): by id, then through the
ledger (a create of an earlier restore: entities `tag_categories`, `tags`, `custom_fields`),
then by name: a category by name, a tag by name within its (matched) category, a field by
label, case and spaces around them aside. The `tv_keap_tag` and `tv_keap_field` macros read a
matched live id as its backup id, so a contact holding the recreated tag or a value on the
recreated field equals its backup, and a plan's value hashes do not change when configuration
is recreated between a preview and a re-run of its apply. Writes send the live ids (`KeapMaps`).

Crash safety: one ledger row per create (backup id -> live id); a re-run skips what succeeded.
A create whose reply was lost (a killed run's `started` row) is matched by name in the fresh
diff, so its write is recorded `succeeded` ("confirmed", apply.py); a create tried before and
still needed is looked up by name before it is sent again. Configuration is never deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from assets.recovery.restore.config import ConfigReport, backup_view, id_macro, live_table
from assets.recovery.restore.diff import insert_changes
from assets.recovery.restore.runner import Runner, Write, cell

if TYPE_CHECKING:
    from orchestration.resources.keap import KeapClient

DOC_NAME = "configuration.md"
# prefix of the TEMP TABLEs (<p>_backup, <p>_live, <p>_map), ledger entity, entity label
ENTITIES = (("kcat", "tag_categories", "tag category"), ("ktag", "tags", "tag"),
            ("kfield", "custom_fields", "custom field"))
NAME = "lower(trim(json_extract_string({t}._raw, '$.name')))"
LABEL = "lower(trim(json_extract_string({t}._raw, '$.label')))"
CATEGORY = "json_extract_string({t}._raw, '$.category.id')"
BODIES = {
    "tag_categories": """json_object('name', trim(json_extract_string(b._raw, '$.name')),
        'description', nullif(json_extract_string(b._raw, '$.description'), ''))""",
    # the category as the backup names it: its live id is known only when the tag is sent
    "tags": """json_object('name', trim(json_extract_string(b._raw, '$.name')),
        'description', nullif(json_extract_string(b._raw, '$.description'), ''),
        'category', json_extract_string(b._raw, '$.category.id'))""",
    "custom_fields": """json_object('label', trim(json_extract_string(b._raw, '$.label')),
        'field_type', json_extract_string(b._raw, '$.field_type'),
        'options', list_transform(coalesce(json_transform(json_extract(b._raw, '$.options'),
                   '[{"label": "VARCHAR"}]'), []), lambda o: o.label),
        'group_id', json_extract_string(b._raw, '$.group_id'))""",
}
TITLE = {"tag_categories": "name", "tags": "name", "custom_fields": "label"}


def load_keap_config(con: duckdb.DuckDBPyConnection, client: KeapClient, as_of: str) -> None:
    """Backup (as of T) and live definitions, the backup -> live maps (TEMP TABLEs kcat_map,
    ktag_map, kfield_map; live_id NULL = no live twin) and the macros reading live ids as
    backup ids."""
    live = {"tag_categories": [c for page in client.tag_category_pages() for c in page],
            "tags": [t for page in client.tag_pages() for t in page],
            "custom_fields": [f for f in client.contact_model().get("custom_fields") or []
                              if f.get("record_type", "CONTACT") == "CONTACT"]}
    for prefix, entity, _ in ENTITIES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {prefix}_backup AS "
                    f"{backup_view(con, entity, as_of, 'keap')}")
        live_table(con, f"{prefix}_live", [{**d, "id": str(d["id"])} for d in live[entity]])
    _match(con, "kcat", "tag_categories", NAME.format(t="b"), NAME.format(t="l"))
    # a tag is matched by name within its category, the backup's category read as its live twin
    # (a category with no live twin holds no live tag: '∅' matches nothing)
    backup_category = (f"coalesce((SELECT m.live_id FROM kcat_map m WHERE m.backup_id = "
                       f"{CATEGORY.format(t='b')}), '∅' || {CATEGORY.format(t='b')}, '')")
    _match(con, "ktag", "tags", f"{NAME.format(t='b')} || '|' || {backup_category}",
           f"{NAME.format(t='l')} || '|' || coalesce({CATEGORY.format(t='l')}, '')")
    _match(con, "kfield", "custom_fields", LABEL.format(t="b"), LABEL.format(t="l"))
    id_macro(con, "tv_keap_tag", "ktag_map")
    id_macro(con, "tv_keap_field", "kfield_map")


def _match(con: duckdb.DuckDBPyConnection, prefix: str, entity: str, backup_key: str,
           live_key: str) -> None:
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {prefix}_map AS
        WITH by_key AS (SELECT {live_key} AS k, min(l.id) AS id FROM {prefix}_live l
                        WHERE l.id NOT IN (SELECT id FROM {prefix}_backup) GROUP BY ALL)
        SELECT b.id AS backup_id, coalesce(same.id, led.id, n.id) AS live_id
        FROM {prefix}_backup b
        LEFT JOIN {prefix}_live same ON same.id = b.id
        LEFT JOIN (SELECT im.backup_id, l.id FROM restore_idmap im JOIN {prefix}_live l
                   ON l.id = im.live_id WHERE im.source = 'keap'
                   AND im.entity = '{entity}') led ON led.backup_id = b.id
        LEFT JOIN by_key n ON n.k = {backup_key}""")


def keap_config_changes(con: duckdb.DuckDBPyConnection, modes: set[str], whole_account: bool,
                        fields: list[str] | None) -> None:
    """Creates of missing categories, tags and custom fields into `changes`. A granular
    restore recreates only the tags (with their categories) and fields its records carry."""
    if not modes & {"create-missing", "update-existing"}:
        return
    tags = fields is None or "tags" in fields
    values = fields is None or "custom_fields" in fields
    carried_tags = "" if whole_account else (
        "AND b.id IN (SELECT unnest(json_transform(json_extract(_raw, '$.tag_ids'), "
        "'[\"VARCHAR\"]')) FROM backup_sel)")
    needed_tags = f"""SELECT b.id FROM ktag_backup b JOIN ktag_map m ON m.backup_id = b.id
                      WHERE m.live_id IS NULL {carried_tags}"""
    categories = "true" if whole_account else (
        f"b.id IN (SELECT {CATEGORY.format(t='t')} FROM ktag_backup t "
        f"WHERE t.id IN ({needed_tags}))")
    carried_fields = "" if whole_account else (
        "AND b.id IN (SELECT unnest(json_transform(json_extract(_raw, '$.custom_fields'), "
        "'[{\"id\": \"VARCHAR\", \"content\": \"JSON\"}]')).id FROM backup_sel)")
    wanted = {"tag_categories": f"{categories}" if tags else "false",
              "tags": f"b.id IN ({needed_tags})" if tags else "false",
              "custom_fields": f"true {carried_fields}" if values else "false"}
    for prefix, entity, _ in ENTITIES:
        body = BODIES[entity]
        insert_changes(con, "keap", f"""(SELECT '{entity}', 'create', b.id, NULL, NULL,
            json_extract_string(b._raw, '$.{TITLE[entity]}'), NULL, CAST({body} AS VARCHAR),
            md5(CAST({body} AS VARCHAR)), false, NULL, NULL::TIMESTAMPTZ
            FROM {prefix}_backup b JOIN {prefix}_map m ON m.backup_id = b.id
            WHERE m.live_id IS NULL AND ({wanted[entity]}))""")


# -- what a person reads ---------------------------------------------------------------------
def keap_config_report(con: duckdb.DuckDBPyConnection, doc_path: str) -> ConfigReport:
    rows = con.execute("""SELECT entity, backup_id, field, new_value FROM changes
                          WHERE entity IN ('tag_categories', 'tags', 'custom_fields')
                            AND action = 'create'""").fetchall()
    if not rows:
        return ConfigReport()
    order = [e for _, e, _ in ENTITIES]
    rows.sort(key=lambda r: (order.index(r[0]), (r[2] or "").lower(), r[1]))
    category_name = dict(con.execute(
        "SELECT id, json_extract_string(_raw, '$.name') FROM kcat_backup").fetchall())
    out = ["", "### Configuration (Keap)", "",
           "Recreated first, in this order (categories, then tags in their categories, then "
           "contact custom fields), before any contact write; contacts get their tags and "
           "values back on them:", "",
           "| order | what | backup id | name | in / type |", "|---|---|---|---|---|"]
    doc = ["# Keap configuration recreated by this restore", ""]
    for k, (entity, backup_id, name, body_text) in enumerate(rows, start=1):
        body = json.loads(body_text)
        what = next(label for _, e, label in ENTITIES if e == entity)
        detail = ""
        if entity == "tags":
            detail = (f"category {cell(category_name.get(body['category'], body['category']))}"
                      if body.get("category") else "no category")
        elif entity == "custom_fields":
            detail = body.get("field_type") or ""
            doc += _field_doc(con, backup_id, name, body)
        out.append(f"| {k} | {what} | {backup_id} | {cell(name)} | {detail} |")
    if len(doc) > 2:
        out += ["", "Keap's create call cannot set everything a custom field had (its "
                f"`default_value`, its `field_name`): what to re-enter is in `{doc_path}`."]
        return ConfigReport(out, "\n".join(doc))
    return ConfigReport(out)


def _field_doc(con: duckdb.DuckDBPyConnection, backup_id: str, label: str,
               body: dict[str, Any]) -> list[str]:
    """What `POST /contacts/model/customFields` cannot carry of this field."""
    raw = con.execute("SELECT _raw FROM kfield_backup WHERE id = ?", [backup_id]).fetchone()
    doc = json.loads(raw[0]) if raw and raw[0] else {}
    lines = [f"## Custom field: {label}", "",
             f"Backup id `{backup_id}`, type {body.get('field_type')}. Recreated through the "
             "API (`POST /rest/v2/contacts/model/customFields`) with its label, type, "
             + (f"{len(body['options'])} options (by label; new option ids), "
                if body.get("options") else "")
             + ("group (tab) " + str(body["group_id"]) + ", " if body.get("group_id") else "")
             + "and every contact's value. Not settable through the API:", ""]
    if doc.get("field_name"):
        lines.append(f"- its database name `{doc['field_name']}`: Keap derives a new one from "
                     "the label; a saved search, filter or integration naming the old one "
                     "must use the new one (GET /rest/v2/contacts/model)")
    if doc.get("default_value") not in (None, ""):
        lines.append(f"- its default value {doc['default_value']!r}: set it again in Keap")
    if doc.get("group_name") and body.get("group_id"):
        lines.append(f"- the tab group {doc['group_name']!r} itself: if it was deleted too, "
                     "recreate it in Keap (groups are not backed up)")
    return [*lines, ""]


# -- apply -----------------------------------------------------------------------------------
@dataclass
class KeapMaps:
    """Backup id -> live id of the tags and custom fields restored values point at; `gone`:
    backed-up tags with no live twin after the configuration writes (their recreation failed
    or was not planned)."""

    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)


def create_keap_config(con: duckdb.DuckDBPyConnection, client: KeapClient,
                       runner: Runner) -> KeapMaps:
    """Recreate the plan's missing categories, then tags, then custom fields."""
    maps = {prefix: dict(con.execute(f"SELECT backup_id, live_id FROM {prefix}_map WHERE "
                                     f"live_id IS NOT NULL").fetchall())
            for prefix, _, _ in ENTITIES}
    for prefix, entity, _ in ENTITIES:
        rows = con.execute("SELECT change_id, backup_id, new_value FROM todo WHERE entity = ? "
                           "AND action = 'create' ORDER BY backup_id", [entity]).fetchall()
        taken = set(maps[prefix].values())
        writes = [Write(wid, entity, "create", backup_id, None, sorted(json.loads(body)),
                        _creator(client, runner, entity, wid, json.loads(body), maps, taken))
                  for wid, backup_id, body in rows]
        created = runner.run(writes)
        maps[prefix].update({w.backup_id: created[w.write_id] for w in writes
                             if created.get(w.write_id) and w.backup_id})
    gone = {r[0] for r in con.execute("SELECT backup_id FROM ktag_map").fetchall()
            } - set(maps["ktag"])
    return KeapMaps(maps["ktag"], maps["kfield"], gone)


def _creator(client: KeapClient, runner: Runner, entity: str, wid: str, body: dict[str, Any],
             maps: dict[str, dict[str, str]], taken: set[str]) -> Any:
    def call() -> str:
        category = None
        if entity == "tags" and body.get("category"):
            category = maps["kcat"].get(body["category"])
            if category is None:
                raise ValueError(f"tag category {body['category']} of this tag was not "
                                 "recreated (see its own ledger row); apply the plan again")
        if runner.tried_before(wid):      # a create whose reply was lost: found by name
            found = _named(client, entity, body, category)
            if found and str(found["id"]) not in taken:
                return str(found["id"])
        if entity == "tag_categories":
            made = client.create_tag_category(body["name"], body.get("description"))
        elif entity == "tags":
            made = client.create_tag(body["name"], category, body.get("description"))
        else:
            made = client.create_custom_field(body["label"], body["field_type"],
                                              body.get("options") or None, body.get("group_id"))
        return str(made["id"])
    return call


def _named(client: KeapClient, entity: str, body: dict[str, Any],
           category: str | None) -> dict[str, Any] | None:
    if entity == "tag_categories":
        return client.find_tag_category(body["name"])
    if entity == "tags":
        found = client.find_tag(body["name"], category)
        # find_tag(name, None) matches any category: a category-less tag must have none
        return found if category or not (found or {}).get("category") else None
    return client.find_custom_field(body["label"])


def custom_fields_to_live(body: dict[str, Any], maps: KeapMaps | None) -> dict[str, Any]:
    """A contact body with backed-up custom field ids replaced by the fields' live ids."""
    if maps is None or not isinstance(body.get("custom_fields"), list):
        return body
    return {**body, "custom_fields": [{**i, "id": maps.fields.get(i["id"], i["id"])}
                                      for i in body["custom_fields"]]}
