"""The primary storage root in a bucket: `TALENTVAULT_DATA_DIR=s3://bucket/prefix`.

The bucket is authoritative; each machine keeps a working cache (`TALENTVAULT_CACHE_DIR`,
default `~/.cache/talentvault/<hash of the URL>`) that every reader and writer uses as its data
root, so the code above `storage/` is the same for a folder and a bucket. The bucket's layout
is the replica's (storage/bucket.py, storage/bucket_state.py):

- A partition is landed when its commit pointer is written. `landing.land` uploads the files
  under a fresh version prefix, then, under the bucket's lease, writes the pointer, swaps the
  cache's folder and appends the seal ledger; the version the pointer named before is deleted.
  A run that dies before the pointer leaves nothing visible (its upload is collected after an
  hour); a cache that lands nothing the bucket lacks.
- The root's records (seal ledger, erasure list and salt, audit trail, sync and restore
  ledgers, restore plans, the encryption marker) live under `_state/`. A change to a shared
  one (the seal ledger, the erasure list) happens under the lease: pull the latest, change,
  push (`exclusive`). Files written once (an audit event, a run's ledger) are pushed right after
  they are written (`sync_up`). The lease is one object created with a conditional PUT (If-None-
  Match) and taken over with If-Match once it is older than `LEASE_TTL` (at once when its
  holder was a process of this machine that is gone), so a killed pod blocks the others for at
  most that long; two pods never both hold it.
- `storage/hydrate.py` brings the cache up to the bucket (records first, then each partition
  whose committed manifest changed); `config.data_root()` calls it at most every few seconds
  per process, so a run step, a CLI command and a sensor tick each see what others landed.

Not copied to the bucket, as for the replica: vendor tokens and webhook secrets under `state/`
(they come from the environment), the rate budget, locks, write-ahead logs of running pushes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import obstore as obs
from obstore.exceptions import AlreadyExistsError, PreconditionError

from orchestration.storage import bucket_state, parquet
from orchestration.storage.bucket import Bucket, BucketError, _explain

DATA_DIR_VAR = "TALENTVAULT_DATA_DIR"
CACHE_ENV = "TALENTVAULT_CACHE_DIR"
LEASE = "_state/_lease.json"
LEASE_TTL = timedelta(seconds=120)
LEASE_WAIT = timedelta(minutes=5)

_held = threading.local()


def is_url(value: str) -> bool:
    return "://" in value


def url() -> str | None:
    """The primary bucket's URL, or None when the data root is a folder."""
    value = os.environ.get(DATA_DIR_VAR, "").strip()
    return value.rstrip("/") if value and is_url(value) else None


def cache_root(bucket_url: str) -> Path:
    """The working cache of a bucket primary on this machine."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value:
        return Path(value).expanduser().resolve()
    digest = hashlib.sha256(bucket_url.encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "talentvault" / digest).resolve()


@lru_cache(maxsize=8)
def _bucket(bucket_url: str) -> Bucket:
    return Bucket(bucket_url, setting=DATA_DIR_VAR)


def bucket() -> Bucket | None:
    """The primary bucket, or None when the data root is a folder."""
    u = url()
    return _bucket(u) if u else None


def bucket_for(root: Path) -> Bucket | None:
    """The primary bucket when `root` is its cache (a folder root given by hand is not)."""
    u = url()
    if u is None or Path(root).resolve() != cache_root(u):
        return None
    return _bucket(u)


# -- the lease ----------------------------------------------------------------------------------
@contextlib.contextmanager
def lease(b: Bucket) -> Iterator[None]:
    """Hold the bucket's lease (re-entrant within a thread)."""
    depth = getattr(_held, "depth", 0)
    if depth:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _acquire(b, holder)
    _held.depth = 1
    try:
        yield
    finally:
        _held.depth = 0
        _release(b, holder)


def _body(holder: str) -> bytes:
    return json.dumps({"holder": holder,
                       "expires_at": (datetime.now(UTC) + LEASE_TTL).isoformat()}).encode()


def _acquire(b: Bucket, holder: str) -> None:
    deadline = time.monotonic() + LEASE_WAIT.total_seconds()
    while True:
        try:
            obs.put(b.store, LEASE, _body(holder), mode="create")
            return
        except AlreadyExistsError:
            pass
        except Exception as e:  # noqa: BLE001 - every other store error is one clear line
            raise _explain(e, b.url, b.setting) from None
        try:
            got = obs.get(b.store, LEASE)
            current = json.loads(bytes(got.bytes()))
            if datetime.fromisoformat(current["expires_at"]) < datetime.now(UTC) or \
                    _holder_gone(current.get("holder", "")):
                obs.put(b.store, LEASE, _body(holder), mode={"e_tag": got.meta["e_tag"]})
                return   # taken over from a holder that died
        except (FileNotFoundError, PreconditionError, AlreadyExistsError):
            pass         # released or taken meanwhile: try again
        except Exception as e:  # noqa: BLE001
            raise _explain(e, b.url, b.setting) from None
        if time.monotonic() > deadline:
            raise BucketError(f"{DATA_DIR_VAR}={b.url}: the bucket's lease ({LEASE}) has been "
                              f"held by {current.get('holder')} for over "
                              f"{int(LEASE_WAIT.total_seconds())} s; it expires by itself at "
                              f"{current.get('expires_at')}: run again after that")
        time.sleep(random.uniform(0.02, 0.2))


def _holder_gone(holder: str) -> bool:
    """The holder was a process on this machine that no longer exists (killed while holding the
    lease): no need to wait for the lease to expire. Holders elsewhere are judged by time only."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _release(b: Bucket, holder: str) -> None:
    with contextlib.suppress(Exception):
        got = obs.get(b.store, LEASE)
        if json.loads(bytes(got.bytes())).get("holder") == holder:
            obs.delete(b.store, LEASE)


# -- the records --------------------------------------------------------------------------------
@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """A change to the root's shared records: under the lease, with the bucket's latest records
    pulled first and the changed ones pushed after. A folder root: nothing to do."""
    b = bucket_for(root)
    if b is None:
        yield
        return
    outer = getattr(_held, "depth", 0) == 0
    with lease(b):
        if outer:
            bucket_state.pull_state(Path(root), b, parquet.current_key(), overwrite=True)
        yield
        if outer:
            bucket_state.push_state(Path(root), b, parquet.current_key(), prune=True,
                                    synced_cache=True)


def sync_up(root: Path) -> None:
    """Push the records written since the last push (an audit event, a run's ledger): called
    right after such a write; inside an `exclusive` block the block's push does it."""
    if bucket_for(root) is None or getattr(_held, "depth", 0):
        return
    with exclusive(root):
        pass


# -- partitions ---------------------------------------------------------------------------------
def rel_of(root: Path, folder: Path) -> str:
    return str(Path(folder).resolve().relative_to(Path(root).resolve()))


def upload(root: Path, staging: Path, final: Path) -> tuple[Bucket, str, str] | None:
    """Upload a staged partition as a new, invisible version (before `land` commits it)."""
    b = bucket_for(root)
    if b is None:
        return None
    rel = rel_of(root, final)
    version, _ = b.upload_version(staging, rel)
    return b, rel, version


def describe() -> dict[str, Any] | None:
    u = url()
    return {"bucket": u, "cache": str(cache_root(u))} if u else None
