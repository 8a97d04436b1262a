"""A generated sandbox world, served over a real socket, with the data root in tmp."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from assets.catalog.views import open_catalog
from assets.extract import ExtractSpec, run_extract
from assets.greenhouse.extract import SPECS as GREENHOUSE
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from orchestration.resources import (
    GreenhouseResource,
    HighLevelResource,
    KeapResource,
    build_resources,
)
from orchestration.resources.highlevel import EMAIL_HEADERS
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.times import iso
from sandbox import process
from sandbox.highlevel.conversations import served_conversation, served_email, served_message
from sandbox.store import Store
from sandbox.world import generate as world
from sandbox.world import life

ALL_SPECS: list[ExtractSpec] = [*GREENHOUSE, *KEAP, *HIGHLEVEL]
# The entities a backup test backs up unless it names others: the records and references the
# storage, verify, restore, identity and replica tests work on. Every entity is backed up, over
# several days and compared with the sandbox, by test_backups' point-in-time test, by the
# erasure tests and by each entity's own e2e test; backing up all 44 in every other test only
# multiplied the suite's time.
CORE = {"greenhouse": ("candidates", "applications", "application_stages", "offers",
                       "interviews", "rejection_details", "jobs", "job_stages",
                       "rejection_reasons", "users", "departments", "offices", "sources"),
        "keap": ("contacts", "tags", "tag_categories", "custom_fields"),
        "highlevel": ("contacts", "opportunities", "pipelines", "workflows", "custom_fields")}
CORE_SPECS: list[ExtractSpec] = [s for s in ALL_SPECS
                                 if s.schema.entity in CORE[s.schema.source]]
# What a restore reads: the CRMs it writes (Keap, HighLevel; their core entities), for tests
# that need no ATS.
CRM_SPECS: list[ExtractSpec] = [s for s in CORE_SPECS if s.schema.source != "greenhouse"]
# what the Keap sync reads (identity, desired state): no HighLevel backup is needed for it
SYNC_SPECS: list[ExtractSpec] = [*GREENHOUSE, *KEAP]
# the sandbox's entity name where the backup's differs
SANDBOX_ENTITY = {("greenhouse", "job_stages"): "job_interview_stages"}
# fields an API derives at read time from another record (kept in the backup as returned,
# compared through the record they come from)
DERIVED = {("highlevel", "opportunities"): ("contact",),
           # the download link names the origin the API was read from
           ("greenhouse", "attachments"): ("url",),
           # a Keap email's body as text, decoded by the backup from the API's base64
           ("keap", "emails"): ("plain_text", "html_text"),
           # the contact's name, email and phone as HighLevel joins them into a conversation
           # at read time: a contact edit changes them without moving the conversation's
           # update time (the version a backup keeps is the one of that update time)
           ("highlevel", "conversations"): ("fullName", "contactName", "email", "phone")}


def _conversation(store: Store, doc: dict) -> dict:
    out = served_conversation(store, doc)
    out.pop("sort")   # paging data: the backup drops it
    return out


# what the API serves of a stored record, where it differs from the stored form
def _message(_store: Store, doc: dict) -> dict:
    out = served_message(doc)
    if doc.get("messageType") == "TYPE_EMAIL":   # the backup reads an email's headers too
        email = served_email(doc)
        out["email"] = {k: email[k] for k in EMAIL_HEADERS if k in email}
    return out


SERVED = {("highlevel", "conversations"): _conversation, ("highlevel", "messages"): _message}


@dataclass
class World:
    base_url: str
    root: Path
    store: Store
    proc: process.SandboxProcess

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, f"{self.base_url}/_sandbox{path}", timeout=60, **kw)
        r.raise_for_status()
        return r.json()

    def day(self) -> date:
        """The sandbox's last whole day."""
        return (self.store.now() - timedelta(milliseconds=1)).date()

    def tick(self, days: int = 1) -> None:
        life.tick(self.store, days=days)

    def vendor_resources(self, **resource_kw: Any) -> dict[str, Any]:
        """The three vendors' resources, paced for a sandbox without rate limits: HighLevel's
        client budget (95 per 10 s, which notes and tasks spend one call per contact) and
        Keap's (9/s, 230/min: a day's push alone spends it) would only slow the tests down
        (the pacing itself is tested in test_backup_faults.py and test_sync_push_client.py)."""
        highlevel = {"requests_per_window": 10_000, **resource_kw.get("highlevel", {})}
        keap = {"requests_per_second": 1_000, "requests_per_minute": 60_000,
                **resource_kw.get("keap", {})}
        return {"greenhouse": GreenhouseResource(**resource_kw.get("greenhouse", {})),
                "keap": KeapResource(**keap), "highlevel": HighLevelResource(**highlevel)}

    def resources(self, **resource_kw: Any) -> dict[str, Any]:
        """The code location's resources (build_resources) with vendor_resources' pacing."""
        return {**build_resources(), **self.vendor_resources(**resource_kw)}

    def clients(self, **resource_kw: Any) -> dict[str, Any]:
        return {k: r.open() for k, r in self.vendor_resources(**resource_kw).items()}

    def backup(self, day: date, specs: list[ExtractSpec] | None = None, run_id: str = "test",
               root: Path | None = None, **resource_kw: Any) -> dict[str, dict]:
        """Back up `specs` (default: CORE_SPECS) for a day (the assets' own code path, without
        Dagster)."""
        clients = self.clients(**resource_kw)
        storage = SnapshotStorage(root=str(root or self.root))
        try:
            return {spec.key.to_user_string(): run_extract(
                spec, clients[spec.resource], storage, day, run_id)
                for spec in specs or CORE_SPECS}
        finally:
            for c in clients.values():
                c.close()

    def backup_as_of(self, specs: list[ExtractSpec]) -> str:
        """Back up the sandbox's last whole day and return T, the end of what that backup
        holds (ISO text); the clock then moves on 10 minutes: a change made next is after T."""
        self.backup(self.day(), specs)
        as_of = iso(self.store.now() - timedelta(milliseconds=1))
        self.admin("POST", "/clock", json={"advance_seconds": 600})
        return as_of

    def sandbox_docs(self, source: str, entity: str) -> dict[str, dict]:
        name = SANDBOX_ENTITY.get((source, entity), entity)
        serve = SERVED.get((source, entity))
        return {str(d["id"]): serve(self.store, d) if serve else d
                for d in self.store.iter_docs(source, name)}


def backed_up_docs(root: Path, source: str, entity: str, as_of: str) -> dict[str, dict]:
    con = open_catalog(root)
    rows = con.execute(f"SELECT id, _raw FROM {source}.{entity}_as_of(?)", [as_of]).fetchall()
    return {str(i): json.loads(raw) for i, raw in rows}


def strip(source: str, entity: str, docs: dict[str, dict]) -> dict[str, dict]:
    drop = DERIVED.get((source, entity), ())
    return {i: {k: v for k, v in d.items() if k not in drop} for i, d in docs.items()}


@contextlib.contextmanager
def served_world(base: Path, candidates: int, seed: int) -> Iterator[World]:
    """A generated world served over a real socket (no rate limits), with the data root
    `base/data` and the sandbox in `base/sandbox` (outside the data root)."""
    folder = base / "sandbox"
    world.generate(folder, candidates=candidates, seed=seed)
    proc = process.start(folder, rate_limits=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("TALENTVAULT_DATA_DIR", str(base / "data"))
    mp.setenv("TALENTVAULT_SANDBOX_URL", proc.base_url)
    store = Store(folder)
    try:
        yield World(proc.base_url, base / "data", store, proc)
    finally:
        mp.undo()
        proc.stop()
        store.close()


@pytest.fixture(scope="module")
def sandbox_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with served_world(tmp_path_factory.mktemp("world"), candidates=150, seed=7) as w:
        yield w
