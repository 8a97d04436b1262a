"""The Keap changeset of day D: what must change in Keap so every synced profile holds its
desired state (`sync/keap_desired`), and nothing else. Set-based DuckDB SQL over Parquet.

Steps (one in-memory DuckDB, spilling to the data root; one module each, run by build.py; the
asset is asset.py):
  1. Keap now (`state.py`): the Keap backup as of the end of D, corrected by the
     ledger's later successful writes, with normalized emails from identity/keap_contacts.
  2. Matching: a profile's emails (primary first) against the contacts' normalized emails.
     Several contacts hold them: the one holding the primary email, then the oldest (lowest
     numeric id, the rule Keap's duplicate_option=Email follows) is chosen; `conflict` names
     the others. A contact two profiles point at goes to the profile holding its primary email
     (then the lowest profile id); the other profile is skipped and reported, never created.
  3. Field differences: only fields whose value differs; `keap_wins` fields a human changed in
     Keap after our last write keep Keap's value (see `docs/sync.md`).
  4. Rows: `create` (full body), `update` (PATCH body with complete merged arrays and an
     update_mask), `tag_add`, `tag_remove` (managed tags only). Deterministic change ids;
     dead-lettered change ids are left out until their input changes.
"""

from assets.sync.changeset.asset import CHANGESET_KEY, keap_changeset
from assets.sync.changeset.build import ChangesetBuild, build_changeset
from assets.sync.changeset.summary import changeset_partition

__all__ = ["CHANGESET_KEY", "ChangesetBuild", "build_changeset", "changeset_partition",
           "keap_changeset"]
