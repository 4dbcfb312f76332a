"""Search strategies: plain ask/tell objects over a seeded RNG (no Ray); `make_searcher` picks one by name.

    strategy = make_searcher("evolution", load_space("macro"), seed=0, max_trials=50)
    config = strategy.suggest("t1"); ...; strategy.on_trial_complete("t1", {"val_accuracy": 0.9})
    tune.TuneConfig(search_alg=TuneSearcher(strategy), num_samples=50)   # nas.engine.searcher

`STRATEGIES` is a `nas.registry.Registry`: a strategy is a `SpaceSearcher` subclass, registered from
Python with the class decorator `@strategy` (under the class's `name`; the built-in ones are registered so)
or `register_strategy(name, cls)`, or by another package's entry point in group
``nas.strategies`` (see `nas.plugins`).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nas.plugins import GROUPS
from nas.registry import Registry
from nas.suggest import did_you_mean

if TYPE_CHECKING:
    from nas.search.strategies.base import SpaceSearcher
    from nas.spaces import SearchSpace


def _strategy_entry(name: str, entry: Any) -> type[SpaceSearcher]:
    from nas.search.strategies.base import SpaceSearcher  # deferred: networkx, yaml (this package stays cheap)

    if not (isinstance(entry, type) and issubclass(entry, SpaceSearcher)):
        raise TypeError(f"a strategy must be a subclass of nas.search.strategies.SpaceSearcher, got {entry!r}")
    return entry


# strategy -> a SpaceSearcher subclass. The built-in ones register with `@strategy` in these modules, which are
# imported on the registry's first use (they import torch and optuna only when a strategy is made, so that
# `nas --help` and the argument checks list the names without them).
BUILTIN_MODULES = ("nas.search.strategies.random_search", "nas.search.strategies.evolution", "nas.search.strategies.rl",
                   "nas.search.strategies.compound_scaling", "nas.search.strategies.optuna_search",
                   "nas.search.strategies.pnas", "nas.oneshot.strategies")
STRATEGIES: Registry[type[SpaceSearcher]] = Registry("strategy", GROUPS["strategies"], _strategy_entry,
                                                     builtins=BUILTIN_MODULES)


def register_strategy(name: str, cls: type[SpaceSearcher]) -> type[SpaceSearcher]:
    """Make `cls` (a `SpaceSearcher` subclass) the strategy `name` (for `make_searcher`, `nas search --strategy`)."""
    return STRATEGIES.add(name, _strategy_entry(name, cls))


def strategy(cls: type[SpaceSearcher]) -> type[SpaceSearcher]:
    """Class decorator: register `cls` as the strategy `cls.name`.

        @strategy
        class MySearcher(SpaceSearcher):
            name = "mine"
    """
    return register_strategy(cls.name, cls)


def __getattr__(name: str) -> Any:
    """The base's names (Proposal, SpaceSearcher, StrategyError), imported on first use: the base imports
    the genome and space modules, and importing this package (for `STRATEGIES`) stays cheap."""
    if name in ("Proposal", "SpaceSearcher", "StrategyError"):
        return getattr(importlib.import_module("nas.search.strategies.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def strategy_class(strategy: str) -> type[SpaceSearcher]:
    from nas.search.strategies.base import StrategyError  # deferred: networkx, yaml (see _strategy_entry)

    if strategy not in STRATEGIES:
        raise StrategyError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})"
                            + did_you_mean(strategy, STRATEGIES))
    return STRATEGIES.get(strategy)


def make_searcher(strategy: str, space: SearchSpace | str, *, seed: int, metric: str = "val_accuracy",
                  mode: str = "max", max_trials: int, options: Mapping[str, Any] | None = None) -> SpaceSearcher:
    """The strategy `strategy` over `space` (a SearchSpace, or a name/path for `load_space`); in Ray Tune it
    runs through `nas.engine.searcher.TuneSearcher`."""
    if isinstance(space, str):
        from nas.spaces import load_space  # deferred: networkx, yaml (see _strategy_entry)

        space = load_space(space)
    return strategy_class(strategy)(space, seed=seed, metric=metric, mode=mode, max_trials=max_trials, options=options)


__all__ = ["STRATEGIES", "Proposal", "SpaceSearcher", "StrategyError", "make_searcher", "register_strategy",
           "strategy", "strategy_class"]
