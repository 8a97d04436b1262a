"""The synthetic recruiting world: its people, history, clock and daily life."""
