"""Statistics of a comparison: per-model mean and spread over seeds, Welch's t-tests, Pareto fronts.

Accuracies over seeds are small samples (3 to 10 values), so every difference is tested with
Welch's unequal-variance t-test (`scipy.stats.ttest_ind(equal_var=False)`), two-sided, and the
p-values of all the comparisons made in one report are adjusted together with Holm's step-down
method (which controls the chance of calling any true null difference significant). A difference
is called significant when its adjusted p-value is below `alpha`.
"""
from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

ALPHA = 0.05


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (n - 1 in the denominator; 0 for a single value) and count."""

    mean: float
    std: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    values = [float(v) for v in values]
    if not values:
        return Spread(math.nan, math.nan, 0)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(statistics.fmean(values), std, len(values))


@dataclass(frozen=True)
class Comparison:
    """One two-sided Welch's t-test of `a` against `b` (difference = mean(a) - mean(b))."""

    a: str
    b: str
    difference: float
    t: float
    p: float  # raw two-sided p-value (nan where the test is undefined)
    p_adjusted: float  # Holm-adjusted over every comparison of the report
    significant: bool
    reason: str = ""  # why no test could be made ("fewer than 2 seeds", ...), else ""

    @property
    def better(self) -> str | None:
        """The model with the higher mean, when the difference is significant."""
        if not self.significant:
            return None
        return self.a if self.difference > 0 else self.b


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, str]:
    """(t, two-sided p, reason) of Welch's t-test; p is nan and `reason` says why when it is undefined.

    Two samples without any spread are a degenerate case scipy answers with nan: equal constants
    are certainly not different (p = 1); different constants cannot be tested from the data.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, "fewer than 2 seeds"
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        if statistics.fmean(a) == statistics.fmean(b):
            return 0.0, 1.0, ""
        return math.nan, math.nan, "no spread in either sample"
    with warnings.catch_warnings():  # one constant sample: scipy warns of "precision loss"; its variance is 0
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue), ""


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment; nan p-values are left nan and do not count as tests."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_pairs(samples: Mapping[str, Sequence[float]], pairs: Sequence[tuple[str, str]],
                  alpha: float = ALPHA) -> list[Comparison]:
    """Welch's t-test for every pair (a, b) of `pairs` over `samples` (model -> per-seed values), Holm-adjusted."""
    raw = [welch(samples[a], samples[b]) for a, b in pairs]
    adjusted = holm([p for _, p, _ in raw])
    comparisons = []
    for (a, b), (t, p, reason), p_adj in zip(pairs, raw, adjusted):
        difference = statistics.fmean(samples[a]) - statistics.fmean(samples[b]) if samples[a] and samples[b] else math.nan
        comparisons.append(Comparison(a, b, difference, t, p, p_adj, bool(p_adj < alpha), reason))
    return comparisons


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """The names whose (cost, accuracy) no other point dominates (cost no higher and accuracy no lower,
    one of them strictly), ordered by cost. Points with a nan coordinate are never on the front."""
    valid = {k: v for k, v in points.items() if not any(math.isnan(x) for x in v)}
    front = []
    for name, (cost, accuracy) in valid.items():
        dominated = any(c <= cost and a >= accuracy and (c < cost or a > accuracy)
                        for other, (c, a) in valid.items() if other != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: (valid[n][0], -valid[n][1]))
