"""Ground-truth tables: build one (a seeded sample of a space, each trained from scratch with one recipe) and
rank the zero-cost proxies against it.

    build_table(SearchConfig(strategy="random", space="cells", trials=200, seed=0, train={"epochs": 12}), "bench/c")
    rank_table("bench/c", ["synflow", "naswot", "params"])

Building is a search and nothing else: the random strategy proposes a seeded sample of distinct
architectures (its proposals do not depend on results, so the sample is fixed by the seed), every trial
trains with the recipe and reports its test accuracy after the last epoch (`test_at_end`), and the run
folder (``DIR/run``) is an ordinary search's, resumable by running the same command again. When the run
has finished, ``DIR/table.json`` is written from its records (`nas.evaluate.table.table_from_run`).

A folder holding a ``table.json`` but no run of its build (a table committed without its run folder, or the
run folder damaged) continues from the table alone (`continue_build`): the same command trains the
architectures of the seeded sample the table lacks (`nas.evaluate.bench_listed`) and ends with the table an
uninterrupted build writes. The table records what it cost (``cost``: CPU and trial seconds, per session).
"""
from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.engine.records import SUMMARY_JSON
from nas.errors import NasError
from nas.evaluate.bench_listed import (LISTED, defining_differences, fill_table, merged, outside, run_state,
                                      seeded_sample, session_start, with_cost)
from nas.evaluate.table import TABLE_FILE, Table, table_from_run
from nas.genome import Genome
from nas.spaces import load_space
from nas.train.settings import TrainSettings

RUN_DIR = "run"
RANK_FILE = "rank.json"
OURS = {RUN_DIR, TABLE_FILE, RANK_FILE, ".gitignore"}
OURS_PATTERNS = ("seed*.json", "run-seed*", "run.damaged*", "run-seed*.damaged*")  # nas bench reseed's; set aside
# Spearman's rho of each proxy with final test accuracy over all 15,625 NAS-Bench-201 cells on CIFAR-10
# (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS", table 2)
NB201_CIFAR10_SPEARMAN = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59, "grasp": 0.51,
                          "fisher": 0.36}
# the settings that define a table: a run to resume must have made it with the same ones
DEFINING = ("strategy", "space", "dataset", "val_fraction", "train_limit", "trials", "seed", "train", "evaluate")


class BenchError(NasError):
    """A table cannot be built or ranked (a folder in the way, a run made with other settings)."""


def table_config(config) -> Any:
    """`config` as a table's search: the random strategy, proxies off, test accuracy after the last epoch."""
    config = copy.copy(config)
    config.strategy, config.evaluate = "random", "train"
    config.train = {**config.train, "test_at_end": True}
    config.__post_init__()
    return config


def check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise BenchError(f"--out {folder}: a file is in the way")
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir()
                        if p.name not in OURS and not any(p.match(pattern) for pattern in OURS_PATTERNS))
        if others:
            raise BenchError(f"--out {folder}: holds files that are not a table's ({', '.join(others[:3])}); "
                             "choose a new or empty folder")


def finished(run: Path) -> bool:
    """Did the run in `run` end with every trial finished (not interrupted)?"""
    try:
        summary = json.loads((run / SUMMARY_JSON).read_text())
    except (OSError, ValueError):
        return False
    return summary.get("interrupted") is None and summary.get("counts", {}).get("unfinished") == 0


def build_table(config, folder: str | Path, *, address: str | None = None, verbose: bool = True,
                library_logs: bool = False, say: Callable[[str], None] = print) -> tuple[Table | None, Any]:
    """Train the table's sample as a search in ``folder/run`` (resumed when it is there) and write
    ``folder/table.json`` once every trial has finished; returns (the table or None when interrupted, the
    search's outcome or None when the run had already finished). A folder whose table.json is not its run's
    (no run of the build there, or a damaged one) continues from the table (`continue_build`)."""
    folder = Path(folder)
    config = table_config(config)
    check_folder(folder)
    if (folder / TABLE_FILE).is_file():  # another build's table is refused at once, before Ray is imported
        try:
            written = Table.load(folder / TABLE_FILE)
        except NasError:
            written = None  # damaged: a run rewrites it; without one, continue_build says so
        if written is not None:
            check_same_table(written, config, folder / TABLE_FILE)
    from nas.search.run import read_config, run_search, started  # deferred: torch, Ray (after the checks above)

    run = folder / RUN_DIR
    state = run_state(run)
    if state != "search" and (state != "none" or (folder / TABLE_FILE).is_file()):
        return continue_build(config, folder, address=address, verbose=verbose, library_logs=library_logs, say=say)
    session = session_start()
    resume = run.is_dir() and (run / "search.json").is_file() and started(run)
    if resume:
        saved = read_config(run)
        differ = defining_differences(saved, config, DEFINING)
        if differ:
            raise BenchError(f"{run} holds a table being built with other settings ({', '.join(differ)}): run the "
                             "command that started it, or choose another --out")
    outcome = None
    if not (resume and finished(run)):
        folder.mkdir(parents=True, exist_ok=True)
        outcome = run_search(None if resume else config, run, address=address, resume=resume, verbose=verbose,
                             library_logs=library_logs)
        if outcome.interrupted is not None:  # the architectures trained so far; a resume trains the rest
            write_table(config, folder, complete=False, session=session, interrupted=True)
            return None, outcome
    return write_table(config, folder, complete=True, session=session if outcome else None), outcome


def continue_build(config, folder: Path, *, address: str | None, verbose: bool, library_logs: bool,
                   say: Callable[[str], None]) -> tuple[Table | None, Any]:
    """The build continued from ``folder/table.json``: the architectures of the seeded sample it lacks trained
    (in a listed search in ``folder/run``, resumable) and appended in the sample's order; `build_table`'s returns."""
    from nas.train.datasets import load_dataset  # deferred: torch (keeps `nas bench --help` torch-free)

    path = folder / TABLE_FILE
    before = Table.load(path) if path.is_file() else None
    if before is not None:
        check_same_table(before, config, path)
        if before.meta.get("complete") and before.meta.get("requested") == config.trials:
            say(f"table has {len(before)} of {config.trials}: complete, nothing to train")
            return before, None
    data = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                        train_limit=config.train_limit, val_limit=config.val_limit)
    wanted = seeded_sample(config, data)
    strays = outside(wanted, before) if before is not None else []
    if strays:
        raise BenchError(f"{path}: {len(strays)} of its architectures are not among the first {config.trials} of "
                         f"the seeded sample (it was built with more --archs, or another sample); choose another --out")
    space = load_space(config.space, input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)
    table, outcome, complete = fill_table(config, space, folder / RUN_DIR, path, wanted, table_meta(config, False),
                                          before=before, address=address, verbose=verbose, library_logs=library_logs,
                                          say=say)
    return (table if complete else None), outcome


def check_same_table(table: Table, config, where: Path) -> None:
    """One line when `table` was built with other settings than `config` (its number of architectures aside)."""
    want = table_meta(config, False)
    differ = [key for key in ("space", "dataset", "data", "epochs", "seed") if table.meta.get(key) != want[key]]
    try:
        recipe = TrainSettings.from_dict(table.meta.get("recipe") or {}).to_dict()
    except (NasError, TypeError, ValueError):
        recipe = None
    if recipe != want["recipe"]:
        differ.append("recipe")
    if differ:
        raise BenchError(f"{where} holds a table built with other settings ({', '.join(differ)}): run the command "
                         "that made it, or choose another --out")


def table_meta(config, complete: bool) -> dict[str, Any]:
    return {"space": config.space, "dataset": config.dataset,
            "data": {"val_fraction": config.val_fraction, "train_limit": config.train_limit, "seed": config.seed},
            "epochs": config.settings.epochs, "seed": config.seed, "requested": config.trials,
            "complete": complete, "recipe": config.settings.to_dict(), "run": RUN_DIR}


def write_table(config, folder: Path, *, complete: bool, session: dict[str, Any] | None = None,
                interrupted: bool = False) -> Table:
    """``folder/table.json`` from the run's finished trials (`complete`: False while the build is unfinished),
    its cost with the sessions the table there recorded and this `session` (`bench_listed.with_cost`)."""
    table = table_from_run_folder(folder / RUN_DIR, table_meta(config, complete))
    try:
        before = Table.load(folder / TABLE_FILE) if (folder / TABLE_FILE).is_file() else None
    except NasError:
        before = None  # damaged: rewritten from the run
    with_cost(table, before, session, concurrent=config.concurrent, interrupted=interrupted)
    table.save(folder / TABLE_FILE)
    return table


def table_so_far(config, folder: str | Path) -> Table:
    """Write ``folder/table.json`` from the architectures an unfinished (or running) build has trained so far,
    training nothing: a table marked ``"complete": false`` that a search or `nas bench rank` reads like any
    other. The build's command, run again, resumes it and writes the whole table at its end."""
    from nas.search.run import read_config  # deferred: torch and Ray (`nas bench --help` imports us)

    folder = Path(folder)
    config = table_config(config)
    check_folder(folder)
    run = folder / RUN_DIR
    if not (run / "search.json").is_file():
        raise BenchError(f"--out {folder}: no build to read (no {RUN_DIR}/search.json); start it without --so-far")

    saved = read_config(run)
    if saved.searcher == LISTED:  # a build continued from its table.json
        return listed_so_far(config, folder, saved)
    differ = defining_differences(saved, config, DEFINING)
    if differ:
        raise BenchError(f"{run} holds a table being built with other settings ({', '.join(differ)})")
    return write_table(config, folder, complete=finished(run))


def listed_so_far(config, folder: Path, saved) -> Table:
    """`table_so_far` of a build continued from its table.json: that table and what its run has trained so far."""
    from nas.train.datasets import load_dataset  # deferred: torch (keeps `nas bench --help` torch-free)

    differ = defining_differences(saved, config)
    if differ:
        raise BenchError(f"{folder / RUN_DIR} holds a table being built with other settings ({', '.join(differ)})")
    path = folder / TABLE_FILE
    before = Table.load(path) if path.is_file() else None
    data = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                        train_limit=config.train_limit, val_limit=config.val_limit)
    meta = table_meta(config, finished(folder / RUN_DIR))
    entries = merged(seeded_sample(config, data), before, table_from_run_folder(folder / RUN_DIR, meta))
    table = with_cost(Table({**meta, "archs": len(entries)}, entries), before, None)
    table.save(path)
    return table


def table_from_run_folder(run: Path, meta: dict[str, Any]) -> Table:
    return table_from_run(run, meta)


# ----- ranking proxies against a table -----
@dataclass
class Ranking:
    proxy: str
    kendall_tau: float
    spearman_rho: float
    scored: int  # architectures with a finite score
    seconds: float  # scoring time, all architectures
    anchor: float | None  # NB201_CIFAR10_SPEARMAN

    def to_dict(self) -> dict[str, Any]:
        return {"proxy": self.proxy, "kendall_tau": _plain(self.kendall_tau), "spearman_rho": _plain(self.spearman_rho),
                "scored": self.scored, "seconds": round(self.seconds, 3), "nb201_cifar10_spearman": self.anchor}


def _plain(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def correlations(scores: Sequence[float], truth: Sequence[float]) -> tuple[float, float, int]:
    """(Kendall's tau, Spearman's rho, pairs used) over the finite scores (scipy.stats); NaN with fewer than 3."""
    from scipy import stats  # deferred: scipy (1.5 s; `nas bench --help` imports us)

    pairs = [(s, t) for s, t in zip(scores, truth) if math.isfinite(s) and t is not None and math.isfinite(t)]
    if len(pairs) < 3 or len({s for s, _ in pairs}) < 2 or len({t for _, t in pairs}) < 2:
        return math.nan, math.nan, len(pairs)
    x, y = zip(*pairs)
    return float(stats.kendalltau(x, y).statistic), float(stats.spearmanr(x, y).statistic), len(pairs)


def rank_table(table: Table, proxies: Sequence[str], data, *, against: str = "val_accuracy", seed: int = 0,
               batch_size: int = 64, progress: Callable[[int, int, float], None] | None = None
               ) -> tuple[list[Ranking], dict[str, list[float]]]:
    """Score every architecture of `table` with every proxy (networks initialised with `seed`, one minibatch of
    `batch_size` training images of `data`) and correlate with the table's `against` (val_accuracy: final
    validation accuracy; test_accuracy). Returns the rankings and the raw scores."""
    from nas.evaluate.proxies import Candidate, score  # deferred: torch (`nas bench --help` imports us)

    truth = [e.final_val_accuracy if against == "val_accuracy" else e.test_accuracy for e in table.entries]
    scores: dict[str, list[float]] = {name: [] for name in proxies}
    seconds = {name: 0.0 for name in proxies}
    started = time.perf_counter()
    for i, entry in enumerate(table.entries):
        candidate = Candidate.of(Genome.from_dict(entry.genome), data, seed=seed, batch_size=batch_size)
        for name in proxies:
            clock = time.perf_counter()
            scores[name].append(score(name, candidate))
            seconds[name] += time.perf_counter() - clock
        if progress is not None:
            progress(i + 1, len(table), time.perf_counter() - started)
    rankings = []
    for name in proxies:
        tau, rho, used = correlations(scores[name], truth)
        rankings.append(Ranking(name, tau, rho, used, seconds[name], NB201_CIFAR10_SPEARMAN.get(name)))
    return rankings, scores
