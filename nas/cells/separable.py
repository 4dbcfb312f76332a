"""Cell templates: separable family (being written)."""
