"""How a candidate architecture is scored: trained (`train`), by a zero-cost proxy (`proxy:NAME`,
`nas.evaluate.proxies`) or looked up in a ground-truth table (`table:PATH`, `nas.evaluate.table`).

`nas.evaluate.spec` reads an evaluator's name (no torch); `nas.evaluate.trainables` runs the proxy and
table evaluators as Ray Tune trials of a search.
"""
