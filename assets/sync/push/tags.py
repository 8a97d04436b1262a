"""Push steps 2 and 4 for tags: the tags (and categories) the changes name made sure of in Keap
by name, then the tag removals and additions, one call per tag and up to `tag_batch` contacts,
for contacts created in this run too."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pyarrow as pa

from assets.sync.push.result import TAG_ACTIONS
from assets.sync.push.staging import dicts
from orchestration.http import ApiError


class Tags:
    """The tag steps of a push (mixed into writer.Push)."""

    # -- step 2: tags, categories, custom fields ---------------------------------------------
    def _ensure_tags(self) -> dict[str, str | None]:
        """Tag name (lower case) -> Keap tag id, for tag rows without a known id. Tags to add are
        created when missing (in their category); a tag to remove that Keap lacks maps to None.
        Rows whose tag cannot be made are recorded as failed here."""
        wanted = self.con.execute(f"""
            SELECT tag, bool_or(action = 'tag_add') FROM pending
            WHERE action IN {TAG_ACTIONS} AND coalesce(tag_id, '') = '' AND coalesce(tag, '') <> ''
            GROUP BY tag""").fetchall()
        names = {name for name, _ in wanted}
        if not names:
            return {}
        adds = {name for name, add in wanted if add}
        existing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in self.client.tag_pages():
            for tag in page:
                existing[str(tag.get("name", "")).strip().lower()].append(tag)
        categories: dict[str, str] | None = None
        out: dict[str, str | None] = {}
        for name in sorted(names):
            key = name.strip().lower()
            category_name = self.tag_categories.get(name)
            try:
                found = existing.get(key) or []
                if found:
                    out[key] = str(self._pick_tag(found, category_name, categories)["id"])
                    continue
                if name not in adds:
                    out[key] = None
                    continue
                category_id = None
                if category_name:
                    if categories is None:
                        categories = {str(c.get("name", "")).strip().lower(): str(c["id"])
                                      for page in self.client.tag_category_pages()
                                      for c in page}
                    category_id = categories.get(category_name.strip().lower())
                    if category_id is None:
                        self.wrote()
                        category_id = str(self.client.create_tag_category(category_name)["id"])
                        categories[category_name.strip().lower()] = category_id
                        self.result.created_categories.append(category_name)
                self.wrote()
                tag = self.client.create_tag(name, category_id)
                out[key] = str(tag["id"])
                self.result.created_tags.append(name)
            except ApiError as e:
                self.failed_tag_names.add(name)
                for page in self._pages("pending", f"action IN {TAG_ACTIONS} AND tag = ? "
                                        "AND coalesce(tag_id, '') = ''", [name]):
                    for row in page:
                        self.record_error(row, e)
        return out

    @staticmethod
    def _pick_tag(found: list[dict[str, Any]], category_name: str | None,
                  categories: dict[str, str] | None) -> dict[str, Any]:
        """Of several tags with one name, the one in the mapping's category when it can be told
        (else the oldest): a human's same-named tag is reused rather than duplicated."""
        found = sorted(found, key=lambda t: int(str(t["id"])) if str(t["id"]).isdigit() else 0)
        if category_name and categories:
            want = categories.get(category_name.strip().lower())
            for tag in found:
                if want and str((tag.get("category") or {}).get("id")) == want:
                    return tag
        return found[0]

    # -- step 4: tags ------------------------------------------------------------------------
    def _resolve_tags(self, tag_ids: dict[str, str | None]) -> None:
        """Table `tag_rows`: the pending tag rows (but those whose tag could not be made, already
        recorded) with the tag id and contact id to use, resolved in SQL: the row's own ids, else
        the tag by name and the contact made by the create the row depends on (this run's reply
        or an earlier run's ledger row). `chunk` numbers the calls: per action and tag,
        `tag_batch` rows a call, in order of work."""
        names = [t for (t,) in self.con.execute(
            f"SELECT DISTINCT tag FROM pending WHERE action IN {TAG_ACTIONS} "
            "AND coalesce(tag_id, '') = ''").fetchall()]
        self.con.register("_tag_map", pa.table({
            "tag": pa.array(names, pa.string()),
            "resolved": pa.array([tag_ids.get(str(t or "").lower()) for t in names],
                                 pa.string()),
            "failed": pa.array([t in self.failed_tag_names for t in names], pa.bool_())}))
        try:
            self.con.execute(f"""
                CREATE OR REPLACE TABLE tag_rows AS
                WITH made AS (SELECT change_id, arg_max(contact_id, seq) AS contact_id
                              FROM created GROUP BY change_id),
                resolved AS (
                    SELECT p.*,
                           CASE WHEN coalesce(p.tag_id, '') <> '' THEN p.tag_id
                                ELSE m.resolved END AS use_tag_id,
                           CASE WHEN coalesce(p.contact_id, '') <> '' THEN p.contact_id
                                ELSE made.contact_id END AS use_contact_id
                    FROM pending p
                    LEFT JOIN _tag_map m ON coalesce(p.tag_id, '') = ''
                         AND m.tag IS NOT DISTINCT FROM p.tag
                    LEFT JOIN made ON made.change_id = p.depends_on
                    WHERE p.action IN {TAG_ACTIONS} AND NOT coalesce(m.failed, false))
                SELECT *, CASE WHEN use_tag_id IS NULL OR use_contact_id IS NULL THEN NULL
                          ELSE (row_number() OVER (
                                    PARTITION BY action, use_tag_id,
                                                 use_tag_id IS NULL OR use_contact_id IS NULL
                                    ORDER BY ord) - 1) // {self.tag_batch} END AS chunk
                FROM resolved ORDER BY ord""")
        finally:
            self.con.unregister("_tag_map")
        # one call = (action, tag, chunk), numbered per action in order of tag id then chunk
        self.con.execute("""
            CREATE OR REPLACE TABLE tag_work AS
            SELECT *, dense_rank() OVER (PARTITION BY action ORDER BY use_tag_id, chunk)
                      AS call
            FROM tag_rows WHERE chunk IS NOT NULL ORDER BY action, call, ord""")

    def _tags(self, tag_ids: dict[str, str | None]) -> None:
        if self.abort.is_set() or not self.con.execute(
                f"SELECT count(*) FROM pending WHERE action IN {TAG_ACTIONS}").fetchone()[0]:
            return
        self._resolve_tags(tag_ids)
        # rows no call can carry: recorded first (as a whole, before any tag call)
        for action in TAG_ACTIONS:
            for page in self._pages("tag_rows", "action = ? AND chunk IS NULL", [action]):
                for row in page:
                    if not row["use_tag_id"]:
                        if action == "tag_remove":  # Keap has no such tag: no contact has it
                            self.record(row, "succeeded",
                                        error="tag not in Keap: nothing to remove")
                        else:
                            self.record(row, "failed_permanent",
                                        error="tag has no id and no name")
                    else:
                        self.record(row, "failed_retryable",
                                    error="depends on failed create" if row.get("depends_on")
                                    else "no contact id (changeset defect)")
        # removals first, so an exclusive group never shows two of its tags at once; the calls
        # of one phase run in parallel under the pacer, a page of calls at a time
        calls_per_page = max(1, self.batch_rows // self.tag_batch)
        for action in TAG_ACTIONS:
            if self.abort.is_set():
                continue
            with ThreadPoolExecutor(max_workers=self.concurrency,
                                    thread_name_prefix="keap-tags") as pool:
                last = 0
                while not self.abort.is_set():
                    page = dicts(self.con.execute(
                        "SELECT * FROM tag_work WHERE action = ? AND call > ? AND call <= ? "
                        "ORDER BY call, ord", [action, last, last + calls_per_page]))
                    if not page:
                        break
                    self.max_rows_fetched = max(self.max_rows_fetched, len(page))
                    last += calls_per_page
                    jobs: dict[int, list[tuple[dict[str, Any], str]]] = defaultdict(list)
                    for row in page:
                        jobs[row["call"]].append((row, str(row["use_contact_id"])))
                    list(pool.map(partial(self._tag_job, action), jobs.values()))

    def _tag_job(self, action: str, items: list[tuple[dict[str, Any], str]]) -> None:
        self._tag_call(action, str(items[0][0]["use_tag_id"]), items)

    def _tag_call(self, action: str, tag_id: str,
                  items: list[tuple[dict[str, Any], str]]) -> None:
        if self.abort.is_set():
            return
        ids = list(dict.fromkeys(cid for _, cid in items))
        self.wrote()
        try:
            if action == "tag_add":
                results = self.client.apply_tags(tag_id, ids, batch=self.tag_batch)
            else:
                self.client.remove_tags(tag_id, ids, batch=self.tag_batch)
                results = {cid: "SUCCESS" for cid in ids}
        except Exception as e:  # noqa: BLE001
            for row, cid in items:
                self.record_error(row, e, contact_id=cid, tag_id=tag_id)
            return
        for row, cid in items:
            outcome = results.get(cid)
            if outcome in ("SUCCESS", "DUPLICATE"):
                self.record(row, "succeeded", contact_id=cid, tag_id=tag_id)
            elif outcome == "CONTACT_NOT_FOUND":
                self.record(row, "failed_permanent", contact_id=cid, tag_id=tag_id,
                            http_status=200, error="contact not found in Keap")
            else:
                self.record(row, "failed_retryable", contact_id=cid, tag_id=tag_id,
                            http_status=200, error=f"no result for the contact ({outcome})")
