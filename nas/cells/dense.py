"""Cell templates: dense family (being written)."""
