"""Where talentvault keeps its files and how it finds the sandbox.

Everything a run writes lives under one storage root, `TALENTVAULT_DATA_DIR` (default `./data`).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8765


def data_root() -> Path:
    return Path(os.environ.get("TALENTVAULT_DATA_DIR", "./data")).resolve()


def sandbox_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "sandbox"


def sandbox_url() -> str:
    """Base URL of the sandbox server; each vendor lives under its own prefix below it."""
    url = os.environ.get("TALENTVAULT_SANDBOX_URL")
    if url:
        return url.rstrip("/")
    return f"http://{DEFAULT_SANDBOX_HOST}:{DEFAULT_SANDBOX_PORT}"
