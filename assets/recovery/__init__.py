"""Recovery: getting the backups back out, and keeping them honest. restore/ (point-in-time
restore of Keap and HighLevel: preview, then apply), erasure/ (forgetting one person everywhere),
retention.py (which snapshots to keep), verify/ (proving the files are intact)."""
