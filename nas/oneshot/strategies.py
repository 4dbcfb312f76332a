"""The one-shot strategies as registered strategies: their options (`nas search --strategy spos
--help-options`) and, where the strategy has one, the ask/tell object that picks paths.

`spos` is regularized evolution (`nas.search.strategies.evolution`) and `rsws` random search
(`nas.search.strategies.random_search`) over the supernet's paths: `nas.oneshot.search` drives them
through ask/tell after the supernet is trained, each path scored with inherited, BN-recalibrated weights.
`darts` and `pcdarts` choose by gradient, not by proposals: their `ask` says so. All four carry
``oneshot = True``: `nas search` runs them as one supernet-training trial (`nas.oneshot.run`).
"""
from __future__ import annotations

from typing import Any

from nas.search.strategies.base import Proposal, SpaceSearcher, StrategyError
from nas.search.strategies.evolution import EvolutionSearcher
from nas.search.strategies.random_search import RandomSearcher

COMMON: dict[str, Any] = {"channels": None, "normal_cells": None, "bn_batches": 4, "stop_skips": 0}
COMMON_HELP: dict[str, tuple[str, str]] = {
    "channels": ("int", "cell width C of the supernet (and of the genome found); none: the space's first option"),
    "normal_cells": ("int", "normal cells per stage of the supernet; none: the space's first option"),
    "bn_batches": ("int", "training batches that recalibrate a path's batch-norm statistics before it is scored"),
    "stop_skips": ("int", "stop training once the derived normal cell holds this many skip connections "
                          "(DARTS+ / P-DARTS use 2); 0: never"),
}
DARTS: dict[str, Any] = {"arch_lr": 3e-4, "arch_weight_decay": 1e-3, "partial_channels": 1, "warmup_epochs": 0,
                         "order": 1}
DARTS_HELP: dict[str, tuple[str, str]] = {
    "arch_lr": ("float", "Adam learning rate of the architecture weights (DARTS: 3e-4)"),
    "arch_weight_decay": ("float", "weight decay of the architecture weights (DARTS: 1e-3)"),
    "partial_channels": ("int", "PC-DARTS: 1/K of an edge's channels go through its ops (1: off, as DARTS)"),
    "warmup_epochs": ("int", "first epochs that train the network weights only (PC-DARTS: 15 of 50)"),
    "order": ("int", "1: first-order architecture gradient; 2: DARTS's unrolled second-order one (about 3x dearer)"),
}
PATHS_HELP = "paths scored after the supernet is trained: --trials"


class OneShotMixin:
    oneshot = True  # `nas search` runs the strategy as one supernet-training trial (nas.oneshot.run)


class DartsSearcher(OneShotMixin, SpaceSearcher):
    """DARTS (Liu et al. 2019): architecture weights learned by gradient on held-out batches (first or second order)."""

    name = "darts"
    OPTIONS = {**COMMON, **DARTS}
    OPTION_HELP = {**COMMON_HELP, **DARTS_HELP}

    def setup(self) -> None:
        if self.options["partial_channels"] < 1:
            raise StrategyError(f"strategy {self.name!r} option partial_channels: must be >= 1")
        if self.options["order"] not in (1, 2):
            raise StrategyError(f"strategy {self.name!r} option order: 1 (first order) or 2 (second order), "
                                f"got {self.options['order']!r}")

    def ask(self) -> Proposal:
        raise StrategyError(f"{self.name} learns the architecture by gradient in a supernet; it proposes no "
                            "trials (run it with `nas search --strategy darts` or nas.oneshot)")

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        raise StrategyError(f"{self.name} takes no trial results")


class PcDartsSearcher(DartsSearcher):
    """PC-DARTS (Xu et al. 2020): DARTS with partial channels (K = 4) and edge normalisation."""

    name = "pcdarts"
    OPTIONS = {**COMMON, **DARTS, "partial_channels": 4}


class SposSearcher(OneShotMixin, EvolutionSearcher):
    """SPOS (Guo et al. 2020): uniform single-path supernet training, then regularized evolution over paths."""

    name = "spos"
    OPTIONS = {**EvolutionSearcher.OPTIONS, **COMMON}
    OPTION_HELP = {**EvolutionSearcher.OPTION_HELP, **COMMON_HELP}


class RswsSearcher(OneShotMixin, RandomSearcher):
    """Random search with weight sharing (Li & Talwalkar 2019): the same supernet, paths drawn at random."""

    name = "rsws"
    OPTIONS = dict(COMMON)
    OPTION_HELP = dict(COMMON_HELP)
