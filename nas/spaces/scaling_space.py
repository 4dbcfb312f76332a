"""Compound scaling (Tan & Le 2019) as a search space: the choices are the grid point (alpha, beta, gamma)
and the compound coefficient phi; a sample realizes ``scale(base, depth=alpha^phi, width=beta^phi,
resolution=round(size * gamma^phi))``, so any strategy can search it and the `scaling` strategy can
run the paper's two steps over it (rank the grid at phi = 1, then scale the best point up).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.genome import Genome
from nas.scale_genome import scale
from nas.spaces.base import Choice, SearchSpace, SpaceError

FLOPS_TARGET = 2.0  # alpha * beta^2 * gamma^2 at phi = 1: FLOPs roughly double per unit of phi


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    return alpha * beta**2 * gamma**2


def compound_grid(betas: Sequence[float], gammas: Sequence[float], alpha_step: float = 0.05,
                  tolerance: float = 0.1) -> list[list[float]]:
    """Grid points [alpha, beta, gamma] with alpha * beta^2 * gamma^2 within `tolerance` of 2.

    For each (beta, gamma) pair, alpha is 2 / (beta^2 gamma^2) rounded to a multiple of `alpha_step`
    (pairs needing alpha < 1, or missing the tolerance after rounding, are left out).
    """
    grid = []
    for beta in betas:
        for gamma in gammas:
            alpha = round(round(FLOPS_TARGET / (beta**2 * gamma**2) / alpha_step) * alpha_step, 6)
            if alpha >= 1.0 and abs(flops_factor(alpha, beta, gamma) - FLOPS_TARGET) <= tolerance:
                grid.append([alpha, float(beta), float(gamma)])
    return grid


class ScalingSpace(SearchSpace):
    """Choices ``coefficients`` (a grid point [alpha, beta, gamma]) and ``phi``."""

    def __init__(self, base: Genome, grid: Sequence[Sequence[float]], phis: Sequence[int], name: str = "scaling"):
        if not grid:
            raise SpaceError("the scaling grid is empty (loosen the tolerance or give more betas/gammas)")
        for point in grid:
            if len(point) != 3 or any(not isinstance(v, (int, float)) or v <= 0 for v in point):
                raise SpaceError(f"a grid point is [alpha, beta, gamma] of positive numbers, got {point!r}")
        if not phis or any(not isinstance(p, int) or p < 0 for p in phis):
            raise SpaceError(f"phis must be non-negative integers, got {list(phis)!r}")
        self.base = base
        height, width = base.input.size
        super().__init__(name, [Choice("coefficients", tuple(list(map(float, p)) for p in grid)),
                                Choice("phi", tuple(phis))],
                         input_channels=base.input.channels, input_size=min(height, width),
                         num_classes=base.num_classes)

    def factors(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """The (width, depth, resolution) that `sample` applies to the base."""
        alpha, beta, gamma = sample["coefficients"]
        phi = sample["phi"]
        return {"width": beta**phi, "depth": alpha**phi, "resolution": max(1, round(self.input_size * gamma**phi))}

    def genome_of(self, sample: Mapping[str, Any]) -> Genome:
        return scale(self.base, **self.factors(sample))
