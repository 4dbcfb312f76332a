"""benchmarks/strategies.py's any-time curves: a best-so-far mean over seeds never drops, and the committed
figures' data obey it (the mean is drawn only where every seed has a value)."""
import json
from pathlib import Path

import benchmark_scripts
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return benchmark_scripts.load("strategies")


def rising(points) -> bool:
    means = [p[1] for p in points]
    return all(b >= a for a, b in zip(means, means[1:]))


def test_seeds_that_start_late_do_not_pull_the_mean_down(bench):
    early = [[10.0, 0.6], [20.0, 0.7]]  # a seed with a good first result
    late = [[30.0, 0.5], [40.0, 0.55]]  # one whose first result comes later and is worse
    grid = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    points = bench.seeds_by_cost([early, late], grid)
    assert [p[0] for p in points] == [30.0, 40.0, 50.0]  # only where both have a value
    assert rising(points) and points[0][1] == pytest.approx((0.7 + 0.5) / 2)
    assert bench.seeds_by_trial([[None, 0.6, 0.7], [None, None, 0.5]], 3) == [(3, 0.6, 0.5, 0.7)]


@pytest.mark.parametrize("results", sorted(p.parent.name for p in ROOT.glob("results/strategies-*/summary.json")))
def test_the_committed_anytime_curves_never_drop(bench, results):
    runs = json.loads((ROOT / "results" / results / "summary.json").read_text())["runs"]
    grid = bench.cost_grid([r for r in runs if "cost_curve" in r])
    trials = max(len(r["curve"]) for r in runs)
    for strategy in sorted({r["strategy"] for r in runs}):
        mine = [r for r in runs if r["strategy"] == strategy]
        assert rising(bench.seeds_by_trial([r["curve"] for r in mine], trials)), strategy
        if all("cost_curve" in r for r in mine):  # (runs made before trials recorded their cost have none)
            assert rising(bench.seeds_by_cost([r["cost_curve"] for r in mine], grid)), strategy
