"""Push steps 2 and 3 for contacts: the custom fields the bodies name by label made sure of, then
creates (upsert by email, safe to resend) and updates (PATCH with an update mask) through a
bounded pool under the client's one pacer."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from assets.sync.push.errors import describe_error
from assets.sync.push.result import CONTACT_ACTIONS
from orchestration.http import ApiError


class Contacts:
    """The contact steps of a push (mixed into writer.Push)."""

    def _custom_labels(self) -> set[str]:
        """Labels of custom-field body items without an id, over every pending contact write
        (found in SQL; only the distinct (label, id) pairs come to Python)."""
        pairs = self.con.execute(f"""
            SELECT DISTINCT CAST(json_array(item -> 'label', item -> 'id') AS VARCHAR) FROM (
                SELECT unnest(CASE WHEN json_valid(body) THEN
                    CASE WHEN json_type(body) = 'OBJECT'
                              AND json_type(body, '$.custom_fields') = 'ARRAY'
                         THEN json_extract(body, '$.custom_fields[*]') END END) AS item
                FROM pending WHERE action IN {CONTACT_ACTIONS} AND coalesce(body, '') <> '')
            WHERE json_type(item) = 'OBJECT'""").fetchall()
        labels: set[str] = set()
        for (pair,) in pairs:
            label, fid = json.loads(pair)
            if not fid and label:
                labels.add(str(label))
        return labels

    def _ensure_custom_fields(self) -> dict[str, str | None]:
        """Custom field label (lower case) -> Keap id, for body items that name a field by label
        (`{"label": ..., "content": ...}` without an id). Missing fields are created when the
        mapping says `on_missing: create`, else reported (and left out of the write)."""
        labels = self._custom_labels()
        if not labels:
            return {}
        model = self.client.contact_model().get("custom_fields") or []
        known = {str(f.get("label", "")).strip().lower(): str(f["id"]) for f in model}
        out: dict[str, str | None] = {}
        for label in sorted(labels):
            key = label.strip().lower()
            if key in known:
                out[key] = known[key]
                continue
            rule = self.custom_field_rules.get(label) or {}
            if rule.get("on_missing", "report") != "create":
                out[key] = None
                self.result.missing_custom_fields.append(label)
                continue
            try:
                self.wrote()
                made = self.client.create_custom_field(label, rule.get("field_type") or "TEXT")
                out[key] = str(made["id"])
                self.result.created_custom_fields.append(label)
            except ApiError as e:
                self.log.warning("keap push: could not create custom field %s: %s", label,
                                 describe_error(e)[1])
                out[key] = None
                self.result.missing_custom_fields.append(label)
        return out

    # -- step 3: contacts --------------------------------------------------------------------
    def _contacts(self, fields_by_label: dict[str, str | None]) -> None:
        """Creates and updates, a page at a time through the bounded pool; the contact ids of
        each page's creates go to the `created` table before the next page is fetched."""
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix="keap-push") as pool:
            for page in self._pages("pending", f"action IN {CONTACT_ACTIONS}"):
                if self.abort.is_set():
                    return
                list(pool.map(lambda row: self._contact(row, fields_by_label), page))
                self._save_created()

    def _save_created(self) -> None:
        with self._lock:
            done, self.created_now = self.created_now, []
        if not done:
            return
        table = pa.table({"change_id": [c for c, _ in done], "contact_id": [k for _, k in done]})
        self.con.register("_created_page", table)
        try:
            self.con.execute("INSERT INTO created SELECT change_id, contact_id, 1 "
                             "FROM _created_page")
        finally:
            self.con.unregister("_created_page")

    def _contact(self, row: dict[str, Any], fields_by_label: dict[str, str | None]) -> None:
        if self.abort.is_set():
            return
        body, mask, note = _prepared(row, fields_by_label)
        try:
            if row["action"] == "create":
                self.wrote()
                contact, _ = self.client.upsert_contact(body, duplicate_option="Email")
            else:
                if not row.get("contact_id"):
                    self.record(row, "failed_permanent",
                                error="update without a contact id (changeset defect)")
                    return
                if not mask:  # everything it would set was left out (missing custom fields)
                    self.record(row, "succeeded", error=note)
                    return
                self.wrote()
                contact = self.client.update_contact(row["contact_id"], body, mask)
        except Exception as e:  # noqa: BLE001 - every failure is a ledger row, never lost
            self.record_error(row, e)
            return
        contact_id = str(contact.get("id")) if contact.get("id") is not None else None
        if row["action"] == "create" and contact_id:
            with self._lock:
                self.created_now.append((row["change_id"], contact_id))
        self.record(row, "succeeded", contact_id=contact_id, error=note,
                    keap_update_time=contact.get("update_time"))


def _custom_items(row: dict[str, Any]) -> list[dict[str, Any]]:
    if not row.get("body"):
        return []
    try:
        items = json.loads(row["body"]).get("custom_fields") or []
    except (json.JSONDecodeError, AttributeError):
        return []
    return [i for i in items if isinstance(i, dict)]


def _prepared(row: dict[str, Any], fields_by_label: dict[str, str | None]
              ) -> tuple[dict[str, Any], list[str], str | None]:
    """The request body and update mask to send: custom fields named by label get their Keap id;
    those Keap lacks (and may not create) are left out. Returns (body, mask, note)."""
    body = json.loads(row["body"]) if row.get("body") else {}
    mask = list(row.get("update_mask") or body.keys())
    note = None
    items = body.get("custom_fields")
    if isinstance(items, list):
        kept, missing = [], []
        for item in items:
            if isinstance(item, dict) and not item.get("id") and item.get("label"):
                fid = fields_by_label.get(str(item["label"]).strip().lower())
                if fid is None:
                    missing.append(str(item["label"]))
                    continue
                item = {"id": fid, "content": item.get("content")}
            elif isinstance(item, dict) and item.get("id"):
                item = {"id": str(item["id"]), "content": item.get("content")}
            kept.append(item)
        if missing:
            note = "custom fields not in Keap, left out: " + ", ".join(sorted(missing))
        if kept:
            body["custom_fields"] = kept
        else:
            body.pop("custom_fields", None)
            mask = [m for m in mask if m != "custom_fields"]
    return body, mask, note
