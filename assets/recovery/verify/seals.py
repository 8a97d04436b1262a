"""The seals part of `talentvault verify`.

verify replays the seal ledger (`orchestration/storage/seals.py`) and holds every partition
manifest and every sealed state file against the latest entry recorded for it:
- the ledger itself: every entry's hash (or HMAC) and its link to the one before;
- a manifest field that differs from its sealed copy is named with both values
  ("keap/contacts 2026-01-04: manifest field `mode` changed (sealed full, now incremental)");
- a seal that does not match its manifest, or the ledger, or was removed;
- a partition the ledger holds that is gone without a prune, or a pruned one that is back;
- the suppression list and its salt deleted or changed since they were last written.

Backups written before sealing have no seal and no ledger entry: reported as "unsealed"
(warnings) until `talentvault seal` records them, after which an unsealed partition is damage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assets.recovery.verify.report import Problem, VerifyReport
from orchestration.storage import parquet, seals, suppression

LIST = f"{suppression.STATE_DIR}/{suppression.LIST_FILE}"
SALT = f"{suppression.STATE_DIR}/{suppression.SALT_FILE}"
STATE_FILES = {
    LIST: "the erasure list: without it erased people are backed up, pushed and restored again",
    SALT: "the erasure list's salt: with another salt the list matches no one",
}


def _label(target: str) -> str:
    """`keap/contacts/snapshot_date=2026-01-04` -> `keap/contacts 2026-01-04`."""
    head, _, part = target.rpartition("/")
    return f"{head} {part.split('=', 1)[-1]}"


def _show(v: Any) -> str:
    text = "null" if v is None else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """[(field, how it changed)] between a sealed field copy and the manifest now."""
    out = []
    for k in sorted(old.keys() | new.keys()):
        if k not in new:
            out.append((k, f"removed (sealed {_show(old[k])})"))
        elif k not in old:
            out.append((k, f"added ({_show(new[k])}), not in the sealed manifest"))
        elif old[k] != new[k]:
            if isinstance(old[k], dict) or isinstance(new[k], dict):
                out.append((k, "changed (its content differs from the sealed one)"))
            else:
                out.append((k, f"changed (sealed {_show(old[k])}, now {_show(new[k])})"))
    return out


def _entry_sealer(entry: dict[str, Any], s: seals.Sealer) -> seals.Sealer | None:
    """The sealer that made an entry or a seal (None: keyed with a key this process lacks)."""
    if entry.get("alg") == "sha256":
        return seals.Sealer(None)
    if entry.get("alg") == "hmac-sha256" and s.key and entry.get("key_id") == s.key_id:
        return s
    return None


def check_chain(entries: list[dict[str, Any]], bad: list[tuple[int, str]], s: seals.Sealer,
                problem, where: str) -> None:
    """Every entry's hash and link to the one before; keyed entries need the key."""
    for n, why in bad:
        problem(where, "seal_ledger", f"line {n}: {why} (the ledger was edited)")
    prev, keyed, key_told = None, False, False
    for i, e in enumerate(entries):
        at = f"entry #{e.get('seq')}"
        if e.get("seq") != i:
            problem(where, "seal_ledger", f"{at}: expected #{i} (entries removed or reordered)")
        if e.get("prev") != prev:
            problem(where, "seal_ledger", f"{at}: its link to the entry before it does not "
                    "match (an entry was edited, removed or inserted)")
        prev = e.get("hash")
        if e.get("alg") == "hmac-sha256":
            keyed = True
        elif keyed:
            problem(where, "seal_ledger", f"{at}: sealed without the key after keyed sealing "
                    "began (written by someone without the key)")
        es = _entry_sealer(e, s)
        if es is None:
            if not key_told:
                key_told = True
                problem(where, "seal_key", f"{at} and later are sealed with a key (id "
                        f"{e.get('key_id')}): set {seals.KEY_ENV} to that key to verify them")
            continue
        if seals.entry_hash(es, e) != e.get("hash"):
            problem(where, "seal_ledger", f"{at} ({e.get('event')} {e.get('target')}) changed "
                    "after it was written")
    if s.key and entries and entries[-1].get("alg") != "hmac-sha256":
        # writers refuse to seal without the key once it is in use: a keyless head means the
        # chain was rewritten without the key (or the key is new: `talentvault seal` seals it)
        problem(where, "seal_key", f"the ledger's newest entry is not sealed with "
                f"{seals.KEY_ENV}: rewritten by someone without the key, or the key was just "
                "set (then run `talentvault seal` once)")


def replay(entries: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], bool]:
    """({target: its latest entry}, strict): strict once every partition was sealed (a
    fresh root, or after `talentvault seal`)."""
    latest: dict[str, dict[str, Any]] = {}
    strict = False
    for e in entries:
        ev = e.get("event")
        if ev in (*seals.PARTITION_EVENTS, *seals.REMOVAL_EVENTS, "state"):
            latest[e["target"]] = e
        elif ev == "sealed_root" or (ev == "opened" and e.get("unsealed") == 0):
            strict = True
    return latest, strict


def is_live(e: dict[str, Any] | None) -> bool:
    return e is not None and e.get("event") in seals.PARTITION_EVENTS


def own_seal_ok(target: str, m: dict[str, Any], s: seals.Sealer) -> bool | None:
    """Whether the manifest's seal matches its content (None: no seal, or no key to tell)."""
    seal = m.get("seal")
    if not isinstance(seal, dict):
        return None
    es = _entry_sealer(seal, s)
    return None if es is None else seals.manifest_digest(es, target, m) == seal.get("digest")


def matches(target: str, m: dict[str, Any], last: dict[str, Any] | None,
            s: seals.Sealer) -> bool:
    return (is_live(last) and isinstance(m.get("seal"), dict)
            and m["seal"].get("digest") == last.get("digest")
            and own_seal_ok(target, m, s) is not False
            and not field_changes(last.get("fields", {}), seals.fields(m)))


def check_seals(root: Path, folders: list[Path], manifests: dict[Path, dict[str, Any]],
                report: VerifyReport) -> None:
    """Append the seal problems and warnings to a VerifyReport."""
    def problem(path: str, kind: str, reason: str) -> None:
        report.problems.append(Problem(path, kind, reason))

    def warning(path: str, kind: str, reason: str) -> None:
        report.warnings.append(Problem(path, kind, reason))

    s = seals.sealer()
    ledger = seals.ledger_path(root)
    where = str(ledger.relative_to(root))
    latest: dict[str, dict[str, Any]] = {}
    strict = False
    if ledger.exists():
        entries, bad = seals.read(root)
        check_chain(entries, bad, s, problem, where)
        latest, strict = replay(entries)
        if entries:
            report.seal_head = f"#{entries[-1].get('seq')} {str(entries[-1].get('hash'))[:16]}"
    elif any("seal" in m for m in manifests.values()):
        n = sum("seal" in m for m in manifests.values())
        problem(where, "seal_ledger", f"missing while {n} partition(s) carry seals (the ledger "
                "was deleted): restore `seals/` from a copy of the data root, or accept every "
                "partition as it is now with `talentvault seal --accept all`")
    for folder, m in manifests.items():
        target = seals.partition_target(folder)
        if not matches(target, m, latest.get(target), s):
            m = _reread(folder)      # a re-run or a prune may have landed since it was read
            if m is None:
                continue
        _check_manifest(target, m, latest.get(target), s, strict, problem, warning, report)
    present = {seals.partition_target(f) for f in folders}
    for target, e in sorted(latest.items()):
        if is_live(e) and target not in present:
            folder = root / target
            trash = folder.parent / ".trash"
            note = (" (a copy is in .trash: an interrupted prune; `talentvault retention "
                    "--apply` finishes it)" if trash.is_dir() and any(
                        trash.glob(f"{folder.name}-*")) else "")
            problem(target, "seal_missing", f"{_label(target)}: partition gone without a prune "
                    f"(sealed {e.get('at', '')[:10]}){note}: restore it from a copy of the data "
                    f"root; if it was removed on purpose, `talentvault seal --accept {target}`")
    _check_state(root, latest, manifests, problem, warning)


def _reread(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "_manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _check_manifest(target: str, m: dict[str, Any], last: dict[str, Any] | None,
                    s: seals.Sealer, strict: bool, problem, warning, report) -> None:
    mrel = f"{target}/_manifest.json"
    label = _label(target)
    own_ok = own_seal_ok(target, m, s)
    if not is_live(last):
        if last is not None:
            problem(mrel, "seal_pruned", f"{label}: the partition was {last.get('event')} on "
                    f"{last.get('at', '')[:10]} but is back: remove it, or if you restored it "
                    f"on purpose, `talentvault seal --accept {target}`")
        elif "seal" not in m:
            report.unsealed += 1
            if strict:
                problem(mrel, "unsealed", f"{label}: unsealed in a sealed data root (not "
                        "written by talentvault, or its seal was stripped): restore it from a "
                        f"copy, or `talentvault seal --accept {target}` if it is yours")
            else:
                warning(mrel, "unsealed", f"{label}: unsealed (written before sealing): run "
                        "`talentvault seal` to seal the backups as they are now")
        elif own_ok is False:
            problem(mrel, "seal", f"{label}: the manifest changed after it was sealed (its seal "
                    "does not match its content; the ledger has no record to name the field)")
        else:
            warning(mrel, "seal_unrecorded", f"{label}: sealed but not in the seal ledger (a "
                    "landing interrupted before its record?): `talentvault seal` records it")
        return
    changes = field_changes(last.get("fields", {}), seals.fields(m))
    for name, how in changes:
        problem(mrel, "manifest_field", f"{label}: manifest field `{name}` {how}")
    if changes:
        return
    if "seal" not in m:
        problem(mrel, "seal", f"{label}: the manifest's seal was removed (its fields match the "
                f"sealed ones): `talentvault seal --accept {target}` seals it again")
    elif own_ok is False or m["seal"].get("digest") != last.get("digest"):
        problem(mrel, "seal", f"{label}: the manifest's seal does not match the seal ledger "
                "(sealed again outside talentvault, or with another key)")
    else:
        report.sealed += 1


def file_rows(path: Path) -> int | None:
    try:
        return parquet.open_file(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - unreadable is reported by the other checks
        return None


def _check_state(root: Path, latest: dict[str, dict[str, Any]],
                 manifests: dict[Path, dict[str, Any]], problem, warning) -> None:
    for rel, role in STATE_FILES.items():
        e = latest.get(rel)
        path = root / rel
        if e is None or e.get("event") != "state":
            if path.exists() and e is None and rel == LIST:
                warning(rel, "unsealed", f"{rel}: unsealed (written before sealing): run "
                        "`talentvault seal` to record it")
            continue
        sealed = f"sealed {e.get('at', '')[:10]}" + (
            f" with {e['rows']} hashes" if e.get("rows") is not None else "")
        if not path.exists():
            problem(rel, "state_missing", f"{rel}: deleted ({sealed}); it is {role}: restore "
                    "`state/` from a copy of the data root")
        elif seals.sha256_file(path) != e.get("sha256"):
            now = file_rows(path) if rel == LIST else None
            problem(rel, "state_changed", f"{rel}: changed since it was last written by "
                    f"talentvault ({sealed}" + (f", now {now}" if now is not None else "") +
                    f"); it is {role}: restore `state/` from a copy of the data root")
    if LIST not in latest and not (root / LIST).exists():
        erased = [f for f, m in manifests.items()
                  if m.get("erasures") or int(m.get("suppressed_rows") or 0) > 0]
        if erased:
            problem(LIST, "state_missing", f"{LIST}: missing, but {len(erased)} partition(s) "
                    f"record erasures; it is {STATE_FILES[LIST]}: restore `state/` from a copy "
                    "of the data root")
