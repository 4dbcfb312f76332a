"""The one adapter from a strategy (`nas.search.strategies.SpaceSearcher`, plain Python) to Ray Tune's `Searcher`.

    tune.TuneConfig(search_alg=TuneSearcher(make_searcher("evolution", space, seed=0, max_trials=16)), ...)

Tune asks for trial configs (`suggest`), reports how trials ended (`on_trial_complete`) and saves and
restores the searcher with the experiment (`save` / `restore`, through `save_to_dir` / `restore_from_dir`);
each is handed to the strategy, which owns the dedupe and its state. The metric and mode Tune passes fill
in only what the strategy was not given.
"""
from __future__ import annotations

from typing import Any

from ray.tune.search import Searcher

from nas.search.strategies.base import FINISHED, SpaceSearcher


class TuneSearcher(Searcher):
    def __init__(self, strategy: SpaceSearcher):
        super().__init__(metric=strategy.metric, mode=strategy.mode)
        self.strategy = strategy

    @property
    def name(self) -> str:
        return self.strategy.name

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        self.strategy.metric = self.strategy.metric or metric
        self.strategy.mode = self.strategy.mode or mode
        self._metric, self._mode = self.strategy.metric, self.strategy.mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None | str:
        config = self.strategy.suggest(trial_id)
        return Searcher.FINISHED if config == FINISHED else config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.strategy.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict[str, Any]:
        return self.strategy.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.strategy.set_state(state)

    def save(self, checkpoint_path: str) -> None:
        self.strategy.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.strategy.restore(checkpoint_path)

    def __repr__(self) -> str:
        return f"TuneSearcher({self.strategy!r})"


def tune_searcher(searcher: SpaceSearcher | Searcher) -> Searcher:
    """A strategy in its adapter; a Ray Tune `Searcher` (one given from Python) as it is."""
    return TuneSearcher(searcher) if isinstance(searcher, SpaceSearcher) else searcher
