"""Which code a sandbox server runs: reported on /_sandbox/health, compared by
process.ensure_running before it reuses a server already on the port."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CODE: list[str] = []


def code_version() -> str:
    """A fingerprint of the sandbox's own source (every .py under sandbox/): a server started
    from another checkout, or before a code change, reports another one on /_sandbox/health."""
    if not _CODE:
        digest = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for path in sorted(here.rglob("*.py")):
            digest.update(str(path.relative_to(here)).encode())
            digest.update(path.read_bytes())
        _CODE.append(digest.hexdigest()[:16])
    return _CODE[0]
