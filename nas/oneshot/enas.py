"""ENAS (Pham et al. 2018): the RL controller of the `rl` strategy samples paths of the supernet and learns
from their validation accuracy with the shared weights.

    search = make_search("enas", space, data, settings, options, seed=0, paths=20)   # as every one-shot search

Each epoch alternates the two phases of ENAS:

1. the shared weights: per training batch, one path sampled from the controller (without gradient to it)
   takes an SGD step (the run's lr, momentum, weight decay, cosine schedule, gradient norm clipped to 5);
2. the controller: `controller_steps` steps, each sampling `paths_per_step` paths; a path's reward is its
   accuracy on one validation batch (drawn anew per path) with the shared weights, batch norm on the
   batch's own statistics (the running ones are shared by every path and fit none); one REINFORCE update
   per step on the mean loss of its paths, with the moving-average baseline and the entropy bonus of the
   `rl` strategy (`RLSearcher.tell_many`).

The epoch's path is the controller's most likely one (each choice its argmax given the ones before),
scored and recorded as every one-shot search's. At the end, as ENAS does, `paths` (``--trials``) paths are
sampled from the controller and the one with the best validation accuracy (BN recalibrated on
`bn_batches` training batches, as SPOS's scoring) is the answer. The controller, its optimizer, baseline
and random state are in the search's state, so a resumed search continues exactly.
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from nas.oneshot.search import OneShotSearch
from nas.oneshot.strategies import EnasOptions, EnasSearcher  # noqa: F401  (re-exported: the strategy is there)
from nas.oneshot.supernet import OneShotError
from nas.search.strategies.base import Proposal
from nas.train.loop import BatchHook, inputs

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class EnasSearch(OneShotSearch):
    """ENAS over a cell supernet (see the module's docstring)."""

    name = "enas"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.controller = EnasSearcher(self.space, seed=self.seed + 4, max_trials=max(1, self.paths),
                                       options=self.options)
        self.rewards: list[float] = []  # this epoch's controller rewards
        self.controller_cpu_s = self.controller_time = 0.0  # this epoch's controller phase

    # ----- phase 1: the shared weights, on paths the controller samples -----
    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.criterion(self.supernet(x, path=self.controller.ask().sample), y)
        self._weight_step(loss)
        return loss.detach()

    def train_pass(self, on_batch: BatchHook | None = None) -> float:
        loss = super().train_pass(on_batch)
        cpu, wall = time.process_time(), time.perf_counter()
        self.train_controller()
        self.controller_cpu_s, self.controller_time = time.process_time() - cpu, time.perf_counter() - wall
        return loss

    # ----- phase 2: the controller -----
    @torch.no_grad()
    def reward(self, path: dict[str, Any]) -> float:
        """The path's accuracy on one validation batch with the shared weights: batch norm on the batch's own
        statistics, the running ones left as they are (momentum 0: no validation data goes into them)."""
        split = self.val_split
        index = torch.randperm(len(split), generator=self.generator)[:self.settings.batch_size].to(split.x.device)
        norms = [m for m in self.supernet.modules() if isinstance(m, BATCH_NORMS)]
        momenta = [m.momentum for m in norms]
        self.supernet.train()
        try:
            for m in norms:
                m.momentum = 0.0
            logits = self.supernet(inputs(self.data, split.x[index], self.channels_last), path=path)
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
        return float((logits.argmax(1) == split.y[index]).float().mean())

    def train_controller(self) -> None:
        self.rewards = []
        for _ in range(self.options["controller_steps"]):
            proposals: list[Proposal] = [self.controller.ask() for _ in range(self.options["paths_per_step"])]
            outcomes = []
            for proposal in proposals:
                value = self.reward(proposal.sample)
                self.rewards.append(value)
                outcomes.append({"val_accuracy": value})
            self.controller.tell_many(proposals, outcomes)

    def epoch_metrics(self) -> dict[str, Any]:
        rewards = self.rewards
        return {"controller_reward": sum(rewards) / len(rewards) if rewards else None,
                "controller_baseline": self.controller.baseline, "controller_updates": self.controller.updates,
                "controller_entropy": self.entropy(), "controller_time": self.controller_time}

    def entropy(self) -> float:
        with torch.no_grad():
            _, _, entropy = self.controller.controller.walk(self.space, forced=self.most_likely())
        return float(entropy)

    def most_likely(self) -> dict[str, Any]:
        """The controller's most likely path: each active choice its most probable option given the ones before."""
        path: dict[str, Any] = {}
        for choice in self.space.choices:
            if choice.is_active(path):
                probabilities = self.controller.probabilities(path, choice.name)
                path[choice.name] = choice.options[max(range(len(probabilities)), key=probabilities.__getitem__)]
        return path

    def epoch_path(self) -> dict[str, Any]:
        return self.most_likely()

    def _finish(self) -> tuple[dict[str, Any], float, dict[str, Any]]:
        """ENAS's choice: `paths` paths sampled from the controller, the best by validation accuracy."""
        best: tuple[float, dict[str, Any]] | None = None
        seen: list[dict[str, Any]] = []
        for _ in range(max(1, self.paths)):
            path = self.controller.ask().sample
            if path in seen:
                continue
            seen.append(path)
            value = self.score(path)
            if best is None or value > best[0]:
                best = (value, path)
        if best is None:
            raise OneShotError("no path could be scored")
        return best[1], best[0], {"paths_scored": len(seen), "paths_sampled": max(1, self.paths)}

    # ----- state -----
    def extra_state(self) -> dict[str, Any]:
        return {"controller": self.controller.core_state(), "rewards": list(self.rewards)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.controller.set_core_state(state["controller"])
        self.rewards = list(state["rewards"])
