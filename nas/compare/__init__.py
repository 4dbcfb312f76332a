"""Searched against hand-designed networks: the same data, recipe and seeds; a report with significance tests.

- `plan`: which models (searched genomes of run folders, baselines, cell transplants) and their genomes
- `transplant`: a searched network's cells in a hand-designed skeleton, parameter count matched
- `run`: the Ray Tune grid of model x seed trials (resumable) and the per-trial records
- `stats`: mean and spread over seeds, Welch's t-tests with Holm's adjustment, Pareto fronts
- `latency`: inference latency measured on this machine
- `figures`, `document`, `report`: the figures and the Markdown / HTML report
"""
