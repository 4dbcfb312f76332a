"""`nas bench reseed`: how much of a table's spread is seed noise. The first N architectures of a table (its
sample's order: a random subset of the space) are trained again with the table's recipe and data split but
another training seed, and the two seeds' accuracies are compared.

    second, outcome, complete = reseed_table("bench/c", seed=1, archs=10)
    second.meta["agreement"]["val_accuracy"]["kendall_tau"]

The retrained architectures are a table of their own beside the table, ``DIR/seed<S>.json`` (the same
format: `nas bench rank` and `--evaluate table:` read it), trained in the run folder ``DIR/run-seed<S>`` and
continued like a build (`nas.evaluate.bench_listed.fill_table`): the same command again trains what the
file lacks, or resumes that run. Its ``agreement`` holds, for final validation and test accuracy, Kendall's
tau and Spearman's rho between the seeds with bootstrap 95% intervals (`nas.evaluate.correlate.judge`), the
seed noise (standard deviation of one training's accuracy over seeds, estimated from the differences
between the two seeds: sd(a2 - a1) / sqrt 2) and the spread (standard deviation of the accuracies across
the table's architectures).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.evaluate.bench import table_config
from nas.evaluate.bench_listed import fill_table
from nas.evaluate.correlate import judge
from nas.evaluate.table import TABLE_FILE, Table, table_file
from nas.genome import Genome
from nas.search.config import SearchConfig
from nas.spaces import load_space

METRICS = ("val_accuracy", "test_accuracy")


class ReseedError(NasError):
    """A table cannot be retrained with another seed as asked."""


def reseed_file(folder: Path, seed: int) -> Path:
    return folder / f"seed{seed}.json"


def reseed_run(folder: Path, seed: int) -> Path:
    return folder / f"run-seed{seed}"


def table_folder(path: str | Path) -> Path:
    """The folder of the table at `path` (the folder itself, or the folder of its table.json)."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def check_request(table: Table, where: str, seed: int, archs: int) -> None:
    if table.meta.get("reseed_of") is not None:
        raise ReseedError(f"{where}: a retraining with another seed, not a table; give the table it retrains")
    if seed == table.meta.get("seed"):
        raise ReseedError(f"--seed {seed}: the table was trained with seed {seed}; give another seed")
    if archs < 3:
        raise ReseedError(f"--archs {archs}: a rank correlation needs at least 3 architectures")
    if archs > len(table):
        raise ReseedError(f"--archs {archs}: the table {where} has only {len(table)} architectures")
    missing = [i for i, e in enumerate(table.entries[:archs]) if not e.sample]
    if missing:
        raise ReseedError(f"{where}: architecture {missing[0] + 1} has no sample to train it again from")


def reseed_config(table: Table, seed: int, archs: int, *, data_dir: str | None, concurrent: int | None,
                  cpus_per_trial: float, gpus_per_trial: float):
    """The search config that trains the table's architectures as the table did (data split, recipe) but with
    training seed `seed`."""
    meta, data = table.meta, table.meta.get("data") or {}
    recipe = {**(meta.get("recipe") or {}), "seed": seed}
    return table_config(SearchConfig(
        strategy="random", space=meta["space"], dataset=meta["dataset"], data_dir=data_dir,
        val_fraction=data.get("val_fraction", 0.1), train_limit=data.get("train_limit"),
        seed=data.get("seed", meta.get("seed", 0)), trials=archs, concurrent=concurrent,
        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, train=recipe))


def reseed_meta(table: Table, seed: int, archs: int) -> dict[str, Any]:
    keep = ("space", "dataset", "data", "epochs")
    return {**{k: table.meta.get(k) for k in keep}, "seed": seed, "requested": archs,
            "recipe": {**(table.meta.get("recipe") or {}), "seed": seed},
            "reseed_of": {"table": TABLE_FILE, "seed": table.meta.get("seed"), "archs": len(table)}}


def reseed_table(path: str | Path, *, seed: int, archs: int, data_dir: str | None = None,
                 concurrent: int | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 address: str | None = None, boots: int = 1000, verbose: bool = True, library_logs: bool = False,
                 say: Callable[[str], None] = print) -> tuple[Table, Any, bool]:
    """Train the first `archs` architectures of the table at `path` with training seed `seed` into
    ``seed<S>.json`` beside it (continuing what that file holds), with the two seeds' `agreement` in its
    meta; returns (that table, the search's outcome or None, whether every one of them is trained)."""
    from nas.train.datasets import load_dataset  # deferred: torch (keeps `nas bench --help` torch-free)

    table = Table.load(path)
    where = str(table_file(path))
    check_request(table, where, seed, archs)
    if boots < 0:
        raise ReseedError(f"--bootstrap {boots}: a number of resamples >= 0")
    folder = table_folder(path)
    out = reseed_file(folder, seed)
    meta = reseed_meta(table, seed, archs)
    before = Table.load(out) if out.is_file() else None
    if before is not None:
        differ = [k for k in ("space", "dataset", "data", "epochs", "seed", "recipe")
                  if before.meta.get(k) != meta[k]]
        if differ:
            raise ReseedError(f"{out} retrains with other settings ({', '.join(differ)}) than the table's now; "
                              "move it away to start again")
    config = reseed_config(table, seed, archs, data_dir=data_dir, concurrent=concurrent,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    wanted = [{"genome": dict(e.genome), "sample": dict(e.sample), "fingerprint": e.fingerprint}
              for e in table.entries[:archs]]
    data = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                        train_limit=config.train_limit, val_limit=config.val_limit)
    space = load_space(config.space, input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)
    changed = next((i for i, w in enumerate(wanted) if space.realize(w["sample"]).fingerprint() != w["fingerprint"]),
                   None)
    if changed is not None:
        raise ReseedError(f"{where}: the space {config.space!r} no longer makes architecture {changed + 1} of the "
                          "table from its sample (the space changed since the table was built)")
    second, outcome, complete = fill_table(config, space, reseed_run(folder, seed), out, wanted, meta, before=before,
                                           address=address, verbose=verbose, library_logs=library_logs, say=say)
    second.meta["agreement"] = agreement(table, second, boots=boots)
    second.save(out)
    return second, outcome, complete


def noise_and_spread(first: list[float], second: list[float], everyone: list[float]) -> dict[str, Any]:
    """Seed noise (sd of one training's accuracy over seeds: sd of the paired differences / sqrt 2) and spread
    (sd across architectures: of the whole table, and of the retrained ones at the table's seed)."""
    differences = [b - a for a, b in zip(first, second)]
    noise = statistics.stdev(differences) / math.sqrt(2) if len(differences) >= 2 else math.nan
    spread = statistics.stdev(everyone) if len(everyone) >= 2 else math.nan
    spread_paired = statistics.stdev(first) if len(first) >= 2 else math.nan
    return {"seed_noise_sd": _r(noise), "mean_abs_difference": _r(statistics.fmean(map(abs, differences)))
            if differences else None, "spread_sd": _r(spread), "spread_sd_retrained": _r(spread_paired),
            "noise_to_spread": _r(noise / spread) if spread and math.isfinite(noise) else None}


def agreement(table: Table, second: Table, *, boots: int = 1000, seed: int = 0) -> dict[str, Any]:
    """How the retrained architectures' final accuracies at `second`'s seed agree with the table's."""
    pairs = [(first_entry(table, e), e) for e in second.entries]
    pairs = [(a, b) for a, b in pairs if a is not None]
    result: dict[str, Any] = {"archs": len(pairs), "seeds": [table.meta.get("seed"), second.meta.get("seed")],
                              "bootstrap": boots}
    for metric in METRICS:
        kept = [(value(a, metric), value(b, metric)) for a, b in pairs]
        kept = [(x, y) for x, y in kept if x is not None and y is not None]
        first, again = [x for x, _ in kept], [y for _, y in kept]
        everyone = [v for v in (value(e, metric) for e in table.entries) if v is not None]
        row = judge({"reseed": again}, first, boots=boots, seed=seed)[0]
        result[metric] = {"archs": len(kept), "kendall_tau": _r(row.kendall_tau),
                          "kendall_ci": [_r(row.kendall_ci[0]), _r(row.kendall_ci[1])],
                          "spearman_rho": _r(row.spearman_rho),
                          "spearman_ci": [_r(row.spearman_ci[0]), _r(row.spearman_ci[1])],
                          **noise_and_spread(first, again, everyone), "table_archs": len(everyone)}
    return result


def first_entry(table: Table, entry):
    """The entry of `table` for the architecture of `entry` (another table's), or None."""
    return table.lookup(Genome.from_dict(entry.genome), written=entry.genome)


def value(entry, metric: str) -> float | None:
    figure = entry.final_val_accuracy if metric == "val_accuracy" else entry.test_accuracy
    return None if figure is None or not math.isfinite(figure) else float(figure)


def _r(figure: float | None) -> float | None:
    return None if figure is None or not math.isfinite(figure) else round(float(figure), 4)


def agreement_lines(second: Table) -> list[str]:
    """The agreement of `second` (a reseed's table) on the screen."""
    found = second.meta.get("agreement") or {}
    seeds = found.get("seeds") or ["?", "?"]
    lines = [f"seed {seeds[0]} vs seed {seeds[1]} over {found.get('archs', 0)} architectures "
             f"(95% intervals: {found.get('bootstrap')} bootstrap resamples):"]

    def figure(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for metric in METRICS:
        row = found.get(metric)
        if not row:
            continue
        lines.append(
            f"  {metric.replace('_', ' ')}: Kendall tau {figure(row['kendall_tau'])} [{figure(row['kendall_ci'][0])}, "
            f"{figure(row['kendall_ci'][1])}], Spearman rho {figure(row['spearman_rho'])} "
            f"[{figure(row['spearman_ci'][0])}, {figure(row['spearman_ci'][1])}]; seed noise sd "
            f"{figure(row['seed_noise_sd'])} vs spread sd {figure(row['spread_sd'])} across the table's "
            f"{row['table_archs']} (ratio {figure(row['noise_to_spread'])})")
    return lines
