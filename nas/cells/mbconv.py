"""Cell templates: mbconv family (being written)."""
