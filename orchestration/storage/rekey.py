"""Moving a data root from one encryption key to another (or from none to a key, or back):
`talentvault encryption rotate`.

Every kept file is re-encrypted byte for byte (the Parquet inside is unchanged): a partition is
copied to a staging folder under the new key and landed like any rewrite (manifest re-sealed with
the new file digests, fsynced, renamed into place, replicated), loose files (ledgers, the audit
trail, the erasure list, restore plans) are rewritten beside themselves and renamed over. The
root's marker says a rotation is under way (old and new key ids), so every other process refuses
the root until it is done, and a rotation stopped at any point (SIGKILL included) is finished by
running it again: each file is judged by the key it is actually under.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.storage import crypt, parquet, seals, suppression
from orchestration.storage.bucket_state import push_state
from orchestration.storage.files import partition_folders
from orchestration.storage.fsync import fsync
from orchestration.storage.landing import land
from orchestration.storage.parquet import EncryptionKeyError, Key
from orchestration.storage.replica import replica_bucket


@dataclass
class Rotation:
    partitions: int = 0
    loose_files: int = 0
    already: int = 0
    problems: list[str] = field(default_factory=list)


def _state(path: Path, old: Key | None, new: Key | None) -> str:
    """'done' (under the new key), 'todo' (under the old one) or 'foreign' (neither)."""
    under = parquet.file_key(path, [k for k in (new, old) if k is not None])
    if under is False:
        return "foreign"
    return "done" if under == new else "todo" if under == old else "foreign"


def rotate(root: Path, new: Key | None, old: Key | None) -> Rotation:
    root = Path(root).resolve()
    current = (parquet.marker(root) or {}).get("key_id")
    if current not in {old.key_id if old else None, new.key_id if new else None}:
        raise EncryptionKeyError(
            f"{root} is encrypted with key id {current}: set {parquet.OLD_KEY_ENV} to that key "
            f"(and {parquet.KEY_ENV} to the new one, or unset it to decrypt)")
    parquet.write_marker(root, new, rotating_from=old.key_id if old else "plaintext")
    out = Rotation()
    for folder in partition_folders(root):
        if not (folder / "_manifest.json").exists():
            continue
        files = sorted(folder.glob("*.parquet"))
        states = {f: _state(f, old, new) for f in files}
        if any(s == "foreign" for s in states.values()):
            out.problems.append(f"{folder.relative_to(root)}: a file under neither key, left as is")
            continue
        if all(s == "done" for s in states.values()):
            out.already += 1
            continue
        _rekey_partition(folder, states, old, new)
        out.partitions += 1
    for path in _loose(root):
        state = _state(path, old, new)
        if state == "todo":
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.rekey")
            crypt.recrypt(path, tmp, old and old.raw, new and new.raw)
            os.replace(tmp, path)
            fsync(path.parent)
            out.loose_files += 1
        elif state == "foreign":
            out.problems.append(f"{path.relative_to(root)}: under neither key, left as is")
    if (root / suppression.STATE_DIR / suppression.LIST_FILE).exists():
        suppression.record_seals(root, parquet.open_file(
            root / suppression.STATE_DIR / suppression.LIST_FILE, key=new).metadata.num_rows)
    if not out.problems:
        parquet.write_marker(root, new)
        bucket = replica_bucket()
        if bucket is not None:   # the bucket's copies of the root's records, under the new key
            push_state(root, bucket, new, prune=True)
    return out


def _rekey_partition(folder: Path, states: dict[Path, str], old: Key | None,
                     new: Key | None) -> None:
    manifest = {k: v for k, v in json.loads((folder / "_manifest.json").read_text()).items()
                if k not in ("seal", "encryption")}
    staging = folder.parent / f".staging-rekey-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        entries = {e["file"]: e for e in manifest.get("files", [])}
        for f, state in states.items():
            dst = staging / f.name
            if state == "done":
                shutil.copy2(f, dst)
            else:
                crypt.recrypt(f, dst, old and old.raw, new and new.raw)
            dst.chmod(0o644)
            if f.name in entries:
                entries[f.name] = {**entries[f.name], "sha256": seals.sha256_file(dst),
                                   "bytes": dst.stat().st_size}
        manifest["files"] = [entries[e["file"]] for e in manifest.get("files", [])]
        land(staging, folder, manifest, event="landed", reason="encryption key rotated")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _loose(root: Path):
    for path in parquet.iter_parquet(root):
        if "sandbox" in path.relative_to(root).parts[:1]:
            continue
        if not (path.parent / "_manifest.json").exists():
            yield path
