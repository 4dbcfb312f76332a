"""Strategies run on a ground-truth table, in a plain ask/tell loop (no Ray, no training): every proposal is
answered from the table, so hundreds of searches cost seconds.

    space = load_space("cells", input_channels=1, input_size=28, num_classes=10)
    run = search_on_table(table, space, "evolution", seed=3, queries=50)
    run.best_so_far          # the best validation accuracy seen after each query (never drops)

A table built by `nas bench build` holds a seeded sample of its space, not the whole space (the `cells`
space has far more architectures than any table), so most genomes a strategy proposes are not in it.
Such a proposal is answered by its **nearest stored architecture**: the table entry whose sample differs
from the proposal's in the fewest choices (ties: the earliest in the table), and the strategy is told that
entry's accuracy. A proposal that is in the table (genome equality) is answered by its own entry. Each
proposal is one query; `distinct` counts the table entries the queries reached. This is a benchmark of
the strategies on the table's landscape (its architectures and the similarity of their choices), the
best that a sampled table allows; on a table that holds the whole space it is the exact lookup of
`--evaluate table:PATH`.

With `scores` (one per table entry: a proxy's, a supernet's, from `nas bench rank --report`'s scores.csv)
the strategy is told the answering entry's score instead of its accuracy, as in a search with
`--evaluate proxy:NAME` or `supernet:RUN`, and what the run has found after each query is the table
accuracy of the best-scored entry so far (the one such a search would retrain and report): it can drop
when a higher score goes with a lower accuracy. SPOS is evolution guided by its supernet's scores, RSWS
random search guided by them.
"""
from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.evaluate.table import Entry, Table
from nas.genome import Genome
from nas.search.strategies import make_searcher
from nas.search.strategies.base import FINISHED


@dataclass
class TableRun:
    strategy: str
    seed: int
    best_so_far: list[float] = field(default_factory=list)  # after query 1, 2, ...: accuracy of the best found
    entries: list[int] = field(default_factory=list)  # the table entry that answered each query
    exact: int = 0  # queries whose genome was in the table itself

    @property
    def distinct(self) -> int:
        return len(set(self.entries))


class Answerer:
    """Answers a proposal (its genome and sample) with a table entry: exact when stored, else the nearest."""

    def __init__(self, table: Table):
        self.table = table
        self.samples = [dict(e.sample or {}) for e in table.entries]
        self.keys = sorted({k for s in self.samples for k in s})

    def distance(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
        return sum(1 for k in self.keys if a.get(k) != b.get(k))

    def answer(self, config: Mapping[str, Any]) -> tuple[int, bool]:
        """(index of the answering entry, whether it is the genome's own) for a strategy's trial config
        (``genome``, ``sample``, ``fingerprint``)."""
        sample = config["sample"]
        if config.get("fingerprint") in self.table._index:  # only then can the genome be stored: confirm it
            written = config["genome"]
            genome = written if isinstance(written, Genome) else Genome.from_dict(written)
            entry = self.table.lookup(genome, written if isinstance(written, Mapping) else None)
            if entry is not None:
                return next(i for i in self.table._index[entry.fingerprint] if self.table.entries[i] is entry), True
        distances = [self.distance(sample, s) for s in self.samples]
        best = min(distances)
        return distances.index(best), False


def search_on_table(table: Table, space, strategy: str, *, seed: int, queries: int,
                    options: Mapping[str, Any] | None = None, answerer: Answerer | None = None,
                    scores: Sequence[float] | None = None) -> TableRun:
    """`strategy` (a name of `nas.search.strategies`) over `space` for `queries` proposals, each answered by
    the table (`Answerer`), told the entry's accuracy or, with `scores`, its score; a strategy that finishes
    early (a small space) ends the run early."""
    answerer = answerer or Answerer(table)
    if scores is not None and len(scores) != len(table):
        raise ValueError(f"{len(scores)} scores for a table of {len(table)} architectures")
    searcher = make_searcher(strategy, space, seed=seed, max_trials=queries, options=options)
    run = TableRun(strategy, seed)
    best = float("-inf")
    best_score = float("-inf")
    finite = [v for v in scores or () if math.isfinite(v)]
    worst = min(finite) if finite else 0.0
    waits = 0
    while len(run.best_so_far) < queries:
        trial_id = f"q{len(run.best_so_far)}_{waits}"
        config = searcher.suggest(trial_id)
        if config == FINISHED:
            break
        if config is None:  # nothing in flight in this loop: a strategy that waits has no more to give
            waits += 1
            if waits > 100:
                break
            continue
        index, exact = answerer.answer(config)
        entry: Entry = table.entries[index]
        told = entry.final_val_accuracy if scores is None else scores[index]
        if not math.isfinite(told):  # a proxy that could not score it: as the worst score the table has
            told = worst
        searcher.on_trial_complete(trial_id, {"val_accuracy": told, "params": entry.params, "flops": entry.flops})
        if scores is None:
            best = max(best, entry.final_val_accuracy)
        elif told > best_score:
            best_score, best = told, entry.final_val_accuracy
        run.best_so_far.append(best)
        run.entries.append(index)
        run.exact += int(exact)
    return run


@dataclass(frozen=True)
class TableJob:
    strategy: str
    seed: int
    name: str = ""  # the run's name in a report (a guided run: STRATEGY+EVALUATOR, whose scores it reads)


_SHARED: dict[str, Any] = {}  # what `run_jobs`'s worker processes read (set before they fork)


def _run(job: TableJob) -> TableRun:
    scores = _SHARED["scores"].get(job.name)
    return search_on_table(_SHARED["table"], _SHARED["space"], job.strategy, seed=job.seed,
                           queries=_SHARED["queries"], answerer=_SHARED["answerer"], scores=scores)


def run_jobs(table: Table, space, jobs: Sequence[TableJob], *, queries: int, scores: Mapping[str, Sequence[float]],
             workers: int = 1, answerer: Answerer | None = None) -> Iterator[TableRun]:
    """`search_on_table` for every job, in order, in `workers` forked processes (1: here); a job whose name
    has `scores` is guided by them. The runs do not depend on `workers`."""
    _SHARED.update(table=table, space=space, queries=queries, scores=dict(scores),
                   answerer=answerer or Answerer(table))
    if workers <= 1:
        yield from map(_run, jobs)
        return
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(_run, jobs)


def mean_curve(runs: Sequence[TableRun], length: int) -> list[float]:
    """The mean best-so-far over `runs` at each query 1..length; a run that ended early carries its best
    forward, so the mean never drops."""
    curves = [run.best_so_far + [run.best_so_far[-1]] * (length - len(run.best_so_far)) for run in runs
              if run.best_so_far]
    return [statistics.fmean(c[i] for c in curves) for i in range(length)] if curves else []
