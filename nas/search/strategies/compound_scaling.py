"""EfficientNet compound scaling (Tan & Le 2019) as a two-step search over a `ScalingSpace`.

Step 1: every grid point (alpha, beta, gamma) with alpha * beta^2 * gamma^2 ~ 2 is trained at phi = 1
(the first of `phis`) and ranked by the metric. Step 2: once all of step 1 is in, the best point is
scaled to the remaining phis (2..K). Then the searcher is finished.

Options: `base` (a baseline name or a genome file; default ``efficientnet_b0_cifar``), `phis` (K, for
phi = 1..K, or an explicit list; default 3), `grid` (explicit [alpha, beta, gamma] points) or `betas`,
`gammas`, `alpha_step` and `tolerance` to build it (see `nas.spaces.scaling_space.compound_grid`). The base
genome is fitted to the space's input (channels, size, classes) as the other spaces are
(`nas.spaces.layout.fit_genome`): stage reductions are clipped for tiny inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path
from typing import Any

from nas import baselines
from nas.errors import NasError
from nas.genome import Genome
from nas.search.strategies.base import FINISHED, Proposal, SpaceSearcher, StrategyError
from nas.search.strategies import strategy
from nas.search.strategies.options import option
from nas.spaces.scaling_space import ScalingSpace, compound_grid


def load_base(base: str | Genome) -> Genome:
    """A baseline by name, or a genome file by path."""
    if isinstance(base, Genome):
        return base
    if base in baselines.names():
        return baselines.get(base)
    if Path(base).is_file():
        return Genome.load(base)
    raise StrategyError(f"scaling base {base!r} is neither a baseline ({', '.join(baselines.names())}) nor a genome file")


@strategy
class ScalingSearcher(SpaceSearcher):
    name = "scaling"
    @dataclass(frozen=True)
    class Options:
        base: str = option("efficientnet_b0_cifar", "the network to scale: a baseline name or a genome file")
        phis: int | list[int] = option(3, "K (phi = 1..K) or an explicit list of phis; step 1 trains the grid at "
                                          "the first", minimum=0)
        grid: list[list[float]] | None = option(None, "explicit [alpha, beta, gamma] points; none: built from betas, "
                                                      "gammas, alpha_step", minimum=0)
        betas: list[float] = option([1.0, 1.1, 1.2], "width multipliers tried when building the grid", minimum=0)
        gammas: list[float] = option([1.0, 1.1, 1.2], "resolution multipliers tried when building the grid", minimum=0)
        alpha_step: float = option(0.05, "alpha (depth) is 2 / (beta^2 gamma^2) rounded to this step", minimum=0)
        tolerance: float = option(0.1, "grid points keep alpha * beta^2 * gamma^2 within this of 2", minimum=0)

    def setup(self) -> None:
        if not isinstance(self.space, ScalingSpace):
            self.space = self.scaling_space()
        grid = self.space.choices[0].options
        self.phis = list(self.space.choices[1].options)
        self.queue: list[dict[str, Any]] = [{"coefficients": point, "phi": self.phis[0]} for point in grid]
        self.step = 1
        self.step1_waiting = 0  # step-1 proposals asked and not yet told
        self.ranking: list[tuple[list[float], float]] = []  # (grid point, score) of step 1
        self.best: list[float] | None = None

    def scaling_space(self) -> ScalingSpace:
        o = self.options
        try:
            from nas.spaces.layout import fit_genome  # deferred: it imports torch, and listing strategies must not

            base = fit_genome(load_base(o["base"]), self.space.input_channels, self.space.input_size,
                              self.space.num_classes)
        except NasError as error:
            raise StrategyError(f"scaling base {o['base']!r}: {error}") from None
        phis = list(range(1, o["phis"] + 1)) if isinstance(o["phis"], int) else list(o["phis"])
        grid = o["grid"] or compound_grid(o["betas"], o["gammas"], o["alpha_step"], o["tolerance"])
        return ScalingSpace(base, grid, phis)

    def subject(self, space: str) -> str:
        """Scaling starts from one genome, not from the space: "of <genome name>"."""
        return f"of {self.space.base.name}"

    def ask(self) -> Proposal | None | str:
        if self.queue:
            sample = self.queue.pop(0)
            if self.step == 1:
                self.step1_waiting += 1
            return Proposal(sample, token=self.step)
        if self.step == 1:
            if self.step1_waiting:
                return None  # step 2 needs the whole ranking
            self.step = 2
            if not self.ranking:
                return FINISHED  # every grid point failed
            self.best = max(self.ranking, key=lambda entry: entry[1])[0]
            self.queue = [{"coefficients": self.best, "phi": phi} for phi in self.phis[1:]]
            return self.ask()
        return FINISHED

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        if proposal.token != 1:
            return
        self.step1_waiting -= 1
        score = self.score(outcome)
        if score is not None:
            self.ranking.append((proposal.sample["coefficients"], score))

    def core_state(self) -> dict[str, Any]:
        return {"queue": self.queue, "step": self.step, "step1_waiting": self.step1_waiting,
                "ranking": self.ranking, "best": self.best}

    def set_core_state(self, state: dict[str, Any]) -> None:
        self.queue, self.step, self.step1_waiting = state["queue"], state["step"], state["step1_waiting"]
        self.ranking, self.best = state["ranking"], state["best"]
