"""Who answers for each room's assets: the owner the Dagster UI shows on every asset (and filters
the catalog by).

Every asset group (greenhouse, keap, highlevel, backups, maintenance, identity, sync) is owned by
`team:data-platform` unless `TALENTVAULT_ASSET_OWNERS` says otherwise: comma-separated
`group=owner` pairs, `*` for every group not named, an owner being a `team:<name>` or an email
address (Dagster's two forms), e.g. `sync=team:crm-ops,*=team:data`. Read when the code location
loads; only the UI's display changes, never what runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

DEFAULT_OWNER = "team:data-platform"
OWNERS_ENV = "TALENTVAULT_ASSET_OWNERS"


class OwnersError(ValueError):
    """`TALENTVAULT_ASSET_OWNERS` is not a list of group=owner pairs."""


def owners_by_group(text: str | None = None) -> dict[str, str]:
    """The setting as {group or '*': owner}; '*' is always present."""
    text = os.environ.get(OWNERS_ENV, "") if text is None else text
    owners = {"*": DEFAULT_OWNER}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        group, sep, owner = (s.strip() for s in pair.partition("="))
        if not sep or not group or not (owner.startswith("team:") or "@" in owner):
            raise OwnersError(f"{OWNERS_ENV}: {pair!r} is not group=owner, the owner a "
                              "team:<name> or an email (e.g. sync=team:crm-ops or *=team:data)")
        owners[group] = owner
    return owners


def with_owners(assets: Sequence[dg.AssetsDefinition],
                owners: dict[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The assets with their group's owner (an owner already declared on an asset is kept)."""
    owners = owners_by_group() if owners is None else owners

    def own(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.owners:
            return spec
        return spec.replace_attributes(owners=[owners.get(spec.group_name or "", owners["*"])])

    return list(dg.map_asset_specs(own, assets))
