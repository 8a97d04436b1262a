"""What an erasure reads and how it names a person's records: the folders it leaves alone, the
suppression files, and the id kinds (which columns hold which kind of id)."""

from __future__ import annotations

BACKUP_SOURCES = ("greenhouse", "keap", "highlevel")
# counts-only events; the emulated vendor systems; the seal ledger (digests and counts only:
# rewriting it would break its chain)
SKIP_TOP = ("audit", "sandbox", "seals")
SUPPRESSION_FILES = ("state/suppression.parquet", "state/suppression.salt")

# id kinds: c = Greenhouse candidate, a = Greenhouse application, k = Keap contact,
# h = HighLevel contact, p = identity profile
ID_COLUMNS: dict[str, str] = {
    "candidate_id": "c", "candidate_ids": "c", "merged_candidate_ids": "c",
    "candidate_ids_a": "c", "candidate_ids_b": "c", "related_ids": "c",
    "application_id": "a", "application_ids": "a", "current_application_id": "a",
    "contact_id": "kh", "contactId": "hk", "contact_ids": "kh",
    "profile_id": "p", "profile_id_a": "p", "profile_id_b": "p", "profile_ids": "p",
}
ENTITY_ID: dict[tuple[str, str], str] = {
    ("greenhouse", "candidates"): "c", ("greenhouse", "applications"): "a",
    ("keap", "contacts"): "k", ("highlevel", "contacts"): "h",
}
QUARANTINE_RECORD: dict[str, str] = {"candidates": "c", "applications": "a"}
KIND_NAMES = {"c": "greenhouse_candidates", "a": "greenhouse_applications",
              "k": "keap_contacts", "h": "highlevel_contacts", "p": "identity_profiles"}
SOURCE_KIND = {"greenhouse": "c", "keap": "k", "highlevel": "h"}
SUPPRESSION_KIND = {"c": "greenhouse_candidate", "a": "greenhouse_application",
                    "k": "keap_contact", "h": "highlevel_contact"}


def ids_of(kinds: str) -> str:
    inner = " OR ".join(f"kind = '{k}'" for k in kinds)
    return f"(SELECT id FROM person_ids WHERE {inner})"


def id_list(kinds: str) -> str:
    inner = " OR ".join(f"kind = '{k}'" for k in kinds)
    return f"(SELECT coalesce(list(id), []) FROM person_ids WHERE {inner})"
