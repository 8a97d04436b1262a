"""Seals: every manifest field and the suppression list are tamper-evident, `verify` names what
changed, and every legitimate rewrite (re-run, erasure, prune, `talentvault seal`) re-seals.
Tiny partitions built through the real storage writer; verify through the real CLI."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.identity import suppressed
from assets.keap.schemas import contacts
from assets.recovery.erasure import forget
from assets.recovery.retention import Policy, prune
from orchestration.cli import app
from orchestration.storage import seals
from orchestration.storage.snapshots import SnapshotStorage

runner = CliRunner()
DAYS = ("2026-01-04", "2026-01-05")


def _land(storage: SnapshotStorage, day: str, mode: str, ids: list[str], run: str = "r1"):
    w = storage.writer(contacts, day, mode=mode, run_id=run,
                       window=(datetime.fromisoformat(f"{day}T00:00:00+00:00"),
                               datetime.fromisoformat(f"{day}T23:59:59+00:00")))
    w.add([{"id": i, "given_name": f"N{i}", "update_time": f"{day}T10:00:00Z",
            "email_addresses": [{"email": f"p{i}@example.com", "field": "EMAIL1"}]}
           for i in ids])
    return w.commit()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two days of Keap contacts (a full, then an incremental) and a suppression list."""
    storage = SnapshotStorage(root=str(tmp_path))
    _land(storage, DAYS[0], "full", ["1", "2", "3"])
    _land(storage, DAYS[1], "incremental", ["2"])
    suppressed.add(tmp_path, "keap_contact", "99")
    return tmp_path


def _verify(root: Path) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", "--data-dir", str(root), "--json"])
    return result.exit_code, json.loads(result.output)


def _manifest(root: Path, day: str = DAYS[1]) -> Path:
    return root / "keap" / "contacts" / f"snapshot_date={day}" / "_manifest.json"


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.chmod(0o644)
    path.write_text(json.dumps(doc, indent=2))


def _reasons(report: dict) -> list[str]:
    return [p["reason"] for p in report["problems"]]


def test_a_fresh_root_is_sealed_and_verifies(root):
    code, report = _verify(root)
    assert code == 0, report["problems"]
    assert (report["sealed"], report["unsealed"], report["warnings"]) == (2, 0, [])
    manifest = json.loads(_manifest(root).read_text())
    assert manifest["seal"]["alg"] == "sha256" and len(manifest["seal"]["digest"]) == 64
    assert report["seal_head"]


EDITS = {
    "mode": (lambda m: m.update(mode="full"), "changed (sealed incremental, now full)"),
    "window.updated_to": (lambda m: m["window"].update(updated_to="2026-01-09T00:00:00.000Z"),
                          "changed (sealed 2026-01-05T23:59:59.000Z, now 2026-01-09T00:00"),
    "schema": (lambda m: m["schema"].pop(), "changed (its content differs"),
    "fetched": (lambda m: m.update(fetched=m["fetched"] + 5), "changed (sealed 1, now 6)"),
    "snapshot_date": (lambda m: m.update(snapshot_date="2026-01-06"),
                      "changed (sealed 2026-01-05, now 2026-01-06)"),
}


@pytest.mark.parametrize(("name", "reseal"), [(n, False) for n in EDITS] + [("mode", True)],
                         ids=[*EDITS, "mode-edited-and-resealed"])
def test_an_edited_manifest_field_is_named(root, name, reseal):
    change, how = EDITS[name]

    def edit(m):
        change(m)
        if reseal:   # the seal recomputed over the edit: the ledger still holds the field
            m["seal"] = seals.sealed(m, f"keap/contacts/snapshot_date={DAYS[1]}")["seal"]
    _edit(_manifest(root), edit)
    code, report = _verify(root)
    assert code == 1
    assert f"keap/contacts {DAYS[1]}: manifest field `{name}` {how}" in "\n".join(
        _reasons(report))
    assert f"keap/contacts/snapshot_date={DAYS[1]}/_manifest.json" in report["damaged_paths"]


def test_a_deleted_or_replaced_suppression_list_is_named(root):
    listed = root / "state" / "suppression.parquet"
    saved = listed.read_bytes()
    listed.unlink()
    code, report = _verify(root)
    assert code == 1
    assert any(r.startswith("state/suppression.parquet: deleted (sealed ")
               and "with 1 hashes" in r for r in _reasons(report))
    listed.write_bytes(saved[:-1] + b"\0")     # back, but not as talentvault wrote it
    code, report = _verify(root)
    assert code == 1 and "state/suppression.parquet" in report["damaged_paths"]
    listed.write_bytes(saved)
    assert _verify(root)[0] == 0


def test_a_deleted_salt_is_named_and_never_silently_replaced(root):
    (root / "state" / "suppression.salt").unlink()
    code, report = _verify(root)
    assert code == 1 and "state/suppression.salt" in report["damaged_paths"]
    with pytest.raises(RuntimeError, match="suppression.salt is missing while the suppression"):
        suppressed.is_suppressed(root, "keap_contact", "99")


def test_a_removed_partition_and_a_broken_ledger_are_named(root):
    shutil.rmtree(_manifest(root).parent)
    code, report = _verify(root)
    assert code == 1
    assert any(f"keap/contacts {DAYS[1]}: partition gone without a prune" in r
               for r in _reasons(report))
    ledger = seals.ledger_path(root)
    lines = ledger.read_text().splitlines(keepends=True)
    ledger.write_text("".join(lines[:1] + lines[2:]))   # drop one entry
    code, report = _verify(root)
    assert any(p["kind"] == "seal_ledger" for p in report["problems"])


def test_rerun_erasure_and_prune_keep_verify_green(root):
    storage = SnapshotStorage(root=str(root))
    _land(storage, DAYS[1], "incremental", ["2", "3"], run="again")        # re-run
    forget(root, source_ids={"keap": ["3"]})                                # erasure
    assert _verify(root)[0] == 0
    _land(storage, "2026-01-06", "full", ["1", "2"])
    _land(storage, "2026-01-07", "incremental", ["1"])
    pruned = prune(root, Policy(days=1, months=0), date(2026, 1, 8), apply=True)
    assert pruned.partitions_removed == 2
    code, report = _verify(root)
    assert code == 0, report["problems"]
    assert report["sealed"] == 2
    # the erasure re-sealed what it rewrote and the suppression list it grew
    events = [json.loads(line)["event"] for line in seals.ledger_path(root).open()]
    assert "erasure" in events and events.count("pruned") == 2


def test_backups_written_before_sealing_are_unsealed_until_sealed(root):
    for day in DAYS:
        _edit(_manifest(root, day), lambda m: m.pop("seal"))
    seals.ledger_path(root).unlink()
    code, report = _verify(root)
    assert code == 0 and report["unsealed"] == 2
    assert any("unsealed (written before sealing)" in w["reason"] for w in report["warnings"])
    sealed = runner.invoke(app, ["seal", "--data-dir", str(root)])
    assert sealed.exit_code == 0, sealed.output
    assert "sealed 2 partition(s)" in sealed.output
    code, report = _verify(root)
    assert (code, report["unsealed"], report["warnings"]) == (0, 0, [])
    _edit(_manifest(root, DAYS[0]), lambda m: m.update(mode="incremental"))
    code, report = _verify(root)
    assert "keap/contacts 2026-01-04: manifest field `mode` changed (sealed full, now " \
           "incremental)" in _reasons(report)
    # a changed partition is not sealed silently; accepting it on purpose is
    assert runner.invoke(app, ["seal", "--data-dir", str(root)]).exit_code == 1
    target = f"keap/contacts/snapshot_date={DAYS[0]}"
    assert runner.invoke(app, ["seal", "--data-dir", str(root), "--accept",
                               target]).exit_code == 0
    assert _verify(root)[0] == 1   # accepted, but an incremental without its base stays damage


def _rewrite_chain_without_key(root: Path) -> None:
    """An attacker who knows the format but not the key: edits `mode`, re-seals the manifest
    and rewrites the ledger entries from there on with plain sha256."""
    target = f"keap/contacts/snapshot_date={DAYS[1]}"
    path = _manifest(root)
    doc = json.loads(path.read_text())
    doc["mode"] = "full"
    forged = seals.sealed(doc, target)
    path.chmod(0o644)
    path.write_text(json.dumps(forged))
    plain = seals.Sealer(None)
    out, prev = [], None
    for line in seals.ledger_path(root).read_text().splitlines():
        e = json.loads(line)
        if e["target"] == target:
            e.update(digest=forged["seal"]["digest"], fields=seals.fields(forged))
        e.update(prev=prev, alg="sha256", key_id=None)
        e["hash"] = seals.entry_hash(plain, e)
        prev = e["hash"]
        out.append(json.dumps(e))
    seals.ledger_path(root).write_text("\n".join(out) + "\n")


def test_plain_chain_can_be_rewritten_by_whoever_knows_the_format(root, monkeypatch):
    monkeypatch.delenv(seals.KEY_ENV, raising=False)
    _rewrite_chain_without_key(root)
    assert _verify(root)[0] == 0   # the documented limit of an unkeyed chain


def test_with_a_key_a_rewritten_chain_is_damage(tmp_path, monkeypatch):
    monkeypatch.setenv(seals.KEY_ENV, "operator-secret")
    storage = SnapshotStorage(root=str(tmp_path))
    _land(storage, DAYS[0], "full", ["1", "2", "3"])
    _land(storage, DAYS[1], "incremental", ["2"])
    assert json.loads(_manifest(tmp_path).read_text())["seal"]["alg"] == "hmac-sha256"
    assert _verify(tmp_path)[0] == 0
    with monkeypatch.context() as m:
        m.delenv(seals.KEY_ENV)
        with pytest.raises(seals.SealKeyError, match="set TALENTVAULT_SEAL_KEY"):
            _land(storage, "2026-01-06", "incremental", ["1"])   # no downgrade by a writer
        assert not (_manifest(tmp_path).parent.parent / "snapshot_date=2026-01-06").exists()
        _rewrite_chain_without_key(tmp_path)
    code, report = _verify(tmp_path)
    assert code == 1, "a chain rewritten without the key passed"
    assert [p["kind"] for p in report["problems"]] == ["seal_key"]
    assert "rewritten by someone without the key" in report["problems"][0]["reason"]
