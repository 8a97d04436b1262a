"""Keap's X-Hook-Secret: learned during verification, kept on disk, checked on every delivery.

Keap sends a secret when a hook is created or re-verified, and the same secret with every
delivery. A verification is only answered (and its secret learned) while `talentvault webhooks
register` has a registration window open (a file with an expiry time, shared through the data
root by the CLI and the receiver): otherwise anyone could make the receiver learn a secret of
their own and then post deliveries with it. A secret already known is always answered.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

WINDOW_SECONDS = 300.0


def secrets_dir(root: Path) -> Path:
    return Path(root) / "state" / "webhooks"


def secret_file(root: Path) -> Path:
    return secrets_dir(root) / "keap_hook_secret"


def known_secrets(root: Path) -> list[str]:
    path = secret_file(root)
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def learn_secret(root: Path, secret: str) -> bool:
    """Add a secret (one per line, file mode 0600, replaced atomically); False if known."""
    folder = secrets_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "keap_hook_secret.lock", "a") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        current = known_secrets(root)
        if secret in current:
            return False
        tmp = folder / ".keap_hook_secret.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{s}\n" for s in [*current, secret]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, secret_file(root))
    return True


def _window_file(root: Path) -> Path:
    return secrets_dir(root) / "keap_verify_window"


def open_window(root: Path, seconds: float = WINDOW_SECONDS) -> None:
    secrets_dir(root).mkdir(parents=True, exist_ok=True)
    path = _window_file(root)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{time.time() + seconds:.3f}\n")
    os.replace(tmp, path)


def close_window(root: Path) -> None:
    _window_file(root).unlink(missing_ok=True)


def window_open(root: Path) -> bool:
    try:
        return float(_window_file(root).read_text().strip()) > time.time()
    except (FileNotFoundError, ValueError):
        return False
