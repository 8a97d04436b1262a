"""Keap snapshot rules."""
