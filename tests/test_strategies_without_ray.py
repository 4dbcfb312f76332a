"""Every strategy is a plain ask/tell object: a tiny pure-Python loop runs each one, saves and restores it,
with no Ray imported (Ray enters only through nas.engine.searcher)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LOOP = r"""
import sys
from nas.baselines import get
from nas.search.strategies import STRATEGIES, make_searcher
from nas.search.strategies.base import FINISHED
from nas.spaces import load_space

# pnas: a small predictor (its fit is not what this loop checks; tests/test_pnas.py uses the same)
OPTIONS = {"evolution": {"population": 2, "sample_size": 2},
           "pnas": {"warmup": 2, "epochs": 30, "hidden": 16, "candidates": 100},
           "scaling": {"base": "resnet20", "grid": [[1.2, 1.1, 1.0]], "phis": 2},
           "optuna": {"startup_trials": 2}}
SPACES = {"pnas": "cells"}
GRADIENT = {"darts", "pcdarts"}  # one-shot strategies that learn by gradient: no proposals (nas.oneshot)
for name in sorted(set(STRATEGIES) - GRADIENT):
    space = load_space(SPACES.get(name, "compact"), input_channels=1, input_size=28, num_classes=10)
    strategy = make_searcher(name, space, seed=0, max_trials=4, options=OPTIONS.get(name))
    told = 0
    for i in range(4):
        config = strategy.suggest(f"t{i}")
        if config == FINISHED:
            break
        if config is None:
            continue
        assert set(config) == {"genome", "sample", "fingerprint"}, config
        strategy.on_trial_complete(f"t{i}", {"val_accuracy": 0.5 + 0.01 * i, "params": 1000 + i, "flops": 10})
        told += 1
        if i == 1:  # a save and a restore mid-way, as a driver that stopped would do
            again = make_searcher(name, space, seed=0, max_trials=4, options=OPTIONS.get(name))
            again.set_state(strategy.get_state())
            strategy = again
    assert told >= 2, (name, told)
    print(name, told)
heavy = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
assert not heavy, heavy
print("no ray")
"""


def test_every_strategy_runs_in_a_plain_loop_without_ray():
    done = subprocess.run([sys.executable, "-c", LOOP], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("no ray")


def test_the_strategies_package_imports_nothing_from_ray():
    for path in (ROOT / "nas" / "search" / "strategies").glob("*.py"):
        imports = [line.split()[1] for line in path.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert not [name for name in imports if name.split(".")[0] == "ray"], path.name


def test_options_are_one_typed_dataclass_checked_for_type_range_and_name():
    from nas.search.strategies import strategy_class
    from nas.search.strategies.base import StrategyError

    rl = strategy_class("rl")
    assert rl.OPTIONS["lr"] == 0.0006 and rl.OPTION_HELP["baseline_decay"][0] == "float in [0, 1]"
    assert rl.resolve_options({"hidden": 8})["hidden"] == 8
    for options, words in (({"baseline_decay": 2}, "expected a number in [0, 1], got 2"),
                           ({"hidden": 1.5}, "expected a whole number >= 1, got 1.5"),
                           ({"hiden": 8}, "did you mean 'hidden'"),
                           ({"layers": True}, "expected a whole number >= 1, got True")):
        with pytest.raises(StrategyError, match=re.escape(words)):
            rl.resolve_options(options)
    scaling = strategy_class("scaling")
    assert scaling.resolve_options({"phis": [1, 2]})["phis"] == [1, 2]
    with pytest.raises(StrategyError, match=re.escape("expected a list of numbers >= 0, got [1.0, -1.0]")):
        scaling.resolve_options({"betas": [1.0, -1.0]})


def test_a_strategy_registers_with_its_decorator_and_a_name_taken_twice_is_an_error():
    from nas.errors import RegistryError
    from nas.search.strategies import STRATEGIES, SpaceSearcher, strategy, strategy_class
    from nas.search.strategies.random_search import RandomSearcher

    assert strategy_class("random") is RandomSearcher  # the built-ins register with the same decorator

    @strategy
    class Greedy(SpaceSearcher):
        name = "greedy-test-only"

    try:
        assert strategy_class("greedy-test-only") is Greedy and "greedy-test-only" in STRATEGIES.names()
        with pytest.raises(RegistryError, match="already registered"):
            strategy(type("Again", (SpaceSearcher,), {"name": "greedy-test-only"}))
    finally:
        STRATEGIES._entries.pop("greedy-test-only")  # the test's own entry; registries have no public remove
