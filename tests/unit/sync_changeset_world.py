"""Small crafted inputs for the changeset tests, written through the real storage code:
Keap backups (contacts, tags, custom fields) by the snapshot writer, identity/keap_contacts by
the identity normalization, sync/keap_desired by `write_partition`, the ledger by the push's
`LedgerWriter`. Everything lands under a tmp data root."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from assets.identity import keap
from assets.identity.config import IdentityConfig
from assets.identity.emails import normalize_emails
from assets.identity.inputs import load_state
from assets.identity.names import normalize_names
from assets.identity.normalize import connect
from assets.identity.phones import normalize_phones
from assets.keap import schemas
from assets.sync.changeset import build_changeset
from assets.sync.ledger import LedgerWriter
from orchestration.storage.derived import write_partition
from orchestration.storage.snapshots import SnapshotStorage

DAY = "2025-11-03"
CUSTOM_FIELDS = [{"id": "7", "label": "Last Stage", "field_type": "TEXT"},
                 {"id": "8", "label": "Score", "field_type": "WHOLE_NUMBER"}]
TAGS = [{"id": "101", "name": "Candidate"}, {"id": "102", "name": "Active Applicant"},
        {"id": "103", "name": "Offer Extended"}, {"id": "104", "name": "VIP"}]
MANAGED = ["Active Applicant", "Candidate", "Hired", "Offer Extended"]


def contact(id_: int, emails: list[str], *, given: str | None = "Ann",
            family: str | None = "Lee", phones: list[str] | None = None,
            custom: list[dict[str, Any]] | None = None, tags: list[str] | None = None,
            job_title: str | None = None, updated: str = "2025-11-02T10:00:00Z",
            email_slots: list[str] | None = None) -> dict[str, Any]:
    slots = email_slots or ["EMAIL1", "EMAIL2", "EMAIL3"]
    doc: dict[str, Any] = {
        "id": str(id_), "given_name": given, "family_name": family,
        "email_addresses": [{"email": e, "field": s, "is_opt_in": False}
                            for e, s in zip(emails, slots, strict=False)],
        "phone_numbers": [{"number": p, "field": f"PHONE{i}", "type": "Mobile"}
                          for i, p in enumerate(phones or [], 1)],
        "custom_fields": custom or [], "tag_ids": tags or [],
        "create_time": "2025-10-01T00:00:00Z", "update_time": updated,
    }
    if job_title is not None:
        doc["job_title"] = job_title
    return {k: v for k, v in doc.items() if v is not None}


def profile(profile_id: int, email: str, *, fields: dict[str, str | None] | None = None,
            tags: list[str] | None = None, emails: list[str] | None = None) -> dict[str, Any]:
    f = {"email": email, "given_name": "Ann", "family_name": "Lee"}
    f.update(fields or {})
    return {"profile_id": profile_id, "email": email, "emails": emails or [email],
            "fields": f, "tags": sorted(tags or []), "events": ["new_application"]}


@dataclass
class World:
    root: Path
    day: str = DAY
    contacts: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    conflict: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    def backup_keap(self) -> None:
        """Keap backups of `day` (full snapshots, through the snapshot writer) and the identity
        partition of Keap contacts built from them by the identity normalization."""
        storage = SnapshotStorage(root=str(self.root))
        for schema, docs in ((schemas.contacts, self.contacts), (schemas.tags, TAGS),
                             (schemas.custom_fields, CUSTOM_FIELDS)):
            w = storage.writer(schema, self.day, mode="full", run_id="backup",
                               window=(None, None),
                               default_updated=datetime(2025, 10, 1, tzinfo=UTC))
            w.add(docs)
            w.commit()
        self._identity_keap()

    def _identity_keap(self) -> None:
        cfg = IdentityConfig()
        con = connect(cfg)
        try:
            load_state(con, self.root, "keap", "contacts", self.day, keap.KEAP_COLUMNS, "keap")
            keap.raw_values(con)
            normalize_emails(con, "SELECT raw FROM keap_email_raw", "email_norm", cfg)
            normalize_phones(con, "SELECT raw FROM keap_phone_raw", "phone_norm", cfg)
            normalize_names(con, keap.NAME_VALUES, "name_norm")
            keap.contacts(con)
            write_partition(con, self.root, "keap_contacts", self.day,
                            "SELECT * EXCLUDE (update_time), update_time FROM keap_contacts",
                            "contact_id", run_id="identity")
        finally:
            con.close()

    def write_desired(self) -> None:
        con = duckdb.connect()
        try:
            con.execute("""CREATE TABLE d (profile_id BIGINT, email VARCHAR, emails VARCHAR[],
                           fields MAP(VARCHAR, VARCHAR), tags VARCHAR[], events VARCHAR[])""")
            for p in self.profiles:
                con.execute("INSERT INTO d VALUES (?, ?, ?, MAP(?, ?), ?, ?)",
                            [p["profile_id"], p["email"], p["emails"],
                             list(p["fields"].keys()), list(p["fields"].values()), p["tags"],
                             p["events"]])
            write_partition(con, self.root, "keap_desired", self.day, "SELECT * FROM d",
                            "profile_id", run_id="desired", source="sync", extra={
                                "mapping_fingerprint": "test", "managed_tags": MANAGED,
                                "tag_categories": {t: None for t in MANAGED},
                                "custom_fields": {
                                    "Last Stage": {"field_type": "TEXT", "on_missing": "create"},
                                    "Source": {"field_type": "TEXT", "on_missing": "create"}},
                                "conflict": self.conflict})
        finally:
            con.close()

    def changeset(self) -> list[dict[str, Any]]:
        """Build the changeset partition; its rows as dicts (in file order)."""
        self.runs += 1
        b = build_changeset(self.root, self.day, f"cs-{self.runs}")
        b.close()
        return self.rows()

    def rows(self) -> list[dict[str, Any]]:
        con = duckdb.connect()
        try:
            rel = con.sql(f"SELECT * FROM read_parquet('{self.root}/sync/keap_changeset/"
                          f"snapshot_date={self.day}/*.parquet')")
            cols = rel.columns
            return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
        finally:
            con.close()

    def record(self, rows: list[dict[str, Any]], status: str = "succeeded", *,
               run_id: str = "push-1", contact_ids: dict[int, str] | None = None,
               keap_update_time: datetime | None = None) -> None:
        """Ledger lines as the push writes them (WAL, compacted to Parquet)."""
        w = LedgerWriter(self.root, run_id)
        for r in rows:
            cid = r["contact_id"] or (contact_ids or {}).get(r["profile_id"])
            w.append(change_id=r["change_id"], changeset_date=self.day,
                     profile_id=r["profile_id"], contact_id=cid, action=r["action"],
                     fields=r["fields"], tag=r["tag"], tag_id=r["tag_id"] or
                     (f"9{len(r['tag'])}" if r["tag"] else None), status=status,
                     http_status=200 if status == "succeeded" else 400,
                     error=None if status == "succeeded" else "invalid data", attempt=1,
                     at=datetime.now(UTC),
                     keap_update_time=keap_update_time if r["action"] in ("create", "update")
                     else None)
        w.compact()
