"""Seals: every partition manifest and the critical state files, made tamper-evident.

A landed `_manifest.json` carries `seal`: a digest of its own canonical content bound to its
place (`<source>/<entity>/snapshot_date=D`) — sha256, or HMAC-SHA256 when `TALENTVAULT_SEAL_KEY`
is set. Every landing, re-run, erasure rewrite, prune and write of the suppression list appends
one entry to the data root's seal ledger, `<root>/seals/ledger.jsonl`: a hash chain (each entry
holds the hash of the one before it) recording the seal digest and a copy of every manifest field
(lists and objects by digest), so `verify` names the field that changed and its sealed value.

Why one ledger for the root rather than a chain per entity in date order: re-runs, backfills and
erasures rewrite partitions in the middle of an entity's history; an append-only log records each
rewrite as a new entry, where a date-ordered chain would have to rewrite every later manifest.
The latest entry of a target is its expected state.

What it proves: with sha256, any change made by accident or by hand that does not also recompute
the seals and the ledger's chain from that point on; with a key, any change by anyone without the
key. It cannot prove that the newest entries were not cut off together with the partitions they
record (verify prints the ledger head; the `verify` audit event keeps it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestration.storage.files import sha256_file  # noqa: F401 (re-exported)
from orchestration.storage.fsync import fsync
from orchestration.times import iso

KEY_ENV = "TALENTVAULT_SEAL_KEY"
LEDGER_DIR = "seals"
LEDGER_FILE = "ledger.jsonl"
LOCK_FILE = ".ledger.lock"
SEAL_VERSION = 1
# events that set a partition's expected state / that record it gone
PARTITION_EVENTS = ("landed", "erasure", "recovered", "adopted", "accepted")
REMOVAL_EVENTS = ("pruned", "removed")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


@dataclass(frozen=True)
class Sealer:
    """How digests are made: plain sha256, or HMAC-SHA256 with the operator's key."""

    key: bytes | None = None

    @property
    def alg(self) -> str:
        return "hmac-sha256" if self.key else "sha256"

    @property
    def key_id(self) -> str | None:
        """Names the key without revealing it (tells verify which key sealed an entry)."""
        if not self.key:
            return None
        return hashlib.sha256(b"talentvault-seal-key-id:" + self.key).hexdigest()[:16]

    def digest(self, data: bytes) -> str:
        if self.key:
            return hmac.new(self.key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()


def sealer() -> Sealer:
    key = os.environ.get(KEY_ENV, "")
    return Sealer(key.encode() if key else None)


# -- manifests -------------------------------------------------------------------------------
def content(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as JSON holds it, without its seal."""
    plain = json.loads(json.dumps(manifest, default=str))
    plain.pop("seal", None)
    return plain


def partition_target(folder: Path) -> str:
    """`<source>/<entity>/snapshot_date=D`: a partition's name in the ledger."""
    return "/".join(Path(folder).parts[-3:])


def manifest_digest(s: Sealer, target: str, manifest: dict[str, Any]) -> str:
    return s.digest(target.encode() + b"\n" + canonical(content(manifest)))


def sealed(manifest: dict[str, Any], target: str) -> dict[str, Any]:
    """The manifest with its `seal` (computed over everything else and its place)."""
    s = sealer()
    out = content(manifest)
    out["seal"] = {"v": SEAL_VERSION, "alg": s.alg, "key_id": s.key_id,
                   "digest": manifest_digest(s, target, out)}
    return out


def fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """Every manifest field by dotted name (`window.updated_to`): scalars as they are, lists
    and objects as {"sha256", "items"} (the ledger keeps them small)."""
    out: dict[str, Any] = {}
    for k, v in content(manifest).items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = _small(v2)
        else:
            out[k] = _small(v)
    return out


def _small(v: Any) -> Any:
    if isinstance(v, dict | list):
        return {"sha256": hashlib.sha256(canonical(v)).hexdigest(), "items": len(v)}
    return v


# -- the ledger ------------------------------------------------------------------------------
def ledger_path(root: Path) -> Path:
    return Path(root) / LEDGER_DIR / LEDGER_FILE


def entry_hash(s: Sealer, entry: dict[str, Any]) -> str:
    return s.digest(canonical({k: v for k, v in entry.items() if k != "hash"}))


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    path = Path(root) / LEDGER_DIR / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _last_entry(path: Path) -> dict[str, Any] | None:
    """The last complete entry; a torn tail (an append a crash interrupted, never fsynced) is
    cut off first. Reads only the file's end."""
    if not path.exists():
        return None
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - (1 << 18)))
        tail = f.read()
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            f.truncate(size - len(tail) + cut + 1)
            f.flush()
            os.fsync(f.fileno())
            tail = tail[:cut + 1]
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    return json.loads(lines[-1]) if lines[-1] else None


class SealKeyError(RuntimeError):
    pass


def check_key(root: Path, last: dict[str, Any] | None = None) -> None:
    """Refuse to seal without the key (or with another key) once the ledger is keyed: such a
    seal would be a downgrade that `verify` reports as damage. Called before anything lands."""
    if last is None:
        path = ledger_path(root)
        if not path.exists():
            return
        with _locked(root):
            last = _last_entry(path)
    if not last or last.get("alg") != "hmac-sha256":
        return
    s = sealer()
    if s.key_id != last.get("key_id"):
        raise SealKeyError(
            f"the seal ledger of {root} is sealed with a key (id {last.get('key_id')}) and "
            f"{KEY_ENV} is {'another key' if s.key else 'unset'}: set {KEY_ENV} to that key "
            "in this process's environment (Dagster and the CLI alike), then run again")


def append(root: Path, event: str, target: str, **data: Any) -> dict[str, Any]:
    """Append one entry (under the ledger's lock, fsynced); returns it. The ledger's first
    entry (`opened`) counts the manifests that were not sealed when it was created: zero means
    every partition of this root must be sealed from then on."""
    from orchestration.storage import primary

    s = sealer()
    path = ledger_path(root)
    # a bucket primary: under the bucket's lease, after pulling the latest ledger (pushed after)
    with primary.exclusive(root), _locked(root):
        last = _last_entry(path)
        check_key(root, last)
        new = [] if last else [("opened", ".", {"unsealed": _unsealed_manifests(root)})]
        new.append((event, target, data))
        lines = []
        for ev, tgt, extra in new:
            entry = {"seq": last["seq"] + 1 if last else 0, "at": iso(datetime.now(UTC)),
                     "event": ev, "target": tgt, **extra, "alg": s.alg, "key_id": s.key_id,
                     "prev": last["hash"] if last else None}
            entry["hash"] = entry_hash(s, entry)
            lines.append(canonical(entry) + b"\n")
            last = entry
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"".join(lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync(path.parent)
    return last


def _unsealed_manifests(root: Path) -> int:
    return sum(1 for m in Path(root).glob("*/*/snapshot_date=*/_manifest.json")
               if not any(p.startswith(".") for p in m.relative_to(root).parts)
               and "seal" not in _read_json(m))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read(root: Path) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """(entries, [(line number, why unreadable)]); a torn last line is not an error."""
    path = ledger_path(root)
    entries, bad = [], []
    lines = path.read_bytes().split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            entries.append(doc)
        except ValueError:
            if n == len(lines):   # no newline after it: an append a crash interrupted
                continue
            bad.append((n, "unreadable line"))
    return entries, bad


def record_partition(folder: Path, manifest: dict[str, Any], event: str = "landed",
                     reason: str | None = None) -> dict[str, Any]:
    """Record a sealed partition that is in place (landed, rewritten or adopted)."""
    folder = Path(folder)
    return append(folder.parents[2], event, partition_target(folder),
                  digest=manifest["seal"]["digest"], fields=fields(manifest), reason=reason)


def record_removed(folder: Path, event: str = "pruned", reason: str | None = None) -> None:
    folder = Path(folder)
    append(folder.parents[2], event, partition_target(folder), reason=reason)


def record_state(root: Path, rel: str, **facts: Any) -> None:
    """Record a state file as it is now (sha256, bytes, and what the caller adds, e.g. rows)."""
    path = Path(root) / rel
    append(root, "state", rel, sha256=sha256_file(path), bytes=path.stat().st_size, **facts)
