"""Regularized (aging) evolution (Real et al. 2019).

The first `population` proposals are random samples. After that, each proposal is a mutation
(`space.mutate`: exactly one choice changed) of the best of `sample_size` members drawn at random from
the population; every completed child joins the population and the oldest member dies. With several
trials in flight, parents come from whoever has completed (a random sample while nobody has yet).
Failed children do not join. The paper's identity mutation (p = 0.05) is left out: an unchanged child
is a duplicate, which the searcher's dedupe already answers from the recorded result.

Defaults: the paper used P = 100, S = 25 (NAS-Bench-101: P = 100, S = 10). For the small budgets
of this toolkit the defaults scale with `max_trials`: P = clamp(max_trials // 5, 8, 100) and
S = max(2, P // 4), which gives the paper's values from 500 trials up.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from nas.search.strategies.base import Proposal, SpaceSearcher, StrategyError
from nas.search.strategies import strategy
from nas.search.strategies.options import option


def default_population(max_trials: int) -> int:
    return min(100, max(8, max_trials // 5))


def default_sample_size(population: int) -> int:
    return min(population, max(2, population // 4))


@strategy
class EvolutionSearcher(SpaceSearcher):
    name = "evolution"
    @dataclass(frozen=True)
    class Options:
        population: int | None = option(None, "population size P; none: clamp(trials // 5, 8, 100)", minimum=1)
        sample_size: int | None = option(None, "tournament size S (members drawn to pick a parent); none: "
                                               "max(2, P // 4)", minimum=1)

    def setup(self) -> None:
        self.population_size = self.options["population"] or default_population(self.max_trials)
        self.sample_size = self.options["sample_size"] or default_sample_size(self.population_size)
        if self.population_size < 1 or not 1 <= self.sample_size <= self.population_size:
            raise StrategyError(f"evolution needs population >= 1 and 1 <= sample_size <= population, got "
                                f"population={self.population_size}, sample_size={self.sample_size}")
        self.population: list[tuple[dict[str, Any], float]] = []  # (sample, score), oldest first
        self.random_left = self.population_size  # random proposals of the initial population still to make
        self.children = 0

    def ask(self) -> Proposal:
        if self.random_left > 0 or not self.population:
            self.random_left = max(0, self.random_left - 1)
            return Proposal(self.space.sample(self.rng), meta={"origin": "random"})
        contenders = self.rng.sample(self.population, min(self.sample_size, len(self.population)))
        parent = max(contenders, key=lambda member: member[1])  # ties: the first drawn
        self.children += 1
        return Proposal(self.space.mutate(parent[0], self.rng), meta={"origin": "mutation"})

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        score = self.score(outcome)
        if score is None:
            return
        self.population.append((proposal.sample, score))
        if len(self.population) > self.population_size:
            self.population.pop(0)  # the oldest dies

    def core_state(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size,
                "population": self.population, "random_left": self.random_left, "children": self.children}

    def set_core_state(self, state: dict[str, Any]) -> None:
        self.population_size, self.sample_size = state["population_size"], state["sample_size"]
        self.population, self.random_left = state["population"], state["random_left"]
        self.children = state["children"]
