"""Where talentvault keeps its files, which vendors it talks to, and how it finds the sandbox.

Everything a run writes lives under one storage root, `TALENTVAULT_DATA_DIR` (default `./data`).

Live or sandbox is one explicit setting, `TALENTVAULT_MODE`:
- `live`: the real vendors. Every vendor's base URL and credentials must be in the environment;
  a missing one is a start-up error naming it. The sandbox is never started or called.
- `sandbox`: the built-in emulators. No vendor setting may be present, so nothing meant for a
  sandbox (the demo, a test) can write to a real account.
- unset: `sandbox` when no vendor setting is present (the quickstart needs no configuration),
  an error when some are: a deployment that holds credentials must say `live`, so a forgotten
  base URL can never silently send its writes to the sandbox.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8765
MODE_VAR = "TALENTVAULT_MODE"
MODES = ("live", "sandbox")


class ModeError(ValueError):
    """A deployment setting that must be fixed before anything runs (the message says how)."""


@dataclass(frozen=True)
class VendorSettings:
    """What live mode needs from one vendor: its base URL and one complete credential set."""

    base_url: str
    example_url: str
    credentials: tuple[tuple[str, ...], ...]   # alternatives; every name of one must be set
    optional: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.base_url, *sorted({n for c in self.credentials for n in c}), *self.optional)


VENDORS = {
    "greenhouse": VendorSettings(
        "GREENHOUSE_BASE_URL", "https://harvest.greenhouse.io",
        (("GREENHOUSE_CLIENT_ID", "GREENHOUSE_CLIENT_SECRET", "GREENHOUSE_USER_ID"),),
        ("GREENHOUSE_TOKEN_URL",)),
    "keap": VendorSettings(
        "KEAP_BASE_URL", "https://api.keap.com/crm",
        (("KEAP_API_KEY",), ("KEAP_CLIENT_ID", "KEAP_CLIENT_SECRET", "KEAP_REFRESH_TOKEN")),
        ("KEAP_TOKEN_URL",)),
    "highlevel": VendorSettings(
        "HIGHLEVEL_BASE_URL", "https://services.leadconnectorhq.com",
        (("HIGHLEVEL_TOKEN", "HIGHLEVEL_LOCATION_ID"),)),
}


DATA_DIR_VAR = "TALENTVAULT_DATA_DIR"


def configured_root() -> Path:
    """The storage root as configured, unchecked (`encryption rotate` works on it as it is). A
    bucket URL (`s3://bucket/prefix`): this machine's working cache of it (storage/primary.py)."""
    from orchestration.storage import primary

    bucket_url = primary.url()
    if bucket_url:
        return primary.cache_root(bucket_url)
    return Path(os.environ.get(DATA_DIR_VAR, "./data")).resolve()


def data_root(*, partitions: bool = True) -> Path:
    """The storage root, after checking the encryption key fits it (storage/parquet.py); a
    bucket primary's cache is first brought up to the bucket (at most every few seconds; the
    root's records only without `partitions`, for readers that take partitions from the bucket)."""
    from orchestration.storage.hydrate import hydrate
    from orchestration.storage.parquet import check_root

    root = configured_root()
    hydrate(root, partitions=partitions)
    check_root(root)
    return root


def sandbox_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "sandbox"


def sandbox_url() -> str:
    """Base URL of the sandbox server; each vendor lives under its own prefix below it."""
    url = os.environ.get("TALENTVAULT_SANDBOX_URL")
    if url:
        return url.rstrip("/")
    return f"http://{DEFAULT_SANDBOX_HOST}:{DEFAULT_SANDBOX_PORT}"


def sandbox_url_chosen() -> bool:
    """True when TALENTVAULT_SANDBOX_URL names the sandbox: whatever answers there is used as is
    (the default port's server is checked to serve this data root with this code)."""
    return _set("TALENTVAULT_SANDBOX_URL")


def _set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def vendor_variables_set() -> list[str]:
    """Names (never values) of the vendor settings present in the environment."""
    return [n for v in VENDORS.values() for n in v.names() if _set(n)]


def mode() -> str:
    """`live` or `sandbox` (see the module docstring); raises ModeError when it is ambiguous."""
    value = os.environ.get(MODE_VAR, "").strip().lower()
    if value in MODES:
        return value
    if value:
        raise ModeError(f"{MODE_VAR}={value!r} is not a mode: set {MODE_VAR}=live (the real "
                        f"vendors) or {MODE_VAR}=sandbox (the built-in emulators)")
    present = vendor_variables_set()
    if present:
        raise ModeError(f"{', '.join(present)} {_is(present)} set but {MODE_VAR} is not: set "
                        f"{MODE_VAR}=live to use the real vendors, or unset {_it(present)} to use "
                        "the sandbox")
    return "sandbox"


def _is(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _it(names: list[str]) -> str:
    return "it" if len(names) == 1 else "them"


def _keap_token_saved() -> bool:
    # after the first OAuth refresh the rotated refresh token lives on disk, not in the env
    return (data_root() / "state" / "keap_oauth.json").exists()


def missing_live_settings(vendor: str) -> list[str]:
    """What live mode still needs from a vendor, each as '<NAME> (<hint>)'."""
    v = VENDORS[vendor]
    missing = [] if _set(v.base_url) else [f"{v.base_url} (e.g. {v.example_url})"]
    complete = [c for c in v.credentials
                if all(_set(n) or (n == "KEAP_REFRESH_TOKEN" and _keap_token_saved())
                       for n in c)]
    if not complete:
        # name what is missing from the set the deployment was going for (the most names set)
        best = min(v.credentials, key=lambda c: (sum(not _set(n) for n in c),
                                                 -sum(_set(n) for n in c)))
        unset = [n for n in best if not _set(n)]
        alternatives = [" + ".join(c) for c in v.credentials if c != best]
        missing.append(" + ".join(unset) + (f" (or {' or '.join(alternatives)})"
                                            if alternatives else ""))
    return missing


def checked_mode(vendors: tuple[str, ...] = tuple(VENDORS)) -> str:
    """The mode, after checking the environment fits it: live needs every vendor's settings,
    sandbox needs none. Raises ModeError naming each variable and the fix."""
    current = mode()
    if current == "live":
        missing = [m for v in vendors for m in missing_live_settings(v)]
        if missing:
            raise ModeError(f"live mode ({MODE_VAR}=live) needs {'; '.join(missing)}: set "
                            f"{_it(missing)} in the environment, or "
                            f"set {MODE_VAR}=sandbox to use the built-in sandbox")
    else:
        present = vendor_variables_set()
        if present:
            raise ModeError(f"sandbox mode never reaches a real vendor, but {', '.join(present)} "
                            f"{_is(present)} set: unset {_it(present)}, or set {MODE_VAR}=live")
    return current


def require_sandbox_mode(what: str) -> None:
    """Refuse `what` (e.g. the demo) outside sandbox mode."""
    if mode() == "live":
        raise ModeError(f"{what} runs only against the sandbox and {MODE_VAR} is live: run it "
                        f"from a shell with {MODE_VAR}=sandbox and no vendor settings")
    checked_mode()


def sandbox_may_start() -> None:
    """Raise in live mode: there a vendor without a base URL is a configuration error, not a
    reason to start the local sandbox and send its writes there."""
    if mode() == "live":
        raise ModeError(f"live mode ({MODE_VAR}=live) never starts the sandbox: set every "
                        f"vendor's *_BASE_URL, or set {MODE_VAR}=sandbox")


def sandbox_allowed(vendor: str) -> None:
    """Raise unless an empty base URL may mean the sandbox (never in live mode)."""
    if mode() == "live":
        v = VENDORS[vendor]
        raise ModeError(f"live mode ({MODE_VAR}=live) needs {v.base_url} (e.g. {v.example_url}): "
                        f"set it in the environment, or set {MODE_VAR}=sandbox to use the "
                        "built-in sandbox")
