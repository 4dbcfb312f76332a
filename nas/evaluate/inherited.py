"""A trained supernet as an evaluator: a candidate scored by its path's validation accuracy with the weights
it inherits from the supernet, batch-norm statistics recalibrated first (SPOS), nothing trained.

    scorer = InheritedScorer.load("results/runs/spos-...")   # a finished one-shot run folder (nas search)
    scorer.score(sample)                                    # a sample of the run's space -> accuracy in [0, 1]

The run folder says everything: ``search.json`` (space, data set, recipe, the strategy and its options) and
the last checkpoint of its one trial (the whole one-shot state, the supernet's weights among it). Any
one-shot strategy's supernet serves: darts, pcdarts, spos, rsws, enas.

A candidate's path is its sample restricted to the supernet's choices. The cells supernet fixes the
network-level choices (``channels``, ``normal_cells``: the run's options, default the space's first), so two
candidates that differ only there get the same score: the evaluator ranks cells at the supernet's width
and depth, as the one-shot searches themselves do. With partial channels (PC-DARTS) a path runs through
1/K-wide edges, a proxy of the cell, not the genome's network.

Every candidate's BN statistics are re-estimated on `bn_batches` training batches (the run's option,
default 4) drawn by a generator seeded with `seed` afresh for each candidate, so a score does not depend on
which candidates were scored before it. The data are the run's own (its data set, split seed and limits:
`load_run_data`) unless others are given (`nas bench rank` gives the table's).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas.engine.records import RecordsError, read_records
from nas.errors import NasError
from nas.evaluate.spec import EvaluatorError, check_run_folder
from nas.oneshot.search import OneShotSearch, make_search
from nas.search.config import SearchConfig, SearchError
from nas.search.run_folder import read_config
from nas.search.strategies import strategy_class
from nas.spaces import load_space
from nas.train.checkpointing import STATE_FILE, read_state
from nas.train.datasets import DatasetSplits, load_dataset


def _last_state(folder: Path) -> dict[str, Any]:
    """The one-shot state of the run's last checkpoint (the recorded one, else the newest under tune/)."""
    try:
        records = read_records(folder)
    except RecordsError as error:
        raise EvaluatorError(f"supernet:{folder}: {error}") from None
    places = [Path(r.checkpoint) for r in records if r.checkpoint]
    places += sorted(folder.glob("tune/trial_*/checkpoint_*"), key=lambda p: p.name, reverse=True)
    why = "no checkpoint"
    for place in places:
        state, damage = read_state(place)
        if state is not None and "oneshot" in state:
            return state
        why = f"{place / STATE_FILE}: {damage or 'not a one-shot checkpoint'}"
    raise EvaluatorError(f"supernet:{folder}: no trained supernet to read ({why})")


@dataclass
class InheritedScorer:
    """A one-shot run's trained supernet, ready to score samples of its space (see the module's docstring)."""

    folder: Path
    config: SearchConfig
    search: OneShotSearch
    seed: int = 0

    @staticmethod
    def load(folder: str | Path, data: DatasetSplits | None = None, *, seed: int = 0) -> "InheritedScorer":
        """The supernet of the finished one-shot run in `folder`; bad input is one `EvaluatorError` line.
        `data`: the data set to score on (default: the run's own, `load_run_data`)."""
        folder = Path(folder)
        check_run_folder(folder, f"supernet:{folder}")
        try:
            config = read_config(folder)
        except (SearchError, NasError) as error:
            raise EvaluatorError(f"supernet:{folder}: {error}") from None
        if not getattr(strategy_class(config.strategy), "oneshot", False):
            raise EvaluatorError(f"supernet:{folder}: a {config.strategy} search trains no supernet "
                                 "(one-shot strategies: darts, pcdarts, spos, rsws, enas)")
        state = _last_state(folder)
        if data is None:
            data = load_run_data(config)
        space = load_space(config.space, input_channels=data.channels, input_size=data.size,
                           num_classes=data.num_classes)
        options = strategy_class(config.strategy).resolve_options(config.options)
        search = make_search(config.strategy, space, data, config.settings, options, seed=config.seed,
                             paths=config.trials)
        search.load_state_dict(state["oneshot"])
        return InheritedScorer(folder, config, search, seed)

    @property
    def bn_batches(self) -> int:
        """Training batches that recalibrate a path's BN statistics (the run's option)."""
        return int(self.search.options.get("bn_batches", 0))

    @property
    def name(self) -> str:
        return f"supernet:{self.config.strategy}"

    def path(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """The supernet's path for a sample of its space (choices the supernet fixes are left out)."""
        choices = [choice.name for choice in self.search.space.choices]
        missing = [name for name in choices if name not in sample]
        if missing:
            raise EvaluatorError(f"supernet:{self.folder}: the sample has no {missing[0]!r}: not a sample of the "
                                 f"supernet's space {self.config.space!r}")
        return {name: sample[name] for name in choices}

    def score(self, sample: Mapping[str, Any]) -> float:
        """Validation accuracy of `sample`'s path with the inherited weights, BN statistics recalibrated (the
        one-shot search's own scoring, its batches drawn by a generator seeded afresh)."""
        return self.search.score(self.path(sample), torch.Generator().manual_seed(self.seed))


def load_run_data(config: SearchConfig, data_dir: str | None = None) -> DatasetSplits:
    """The data set and split a search ran on (its search.json), optionally from another folder."""
    return load_dataset(config.dataset, data_dir or config.data_dir, val_fraction=config.val_fraction,
                        seed=config.seed, train_limit=config.train_limit, val_limit=config.val_limit)
