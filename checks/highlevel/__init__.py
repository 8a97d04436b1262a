"""HighLevel snapshot rules."""
