"""One-shot architecture search: a supernet derived from the space, trained once, paths chosen from it."""
