"""Cell templates: fractal family (being written)."""
