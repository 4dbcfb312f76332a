"""Cell templates: inception family (being written)."""
