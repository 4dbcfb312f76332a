"""Ops: shortcut helpers (being written)."""
