"""`talentvault seal`: seal what is not sealed yet (partitions written before sealing, the state
files), after checking each partition's files against its manifest, and accept deliberate
changes named with --accept. A partition that changed since it was sealed is never sealed
silently."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assets.recovery.verify.partitions import check_partition, partition_folders
from assets.recovery.verify.report import VerifyReport
from assets.recovery.verify.seals import (
    LIST,
    STATE_FILES,
    check_chain,
    file_rows,
    is_live,
    matches,
    own_seal_ok,
    replay,
)
from orchestration.storage import seals
from orchestration.storage.fsync import fsync


class SealError(RuntimeError):
    pass


@dataclass
class SealReport:
    adopted: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    ledger_restarted: str | None = None

    def lines(self) -> list[str]:
        out = [f"sealed {len(self.adopted)} partition(s) written before sealing or not yet "
               f"recorded, accepted {len(self.accepted)} change(s), recorded "
               f"{len(self.state)} state file(s)"]
        if self.ledger_restarted:
            out.append(f"the damaged ledger was kept as {self.ledger_restarted}; a new one "
                       "starts from the data root as it is now")
        out += [f"  accepted {t}" for t in self.accepted]
        out += [f"  REFUSED {t}: {why}" for t, why in self.refused]
        if self.refused:
            out.append("the data root is not marked sealed until these are resolved (see "
                       "`talentvault verify`); accept a deliberate change with --accept TARGET")
        return out


def seal_root(root: Path, accept: tuple[str, ...] = ()) -> SealReport:
    """Seal what is not sealed yet (partitions written before sealing, or whose landing record
    a crash lost; the state files) after checking each partition's files against its manifest,
    and, for targets named in `accept` ("all": everything), accept their current content as
    the sealed one (a deliberate restore or repair). A partition that changed since it was
    sealed is never sealed silently: it is refused unless accepted."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist: set TALENTVAULT_DATA_DIR "
                                "or pass --data-dir")
    everything = "all" in accept
    report = SealReport()
    seals.check_key(root)
    s = seals.sealer()
    latest: dict[str, dict[str, Any]] = {}
    ledger = seals.ledger_path(root)
    if ledger.exists():
        entries, bad = seals.read(root)
        broken: list[str] = []
        check_chain(entries, bad, s, lambda _p, _k, why: broken.append(why), "")
        if broken and not everything:
            raise SealError(f"the seal ledger is damaged ({broken[0]}): restore `seals/` from a "
                            "copy of the data root, or start a new ledger that accepts every "
                            "partition as it is now: talentvault seal --accept all")
        if broken:
            kept = ledger.with_name(f"ledger-damaged-{datetime.now(UTC):%Y%m%dT%H%M%S}.jsonl")
            os.rename(ledger, kept)
            fsync(ledger.parent)
            report.ledger_restarted = str(kept.relative_to(root))
        else:
            latest, _ = replay(entries)
    folders = partition_folders(root)
    for folder in folders:
        target = seals.partition_target(folder)
        scratch = VerifyReport(str(root), False)
        m = check_partition(root, folder, scratch)
        last = latest.get(target)
        if m is not None and matches(target, m, last, s):
            continue
        wanted = everything or target in accept
        if scratch.problems or m is None:
            reason = scratch.problems[0].reason if scratch.problems else "no manifest"
            report.refused.append((target, f"its files do not match its manifest: {reason}"))
            continue
        if not wanted and (last is not None or own_seal_ok(target, m, s) is False):
            report.refused.append((target, "changed since it was sealed (or pruned and back)"))
            continue
        _reseal(folder, m, "accepted" if wanted else "adopted")
        (report.accepted if wanted else report.adopted).append(target)
    present = {seals.partition_target(f) for f in folders}
    for target, e in sorted(latest.items()):
        if is_live(e) and target not in present:
            if everything or target in accept:
                seals.append(root, "removed", target, reason="accepted by talentvault seal")
                report.accepted.append(target)
            else:
                report.refused.append((target, "gone without a prune"))
    _seal_state(root, latest, accept, report)
    if not report.refused:
        seals.append(root, "sealed_root", ".")
    return report


def _seal_state(root: Path, latest: dict[str, dict[str, Any]], accept: tuple[str, ...],
                report: SealReport) -> None:
    for rel in STATE_FILES:
        path, e = root / rel, latest.get(rel)
        wanted = "all" in accept or rel in accept
        if not path.exists():
            if e is not None and e.get("event") == "state":
                if wanted:
                    seals.append(root, "removed", rel, reason="accepted by talentvault seal")
                    report.accepted.append(rel)
                else:
                    report.refused.append((rel, "deleted since it was sealed"))
            continue
        if e is not None and e.get("sha256") == seals.sha256_file(path):
            continue
        if e is not None and not wanted:
            report.refused.append((rel, "changed since it was sealed"))
            continue
        rows = file_rows(path) if rel == LIST else None
        seals.record_state(root, rel, **({"rows": rows} if rows is not None else {}))
        (report.accepted if e is not None else report.state).append(rel)


def _reseal(folder: Path, m: dict[str, Any], event: str) -> None:
    """Replace a landed partition's manifest by the same content with a seal (atomically,
    fsynced; the temporary file sits beside the partition, never inside it), and record it."""
    manifest = seals.sealed(m, seals.partition_target(folder))
    tmp = folder.parent / f".staging-seal-{uuid.uuid4().hex[:8]}.json"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.chmod(0o444)
    fsync(tmp)
    os.replace(tmp, folder / "_manifest.json")
    fsync(folder)
    seals.record_partition(folder, manifest, event, "talentvault seal")
