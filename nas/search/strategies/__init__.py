"""Search strategies as Ray Tune searchers; `make_searcher` picks one by name.

    searcher = make_searcher("evolution", load_space("macro"), seed=0, max_trials=50)
    tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=50))
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from nas.search.strategies.base import Proposal, SpaceSearcher, StrategyError
from nas.spaces import SearchSpace, load_space

# strategy -> (module under nas.search.strategies, class); imported on use (optuna is slow to import)
STRATEGIES: dict[str, tuple[str, str]] = {
    "random": ("random_search", "RandomSearcher"),
    "evolution": ("evolution", "EvolutionSearcher"),
    "rl": ("rl", "RLSearcher"),
    "scaling": ("scaling", "ScalingSearcher"),
    "optuna": ("optuna_search", "OptunaSearcher"),
    "pnas": ("pnas", "PNASSearcher"),
}


def strategy_class(strategy: str) -> type[SpaceSearcher]:
    if strategy not in STRATEGIES:
        raise StrategyError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    module, name = STRATEGIES[strategy]
    return getattr(importlib.import_module(f"nas.search.strategies.{module}"), name)


def make_searcher(strategy: str, space: SearchSpace | str, *, seed: int, metric: str = "val_accuracy",
                  mode: str = "max", max_trials: int, options: Mapping[str, Any] | None = None) -> SpaceSearcher:
    """A Ray Tune `Searcher` running `strategy` over `space` (a SearchSpace, or a name/path for `load_space`)."""
    if isinstance(space, str):
        space = load_space(space)
    return strategy_class(strategy)(space, seed=seed, metric=metric, mode=mode, max_trials=max_trials, options=options)


__all__ = ["STRATEGIES", "Proposal", "SpaceSearcher", "StrategyError", "make_searcher", "strategy_class"]
