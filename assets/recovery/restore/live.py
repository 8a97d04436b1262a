"""Reading the live system for a restore, through the same clients (pacing, retries) as backups.

Live records become Arrow tables with exactly the columns of a backup row (the entity schema's
own `rows()`), so one SQL expression reads a field from either side and a `--where` written for
the backup view runs on live records too.

How much is read: a selection by ids reads only those records (Keap: `ids==` filter, 100 ids a
call; HighLevel: one GET per id); anything else pages the whole listing (Keap 1,000 contacts a
call, HighLevel 500), which is far cheaper than the writes a restore makes. Opportunities are
always listed whole: their search has no update-time filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from assets.highlevel import schemas as hl_schemas
from assets.keap import schemas as keap_schemas
from orchestration.http import paginate_page_token

if TYPE_CHECKING:
    from orchestration.resources import HighLevelClient, KeapClient

KEAP_IDS_PER_CALL = 100         # Keap v2: `ids==1,2,3`, at most 100 ids
HIGHLEVEL_GETS_MAX = 200        # above this many ids, one listing is cheaper than GETs
SCHEMAS = {("keap", "contacts"): keap_schemas.contacts,
           ("highlevel", "contacts"): hl_schemas.contacts,
           ("highlevel", "opportunities"): hl_schemas.opportunities,
           ("keap", "notes"): keap_schemas.notes, ("keap", "tasks"): keap_schemas.tasks,
           ("highlevel", "notes"): hl_schemas.notes, ("highlevel", "tasks"): hl_schemas.tasks}


def table(source: str, entity: str, pages: Iterable[list[dict[str, Any]]]) -> pa.Table:
    schema = SCHEMAS[(source, entity)]
    now = datetime.now(UTC)
    batches = [schema.rows(page, extracted_at=now, run_id="restore-live") for page in pages
               if page]
    return pa.Table.from_batches(batches, schema=schema.arrow_schema())


def keap_contacts(client: KeapClient, ids: list[str] | None = None) -> pa.Table:
    fields = client.all_contact_fields()
    if ids is None:
        return table("keap", "contacts", client.contact_pages(fields=fields))
    return table("keap", "contacts", _keap_by_ids(client, ids, fields))


def _keap_by_ids(client: KeapClient, ids: list[str], fields: list[str]
                 ) -> Iterator[list[dict[str, Any]]]:
    wanted = sorted({str(i) for i in ids if str(i).isdigit()}, key=int)
    for start in range(0, len(wanted), KEAP_IDS_PER_CALL):
        chunk = wanted[start:start + KEAP_IDS_PER_CALL]
        params = {"page_size": KEAP_IDS_PER_CALL, "fields": ",".join(fields),
                  "filter": "ids==" + ",".join(chunk)}
        yield from paginate_page_token(client.http, "/rest/v2/contacts", params,
                                       items_key="contacts")


def keap_contacts_with_email(client: KeapClient, email: str) -> list[dict[str, Any]]:
    """Live Keap contacts holding an address, found by the API (`filter=email==ADDRESS`, which
    matches any of a contact's addresses): id, addresses and create time. Not limited to what a
    preview read, so it finds a contact a restore created after the preview."""
    params = {"page_size": KEAP_IDS_PER_CALL, "fields": "id,email_addresses,create_time",
              "filter": f"email=={email}"}
    return [c for page in paginate_page_token(client.http, "/rest/v2/contacts", params,
                                              items_key="contacts") for c in page]


def highlevel_contacts(client: HighLevelClient, ids: list[str] | None = None) -> pa.Table:
    if ids is None or len(ids) > HIGHLEVEL_GETS_MAX:
        whole = table("highlevel", "contacts", client.contact_pages())
        if ids is None:
            return whole
        import pyarrow.compute as pc

        return whole.filter(pc.is_in(whole["id"], pa.array(sorted(set(ids)), pa.string())))
    docs = [client.get_contact(i) for i in sorted(set(ids))]
    return table("highlevel", "contacts", [[d for d in docs if d]])


def highlevel_opportunities(client: HighLevelClient) -> pa.Table:
    return table("highlevel", "opportunities", client.opportunity_pages())
