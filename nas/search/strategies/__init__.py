"""Search strategies as Ray Tune searchers; `make_searcher` picks one by name.

    searcher = make_searcher("evolution", load_space("macro"), seed=0, max_trials=50)
    tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=50))
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.search.strategies.base import SpaceSearcher
    from nas.spaces import SearchSpace

# strategy -> (module under nas.search.strategies, class); imported on use (optuna is slow to import)
STRATEGIES: dict[str, tuple[str, str]] = {
    "random": ("random_search", "RandomSearcher"),
    "evolution": ("evolution", "EvolutionSearcher"),
    "rl": ("rl", "RLSearcher"),
    "scaling": ("scaling", "ScalingSearcher"),
    "optuna": ("optuna_search", "OptunaSearcher"),
}


def __getattr__(name: str) -> Any:
    """The base's names (Proposal, SpaceSearcher, StrategyError), imported on first use: they need Ray,
    and the command line reads `STRATEGIES` without it."""
    if name in ("Proposal", "SpaceSearcher", "StrategyError"):
        return getattr(importlib.import_module("nas.search.strategies.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def strategy_class(strategy: str) -> type[SpaceSearcher]:
    from nas.search.strategies.base import StrategyError

    if strategy not in STRATEGIES:
        raise StrategyError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    module, name = STRATEGIES[strategy]
    return getattr(importlib.import_module(f"nas.search.strategies.{module}"), name)


def make_searcher(strategy: str, space: SearchSpace | str, *, seed: int, metric: str = "val_accuracy",
                  mode: str = "max", max_trials: int, options: Mapping[str, Any] | None = None) -> SpaceSearcher:
    """A Ray Tune `Searcher` running `strategy` over `space` (a SearchSpace, or a name/path for `load_space`)."""
    if isinstance(space, str):
        from nas.spaces import load_space

        space = load_space(space)
    return strategy_class(strategy)(space, seed=seed, metric=metric, mode=mode, max_trials=max_trials, options=options)


__all__ = ["STRATEGIES", "Proposal", "SpaceSearcher", "StrategyError", "make_searcher", "strategy_class"]
