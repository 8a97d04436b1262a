"""Greenhouse snapshot rules."""
