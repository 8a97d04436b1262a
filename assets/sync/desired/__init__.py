"""`sync/keap_desired`: the Keap state each syncable person should have on day D.

One row per profile (identity/candidate_profiles, partition D) with the fields and managed tags
the mapping document implies, computed set-based in DuckDB from the profile and the Greenhouse
state as of the end of D (applications, jobs, stage history, interviews, offers, rejections).

Who is left out (counted in the metadata, never written):
- records in identity/quarantine (they are in no profile; a profile holding one is dropped too);
- people on the suppression list (any of their emails or candidate ids; see
  orchestration/storage/suppression.py);
- profiles sharing an email with another profile (the match key must be unique: the
  `emails_are_unique` identity check blocks the sync in that case, this is the second line);
- profiles whose `can_email` is false when the mapping says `consent.can_email_false: skip`.

The rules (which event holds, which tag wins) are in docs/sync.md ("Desired state").
"""


from assets.sync.desired.asset import keap_desired
from assets.sync.desired.base import KEY
from assets.sync.desired.build import has_inputs, write_desired

__all__ = ["KEY", "has_inputs", "keap_desired", "write_desired"]
