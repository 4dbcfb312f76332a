"""The end of a search: the record of every trial, the best genome and its weights, a plot, a summary.

Files (all in the run folder):
  search.json               the search's configuration (written by nas.search.run; what --resume reads)
  trials.json / trials.csv  every trial in the order the strategy proposed it: its number (`trial`, from 1:
                            the screen's, the leaderboard's, Optuna's user attribute "trial", the
                            TensorBoard run's trial_<number>_<id>; trials.json also keeps the 0-based
                            `index`), sample, fingerprint,
                            metrics, status, failure reason, node; rewritten whenever a trial ends
  best_genome.yaml          the best trial's genome (what `nas build` reads), for the data set's input
  best_weights.pt           its trained weights (a state_dict of `nas.build(genome)`)
  best_input.json           what they must be fed: input shape, pixel scale, mean/std, class names
                            (nas.train.contract; `nas export` reads it)
  best_so_far.png           best validation accuracy so far against trial index and against search cost
  summary.json              counts, best trial with its test accuracy, timings (seconds: data, Ray's start
                            and stop, search, best_test, plots, finish; a resumed run's summed over its
                            sessions that reached the end), duplicates avoided, the
                            search's cost (CPU and GPU seconds in all, and up to the best trial), and
                            "interrupted" (the signal's name when SIGINT/SIGTERM stopped the search, else null)
  pareto.csv / pareto.png   several objectives (optuna's NSGA-II): the trials no other trial beats on
                            every objective, and a plot of all trials with that set; "best" stays the
                            best validation accuracy (summary.json's "best_by")

`finish` writes them at the end of a search, each by the module whose job it is: the records
(`nas.engine.records`), the best network and its test (`nas.search.best`), the cost (`nas.search.cost`), the
plot (`nas.search.plots`) and the Pareto set (`nas.search.pareto`).
"""
from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.engine.ranking import ranked
from nas.engine.records import (BEST_GENOME, BEST_INPUT, BEST_WEIGHTS, CONFIG_JSON, SUMMARY_JSON,  # noqa: F401
                                TRIALS_JSON, counts, failure_list, read_records, replace_file, write_trials)
from nas.search.best import EarlyBest, write_best
from nas.search.cost import cost_summary
from nas.search.pareto import BEST_BY, objectives_of, write_pareto
from nas.search.plots import plot_best_so_far
from nas.train.loop import augmentation
from nas.train.settings import TrainSettings

BEST_PLOT = "best_so_far.png"


def signal_name(signum: int | None) -> str | None:
    return signal.Signals(signum).name if signum is not None else None


def trial_footprint(folder: str | Path) -> int | None:
    """Bytes the largest trial takes in the run folder (its kept checkpoint, results and logs); None
    before any trial wrote there."""
    sizes = [sum(f.stat().st_size for f in trial.rglob("*") if f.is_file())
             for trial in (Path(folder) / "tune").glob("trial_*") if trial.is_dir()]
    return max(sizes) if sizes and max(sizes) > 0 else None


def augment_policy(config: Mapping[str, Any], data) -> str:
    """The augmentation the run's trials applied (``auto`` resolved for the data set), e.g. crop=3,flip."""
    return augmentation(TrainSettings.from_dict(config.get("train")), data).describe()


def earlier_timings(folder: Path) -> dict[str, float]:
    """The timings summary.json holds from the run's earlier sessions ({} when there is none or it is unreadable:
    a session killed before its end writes none)."""
    try:
        timings = json.loads((folder / SUMMARY_JSON).read_text()).get("timings")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(timings, dict):
        return {}
    return {k: float(v) for k, v in timings.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def finish(folder: Path, config: Mapping[str, Any], data, searcher, timings: Mapping[str, float],
           interrupted: int | None = None, say: Callable[[str], None] | None = None,
           early: EarlyBest | None = None, resumed: bool = False) -> dict[str, Any]:
    """Write the final trial record, the best genome, weights and plot, and summary.json; return the summary.
    `interrupted`: the signal that stopped the search (its unfinished trials are already recorded INTERRUPTED).
    `say(text)` is told each step that takes a while (testing the best network, writing the plots).
    `early`: the best trial, ranked as the trials ended, and its files and test, started while Ray stopped.
    `resumed`: the run continues earlier sessions, whose timings are added to this one's (a resumed finished
    search would otherwise replace its search time with the seconds the resume took)."""
    say = say or (lambda text: None)
    started = clock = time.perf_counter()
    before = earlier_timings(folder) if resumed else {}
    timings = dict(timings)
    extra = {}
    if searcher is not None:
        extra = {"duplicates_avoided": getattr(searcher, "duplicates_avoided", None),
                 "invalid_proposals": getattr(searcher, "invalid_proposals", None)}
    trials = write_trials(folder, read_records(folder), extra)
    records = [trial.to_dict() for trial in trials]  # as trials.json holds them (ranking, cost, plots read these)
    if early is not None:  # ranked already (the records were final then)
        order = [early.best] if early.best is not None else []
    else:
        order = ranked(records)
    best = dict(order[0]) if order else None
    summary: dict[str, Any] = {"config": dict(config), "data": data.describe(), "augment": augment_policy(config, data),
                               "counts": counts(trials), **extra, "interrupted": signal_name(interrupted),
                               "timings": {k: round(v, 3) for k, v in timings.items()},
                               "cost": cost_summary(records, order)}
    summary["failures"] = failure_list(trials)
    if best is not None:
        say(f"testing the best network (trial {best['index'] + 1}) on {len(data.test):,} test images")
        clock = time.perf_counter()
        best.update(early.take() if early is not None else write_best(folder, best, data))
        summary["best"] = {k: v for k, v in best.items() if k != "genome"}
        timings["best_test_s"] = time.perf_counter() - clock
    say("writing plots")
    clock = time.perf_counter()
    plot_best_so_far(records, folder / BEST_PLOT, title=f"{config.get('strategy')} on {config.get('dataset')}")
    summary["best_by"] = BEST_BY
    several = objectives_of(config)
    if several:
        summary["pareto"] = write_pareto(folder, records, *several,
                                         title=f"{config.get('strategy')} on {config.get('dataset')}")
    timings["plots_s"] = time.perf_counter() - clock
    timings["finish_s"] = time.perf_counter() - started
    total = {k: before.get(k, 0.0) + timings.get(k, 0.0) for k in {**before, **timings}}
    summary["timings"] = {k: round(v, 3) for k, v in total.items()}
    replace_file(folder / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n")
    return summary
