"""Cheap installs for the alert and status tests: backups landed through the storage layer (real
Parquet and manifests), a real Dagster instance in tmp, and an HTTP receiver for alerts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg

from assets.greenhouse import schemas as greenhouse
from assets.highlevel import schemas as highlevel
from assets.keap import schemas as keap
from orchestration.storage.schema import EntitySchema
from orchestration.storage.snapshots import SnapshotStorage

# one entity per source keeps an install small; a source is complete when all its entities are
ENTITIES: dict[str, list[EntitySchema]] = {
    "greenhouse": [greenhouse.jobs], "keap": [keap.tags, keap.contacts],
    "highlevel": [highlevel.pipelines]}


DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


def contacts_asset(passed: bool, **metadata) -> dg.AssetsDefinition:
    """keap/contacts with its blocking check `emails_are_unique` passing or failing."""
    @dg.asset(key=["keap", "contacts"], partitions_def=DAYS,
              check_specs=[dg.AssetCheckSpec("emails_are_unique", asset=["keap", "contacts"],
                                             blocking=True)])
    def keap_contacts():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="emails_are_unique", passed=passed,
                                  severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)
    return keap_contacts


def push_asset(**metadata) -> dg.AssetsDefinition:
    """sync/keap_push reporting the counts a push reports."""
    @dg.asset(key=["sync", "keap_push"], partitions_def=DAYS)
    def keap_push() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=metadata)
    return keap_push


def land(root: Path, schema: EntitySchema, day: date, *, whole: bool = True,
         rows: int = 3) -> dict:
    """One partition as a backup run lands it: whole (window to the next midnight) or an open
    day (window to 15:00)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + (timedelta(days=1) if whole else timedelta(hours=15))
    writer = SnapshotStorage(root=str(root)).writer(schema, day, mode="full", run_id="test",
                                                     window=(None, end))
    writer.add([{"id": str(i), "name": f"n{i}"} for i in range(rows)])
    return writer.commit()


def land_install(root: Path, days: dict[str, date], *, open_day: date | None = None) -> None:
    """Every entity of each source backed up whole for `days[source]`, plus an open day."""
    for source, last in days.items():
        for schema in ENTITIES[source]:
            land(root, schema, last)
            if open_day:
                land(root, schema, open_day, whole=False)


@contextmanager
def alert_receiver() -> Iterator[tuple[str, list[dict]]]:
    """(apprise URL, received messages): a JSON webhook endpoint on a free local port."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None):
    """One evaluation of a sensor against the instance, as the daemon does it; returns
    (errors the tick reported, new cursor)."""
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
    errors = [r.error.message for r in result.dagster_run_reactions or [] if r.error]
    return errors, result.cursor
