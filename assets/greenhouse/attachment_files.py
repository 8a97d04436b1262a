"""Greenhouse attachment files, behind a setting.

The attachments backup always keeps each attachment's record (type, filename, its application
and candidate). With TALENTVAULT_GREENHOUSE_ATTACHMENT_FILES=1 it also downloads each file
from the record's `url` (a time-limited storage link) and keeps its bytes in the same row
(`file_content`, with `file_sha256` and `file_bytes`), so the files share the partition's
sealing, encryption, verification, retention and erasure. Only the attachments the backup
reads are downloaded: new or changed ones on an incremental day, all of them on a full one.

A download that fails (a lost file, an expired link) does not stop the partition: the record
lands without its file, and the manifest's `attachment_files` counts the failures with up to
20 attachment ids and the reason (the HTTP status and the store's error code, never the link:
its path carries the file's name). `attachment_file_list` lists every file kept (id, sha256,
bytes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from typing import Any

import pyarrow as pa

from orchestration.http import ApiError
from orchestration.resources.greenhouse import GreenhouseClient
from orchestration.storage.schema import col
from orchestration.storage.writer import PartitionWriter

log = logging.getLogger("talentvault.greenhouse.attachments")

SETTING = "TALENTVAULT_GREENHOUSE_ATTACHMENT_FILES"
ON, OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
FAILED_SAMPLE = 20          # failed attachments named in the manifest
STORE_CODE = re.compile(rb"<Code>([A-Za-z]{1,64})</Code>")


class SettingError(ValueError):
    """The setting holds something other than on or off (the message names it)."""


def enabled() -> bool:
    value = os.environ.get(SETTING, "").strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    raise SettingError(f"{SETTING}={value!r}: set it to 1 to download attachment files, 0 (or "
                       "leave it unset) to keep attachment records only")


class WithFile(dict):
    """An attachment record exactly as the API returned it (a dict: what `_raw` keeps), with its
    downloaded file beside it for the file columns."""

    content: bytes | None = None
    sha256: str | None = None


def _content(doc: dict[str, Any]) -> bytes | None:
    return getattr(doc, "content", None)


def _size(doc: dict[str, Any]) -> int | None:
    content = _content(doc)
    return None if content is None else len(content)


COLUMNS = (
    col("file_sha256", get=lambda d: getattr(d, "sha256", None)),
    col("file_bytes", pa.int64(), get=_size),
    col("file_content", pa.binary(), get=_content),
)


def with_files(client: GreenhouseClient, writer: PartitionWriter,
               page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's attachments with their files, when the setting is on; each download's
    outcome counted in the writer's manifest."""
    if not enabled():
        return page
    summary = writer.extra.setdefault("attachment_files", {
        "setting": SETTING, "downloaded": 0, "bytes": 0, "failed": 0, "failed_sample": []})
    kept = writer.extra.setdefault("attachment_file_list", [])
    out: list[dict[str, Any]] = []
    for doc in page:
        record = WithFile(doc)
        try:
            data = client.download(str(doc["url"]))
        except (ApiError, KeyError) as e:
            reason = _reason(e)
            summary["failed"] += 1
            if len(summary["failed_sample"]) < FAILED_SAMPLE:
                summary["failed_sample"].append({"id": doc.get("id"), "reason": reason})
            log.warning("greenhouse attachment %s: file not downloaded (%s)", doc.get("id"),
                        reason)
        else:
            record.content, record.sha256 = data, hashlib.sha256(data).hexdigest()
            summary["downloaded"] += 1
            summary["bytes"] += len(data)
            kept.append({"id": doc["id"], "sha256": record.sha256, "bytes": len(data)})
        out.append(record)
    return out


def _reason(e: Exception) -> str:
    """Why a download failed, without the link."""
    if isinstance(e, KeyError):
        return "the record has no url"
    assert isinstance(e, ApiError)
    if e.status is None:
        return f"no complete reply after {e.attempts} attempt(s)"
    found = STORE_CODE.search((e.body or "").encode())
    return f"HTTP {e.status}" + (f" {found.group(1).decode()}" if found else "")
