"""The one-shot strategies as registered strategies: their options (`nas search --strategy spos
--help-options`) and, where the strategy has one, the ask/tell object that picks paths.

`spos` is regularized evolution (`nas.search.strategies.evolution`) and `rsws` random search
(`nas.search.strategies.random_search`) over the supernet's paths: `nas.oneshot.search` drives them
through ask/tell after the supernet is trained, each path scored with inherited, BN-recalibrated weights.
`darts` and `pcdarts` choose by gradient, not by proposals: their `ask` says so. `enas` is the `rl`
controller over the supernet's paths (its search: `nas.oneshot.enas`). All five carry ``oneshot = True``:
`nas search` runs them as one supernet-training trial (`nas.oneshot.run`).
"""
from __future__ import annotations

from dataclasses import dataclass

from nas.search.strategies import strategy
from nas.search.strategies.base import Proposal, SpaceSearcher, StrategyError
from nas.search.strategies.evolution import EvolutionSearcher
from nas.search.strategies.options import option
from nas.search.strategies.random_search import RandomSearcher
from nas.search.strategies.rl import RLSearcher

@dataclass(frozen=True)
class CommonOptions:
    """The options of every one-shot strategy: the supernet's size and how paths are scored."""

    channels: int | None = option(None, "cell width C of the supernet (and of the genome found); none: the space's "
                                        "first option", minimum=1)
    normal_cells: int | None = option(None, "normal cells per stage of the supernet; none: the space's first option",
                                      minimum=1)
    bn_batches: int = option(4, "training batches that recalibrate a path's batch-norm statistics before it is scored",
                             minimum=0)
    stop_skips: int = option(0, "stop training once the derived normal cell holds this many skip connections "
                                "(DARTS+ / P-DARTS use 2); 0: never", minimum=0)


@dataclass(frozen=True)
class DartsOptions(CommonOptions):
    arch_lr: float = option(3e-4, "Adam learning rate of the architecture weights (DARTS: 3e-4)", minimum=0)
    arch_weight_decay: float = option(1e-3, "weight decay of the architecture weights (DARTS: 1e-3)", minimum=0)
    partial_channels: int = option(1, "PC-DARTS: 1/K of an edge's channels go through its ops (1: off, as DARTS)",
                                   minimum=1)
    warmup_epochs: int = option(0, "first epochs that train the network weights only (PC-DARTS: 15 of 50)", minimum=0)
    order: int = option(1, "1: first-order architecture gradient; 2: DARTS's unrolled second-order one (about 3x "
                           "dearer)", minimum=1, maximum=2)


@dataclass(frozen=True)
class PcDartsOptions(DartsOptions):
    partial_channels: int = option(4, "PC-DARTS: 1/K of an edge's channels go through its ops (1: off, as DARTS)",
                                   minimum=1)


@dataclass(frozen=True)
class SposOptions(CommonOptions, EvolutionSearcher.Options):
    """Regularized evolution's options over the supernet's paths, and the supernet's."""


class OneShotMixin:
    oneshot = True  # `nas search` runs the strategy as one supernet-training trial (nas.oneshot.run)


@strategy
class DartsSearcher(OneShotMixin, SpaceSearcher):
    """DARTS (Liu et al. 2019): architecture weights learned by gradient on held-out batches (first or second order)."""

    name = "darts"
    Options = DartsOptions

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


@strategy
class PcDartsSearcher(DartsSearcher):
    """PC-DARTS (Xu et al. 2020): DARTS with partial channels (K = 4) and edge normalisation."""

    name = "pcdarts"
    Options = PcDartsOptions


@strategy
class SposSearcher(OneShotMixin, EvolutionSearcher):
    """SPOS (Guo et al. 2020): uniform single-path supernet training, then regularized evolution over paths."""

    name = "spos"
    Options = SposOptions


@strategy
class RswsSearcher(OneShotMixin, RandomSearcher):
    """Random search with weight sharing (Li & Talwalkar 2019): the same supernet, paths drawn at random."""

    name = "rsws"
    Options = CommonOptions


@dataclass(frozen=True)
class EnasOptions(CommonOptions):
    """The controller's options (those of the `rl` strategy, with ENAS's sizes), its training, the supernet's."""

    lr: float = option(0.00035, "Adam learning rate of the controller (ENAS: 0.00035; the shared weights use --lr)",
                       minimum=0)
    entropy_weight: float = option(1e-4, "weight of the entropy bonus in the REINFORCE loss", minimum=0)
    baseline_decay: float = option(0.99, "decay of the moving-average reward baseline", minimum=0, maximum=1)
    hidden: int = option(100, "hidden units per LSTM layer of the controller (ENAS: 100)", minimum=1)
    layers: int = option(1, "LSTM layers of the controller", minimum=1)
    init_range: float = option(0.1, "controller weights start uniform in [-init_range, init_range] (ENAS: 0.1)",
                               minimum=0)
    controller_steps: int = option(10, "controller updates per epoch, after the epoch's shared-weight training",
                                   minimum=0)
    paths_per_step: int = option(2, "paths sampled per controller update, each rewarded on one validation batch",
                                 minimum=1)


@strategy
class EnasSearcher(OneShotMixin, RLSearcher):
    """ENAS (Pham et al. 2018): the `rl` controller samples the supernet's paths, rewarded with shared weights
    (the search itself: `nas.oneshot.enas`)."""

    name = "enas"
    Options = EnasOptions
