"""A table's architectures scored by the evaluators that are not zero-cost proxies, for `nas bench rank`:

    supernet_scores(table, InheritedScorer.load(run, data))      # inherited weights of a one-shot run
    predictor_scores(table, space, 20, seed=0)                      # PNAS's predictor fitted on 20 of the rows

- **A trained supernet** (`nas.evaluate.inherited`): every architecture's path scored on the table's
  validation split with the weights of a one-shot run (darts, pcdarts, spos, rsws, enas), BN statistics
  recalibrated. Named ``supernet:<run folder's name>``.
- **PNAS's predictor after n samples**: the predictor of `--strategy pnas` (`nas.search.strategies.predictor`:
  an ensemble of MLPs over a one-hot encoding of the space's choices, with pnas's default ensemble, width,
  steps and learning rate) fitted on n architectures drawn from the table (seeded) with their table
  accuracies, then asked for the others. The n it learned from get no score (NaN), so its correlations are
  over the held-out architectures only: what a search that has trained n networks can predict of the rest.
  Named ``predictor@n``.

Both return one score per table entry, in the table's order, like `nas.evaluate.bench.rank_table`'s proxies;
`more_rankings` adds both kinds to its rankings.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

from nas.evaluate.bench import Ranking, correlations
from nas.evaluate.inherited import InheritedScorer
from nas.evaluate.spec import EvaluatorError, check_predictor_size
from nas.evaluate.table import Table
from nas.search.strategies.pnas import PNASSearcher
from nas.search.strategies.predictor import Ensemble, OneHot
from nas.spaces.base import SearchSpace
from nas.train.datasets import DatasetSplits

Progress = Callable[[int, int, float], None]


def supernet_name(run: str | Path) -> str:
    return f"supernet:{Path(run).resolve().name}"


def supernet_scores(table: Table, scorer: InheritedScorer, *, progress: Progress | None = None
                    ) -> tuple[list[float], float]:
    """(every entry's accuracy with the supernet's inherited weights, the seconds all took)."""
    if scorer.config.dataset != table.meta.get("dataset"):
        raise EvaluatorError(f"supernet:{scorer.folder}: trained on {scorer.config.dataset}, the table is of "
                             f"{table.meta.get('dataset')}")
    scores = []
    started = time.perf_counter()
    for i, entry in enumerate(table.entries):
        if not entry.sample:
            raise EvaluatorError(f"{table.describe()}: entry {i + 1} has no sample of its space to take a path from")
        scores.append(scorer.score(entry.sample))
        if progress is not None:
            progress(i + 1, len(table), time.perf_counter() - started)
    return scores, time.perf_counter() - started


def split_note(table: Table, scorer: InheritedScorer) -> str | None:
    """A note when the supernet did not train on the table's split (it may have seen the validation images)."""
    split = table.meta.get("data") or {}
    theirs = {"train_limit": scorer.config.train_limit, "val_fraction": scorer.config.val_fraction,
              "seed": scorer.config.seed}
    differ = [f"{k} {theirs[k]} (table: {split[k]})" for k in theirs if k in split and split[k] != theirs[k]]
    if not differ:
        return None
    return f"note: its training split is not the table's ({', '.join(differ)}): it may have trained on images it " \
           "is now judged on"


def predictor_defaults() -> dict[str, float]:
    """The ensemble settings `--strategy pnas` uses by default (its Options dataclass)."""
    defaults = {f.name: f.default for f in fields(PNASSearcher.Options)}
    return {"members": defaults["ensemble"], "hidden": defaults["hidden"], "epochs": defaults["epochs"],
            "lr": float(defaults["lr"])}


def predictor_scores(table: Table, space: SearchSpace, n: int, truth: Sequence[float], *, seed: int = 0
                     ) -> tuple[list[float], float]:
    """(the predictor's prediction for every entry it did not learn from, NaN for the `n` it did; seconds)."""
    check_predictor_size(n, len(table))
    started = time.perf_counter()
    learned = sorted(random.Random(seed).sample(range(len(table)), n))
    encoding = OneHot(space)
    settings = predictor_defaults()
    model = Ensemble(encoding.width, members=int(settings["members"]), hidden=int(settings["hidden"]),
                     epochs=int(settings["epochs"]), lr=settings["lr"])
    samples = [dict(entry.sample or {}) for entry in table.entries]
    model.fit(encoding.encode([samples[i] for i in learned]), [truth[i] for i in learned], seed)
    predicted = model.predict(encoding.encode(samples))
    taken = set(learned)
    return [math.nan if i in taken else p for i, p in enumerate(predicted)], time.perf_counter() - started


def more_rankings(table: Table, space: SearchSpace, data: DatasetSplits, truth: Sequence[float], *,
                  supernets: Sequence[str | Path] = (), predictors: Sequence[int] = (), seed: int = 0,
                  progress: Progress | None = None, say: Callable[[str], None] | None = None
                  ) -> tuple[list[Ranking], dict[str, list[float]]]:
    """Rankings and scores of `supernets` (one-shot run folders) and of PNAS's predictor after each n of
    `predictors`, against `truth` (one accuracy per entry)."""
    names = [supernet_name(run) for run in supernets]
    if len(set(names)) < len(names):
        raise EvaluatorError(f"--supernet: two runs have the same folder name ({', '.join(names)}); rename one")
    scores: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for run, name in zip(supernets, names):
        scorer = InheritedScorer.load(run, data, seed=seed)
        if say is not None:
            say(f"{name}: a {scorer.config.strategy} supernet trained for {scorer.search.epoch} epochs, "
                f"{scorer.bn_batches} BN batches per path")
            note = split_note(table, scorer)
            if note:
                say(f"{name}: {note}")
        scores[name], seconds[name] = supernet_scores(table, scorer, progress=progress)
    for n in predictors:
        name = f"predictor@{n}"
        scores[name], seconds[name] = predictor_scores(table, space, n, truth, seed=seed)
    rankings = []
    for name, values in scores.items():
        tau, rho, used = correlations(values, truth)
        rankings.append(Ranking(name, tau, rho, used, seconds[name], None))
    return rankings, scores
