"""Reinforcement learning (Zoph & Le 2017): an LSTM controller trained with REINFORCE.

Reward: the trial's metric (negated when minimised). Each completed trial updates the controller
once: loss = -(reward - baseline) * log p(sample) - entropy_weight * entropy, with Adam; the baseline
is an exponential moving average of past rewards (initialised at the first reward). Trials run in
parallel: the sample is kept with the trial and scored under the current weights when it completes.
Failed trials (and invalid samples) are skipped. Defaults follow Zoph & Le: 2 layers of 35 hidden
units, weights uniform in [-0.08, 0.08], Adam lr 0.0006 (Real et al. re-tuned it to 0.0008).
"""
from __future__ import annotations

from dataclasses import dataclass

import copy
from typing import Any

from nas.search.strategies.base import Proposal, SpaceSearcher
from nas.search.strategies import strategy
from nas.search.strategies.options import option

# torch and the controller (nas.search.strategies.controller) are imported in the methods that use them:
# listing the strategies (`nas --help`, the argument checks) imports this module and must not import torch.


@strategy
class RLSearcher(SpaceSearcher):
    name = "rl"
    @dataclass(frozen=True)
    class Options:
        lr: float = option(0.0006, "Adam learning rate of the controller", minimum=0)
        entropy_weight: float = option(1e-4, "weight of the entropy bonus in the REINFORCE loss", minimum=0)
        baseline_decay: float = option(0.95, "decay of the moving-average reward baseline", minimum=0, maximum=1)
        hidden: int = option(35, "hidden units per LSTM layer of the controller", minimum=1)
        layers: int = option(2, "LSTM layers of the controller", minimum=1)
        init_range: float = option(0.08, "controller weights start uniform in [-init_range, init_range]", minimum=0)

    def setup(self) -> None:
        import torch  # deferred (see the note above the class)
        from nas.search.strategies.controller import Controller  # deferred (see the note above the class)

        o = self.options
        self.generator = torch.Generator().manual_seed(self.seed)
        self.controller = Controller(self.space, o["hidden"], o["layers"], o["init_range"], self.generator)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=o["lr"])
        self.baseline: float | None = None
        self.updates = 0

    def ask(self) -> Proposal:
        import torch  # deferred (see the note above the class)
        from nas.search.strategies.controller import single_threaded  # deferred (see the note above the class)

        with torch.no_grad(), single_threaded():
            sample, _, _ = self.controller.walk(self.space, generator=self.generator)
        return Proposal(sample)

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        self.tell_many([proposal], [outcome])

    def tell_many(self, proposals: list[Proposal], outcomes: list[dict[str, float] | None]) -> None:
        """One controller update from several samples (ENAS aggregates a step's samples): the mean of their
        REINFORCE losses against the baseline as it stood, then the baseline moves by each reward in turn.
        With one sample it is `tell`."""
        scored = [(p, r) for p, r in zip(proposals, map(self.score, outcomes)) if r is not None]
        if not scored:
            return
        if self.baseline is None:
            self.baseline = scored[0][1]
        from nas.search.strategies.controller import single_threaded  # deferred (see the note above the class)

        with single_threaded():
            loss = 0
            for proposal, reward in scored:
                _, log_prob, entropy = self.controller.walk(self.space, forced=proposal.sample)
                loss = loss - (reward - self.baseline) * log_prob - self.options["entropy_weight"] * entropy
            loss = loss / len(scored)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        decay = self.options["baseline_decay"]
        for _, reward in scored:
            self.baseline = decay * self.baseline + (1.0 - decay) * reward
        self.updates += 1

    def probabilities(self, prefix: dict[str, Any], name: str) -> list[float]:
        """The controller's current distribution over choice `name` (after the decisions in `prefix`)."""
        return self.controller.probabilities(self.space, prefix, name)

    def core_state(self) -> dict[str, Any]:
        return copy.deepcopy({
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "updates": self.updates,
        })

    def set_core_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        self.updates = state["updates"]
