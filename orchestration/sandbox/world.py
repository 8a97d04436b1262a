"""The synthetic recruiting world (placeholder until the generator lands)."""

from __future__ import annotations

from pathlib import Path

from orchestration.sandbox.store import DB_NAME, Store


def ensure(folder: Path, *, candidates: int = 3000, seed: int = 42) -> None:
    """Make sure a world exists in `folder`; generate one if not."""
    if not (Path(folder) / DB_NAME).exists():
        generate(folder, candidates=candidates, seed=seed)


def generate(folder: Path, *, candidates: int = 3000, seed: int = 42,
             start: str = "2026-01-05") -> dict:
    Store(folder).close()
    raise NotImplementedError("world generation is not written yet")
