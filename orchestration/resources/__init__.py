"""Resources: one module per vendor API client (snapshot storage is orchestration/storage/)."""

from __future__ import annotations

import os

import dagster as dg

from orchestration.config import checked_mode
from orchestration.resources.greenhouse import GreenhouseClient, GreenhouseResource
from orchestration.resources.highlevel import HighLevelClient, HighLevelResource
from orchestration.resources.keap import KeapClient, KeapResource
from orchestration.storage.snapshots import SnapshotStorage

# what the product holds when it talks to a vendor: the resource (configuration) and the client
# it opens (one HTTP session); restore writes to the two CRMs only
VendorResource = GreenhouseResource | KeapResource | HighLevelResource
VendorClient = GreenhouseClient | KeapClient | HighLevelClient
CrmClient = KeapClient | HighLevelClient

__all__ = ["CrmClient", "GreenhouseClient", "GreenhouseResource", "HighLevelClient",
           "HighLevelResource", "KeapClient", "KeapResource", "VendorClient", "VendorResource",
           "build_resources"]

# env var -> resource field, per vendor (in live mode; sandbox mode binds none of them)
ENV = {
    "greenhouse": {"GREENHOUSE_BASE_URL": "base_url", "GREENHOUSE_TOKEN_URL": "token_url",
                   "GREENHOUSE_CLIENT_ID": "client_id",
                   "GREENHOUSE_CLIENT_SECRET": "client_secret"},
    "keap": {"KEAP_BASE_URL": "base_url", "KEAP_TOKEN_URL": "token_url",
             "KEAP_API_KEY": "api_key", "KEAP_CLIENT_ID": "client_id",
             "KEAP_CLIENT_SECRET": "client_secret", "KEAP_REFRESH_TOKEN": "refresh_token"},
    "highlevel": {"HIGHLEVEL_BASE_URL": "base_url", "HIGHLEVEL_TOKEN": "token",
                  "HIGHLEVEL_LOCATION_ID": "location_id"},
}


def _from_env(vendor: str) -> dict[str, dg.EnvVar]:
    """Fields bound to the env vars that are set; secrets stay env vars (never in config)."""
    return {field: dg.EnvVar(name) for name, field in ENV[vendor].items() if os.environ.get(name)}


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """The code location's resources. Checks TALENTVAULT_MODE first (orchestration/config.py):
    a live deployment missing a vendor setting fails to load, naming the variable."""
    if checked_mode() == "sandbox":
        return {"storage": SnapshotStorage(), "greenhouse": GreenhouseResource(),
                "keap": KeapResource(), "highlevel": HighLevelResource()}
    greenhouse = _from_env("greenhouse")
    if os.environ.get("GREENHOUSE_USER_ID"):
        greenhouse["user_id"] = dg.EnvVar.int("GREENHOUSE_USER_ID")
    return {
        "storage": SnapshotStorage(),
        "greenhouse": GreenhouseResource(**greenhouse),
        "keap": KeapResource(**_from_env("keap")),
        "highlevel": HighLevelResource(**_from_env("highlevel")),
    }
