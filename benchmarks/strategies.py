"""Search strategies side by side: equal trial budgets, several seeds, one data set.

Runs random, evolution, rl and optuna (TPE) searches over one space, each `--trials` trials of
`--epochs` epochs, once per seed, all on one local Ray instance; then prints per strategy the mean
(and sample standard deviation over seeds) of the best validation accuracy found, of that best
genome's test accuracy, and of the best validation accuracy reached after each quarter of the budget.
It writes to `--out`:

    anytime.png    best-so-far validation accuracy against trials: mean over seeds, band = min..max
    anytime_cost.png   the same against search cost (CPU seconds of the trials, or GPU seconds on GPUs;
                   trials added in proposal order, as in each run's summary.json)
                   Both show a point only where every seed has a value (each seed's best carried past its
                   end), so the mean is over the same runs all along and, like each run's, never drops.
    summary.json   every run's best-so-far curve, best trial and timings; the table below as data
    summary.md     the table
    runs/<strategy>-seed<k>/   each search's own run folder (trials.csv, best genome, plot, ...)

A run folder that already holds a finished search with the same settings is read back instead of
being run again, so an interrupted benchmark continues where it stopped (`--fresh` runs all again).

    python benchmarks/strategies.py                                  # 4 strategies x 5 seeds x 20 trials
    python benchmarks/strategies.py --seeds 5 --trials 24 --space cells --out results/strategies-cells
    python benchmarks/strategies.py --dataset fashion_mnist --train-limit 2000 --epochs 2   # -> results/strategies-fashion-mnist

Equal budgets also mean equal warm-up: evolution's random initial population and TPE's random
start are both `--warmup` samples (default: half the budget), so that both have the same number of
guided proposals; the RL controller learns from the first trial on and random never does. With one
seed, evolution's warm-up draws the same samples as random search's first proposals (both sample the
space with the same seeded generator), so their curves coincide until the warm-up ends.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from nas.units import plural

STRATEGIES = ("random", "evolution", "rl", "optuna", "pnas")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..K-1 (default 5)")
    parser.add_argument("--trials", type=int, default=20, help="trials per search (default 20)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial (default 2)")
    parser.add_argument("--warmup", type=int, help="random proposals before evolution / TPE guide (default trials // 2)")
    parser.add_argument("--space", default="macro")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--train-limit", type=int, help="train on a stratified subset of N images (a harder task)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of the training data held out for validation (default 0.1; Fashion-MNIST: "
                             "0.1 is 6,000 images, evaluated after every epoch)")
    parser.add_argument("--augment", default="auto", help="training augmentation (default auto: the data set's)")
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--out", help="output folder (default results/strategies-<dataset>)")
    parser.add_argument("--fresh", action="store_true", help="run every search again, even those already finished")
    return parser.parse_args()


def strategy_options(strategy: str, warmup: int) -> dict:
    return {"evolution": {"population": warmup}, "optuna": {"startup_trials": warmup},
            "pnas": {"warmup": warmup}}.get(strategy, {})


def finished_summary(folder: Path) -> dict | None:
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def same_config(saved: dict | None, config) -> bool:
    """Whether a finished run's saved config is `config` (fields added since it ran count with their defaults)."""
    from nas.search.run import SearchConfig, SearchError

    try:
        saved = SearchConfig.from_dict(saved or {}).to_dict()
    except SearchError:
        return False
    return json.loads(json.dumps(saved)) == json.loads(json.dumps(config.to_dict()))


def run_one(args: argparse.Namespace, strategy: str, seed: int, warmup: int, folder: Path) -> dict:
    from nas.search.report import best_so_far, cost_points, cost_summary, read_trials
    from nas.search.run import SearchConfig, run_search

    train = {"epochs": args.epochs}
    if args.augment != "auto":  # the default stays out of the config, so runs finished before --augment are reused
        train["augment"] = args.augment
    config = SearchConfig(strategy=strategy, space=args.space, dataset=args.dataset, data_dir=args.data_dir,
                          train_limit=args.train_limit, val_fraction=args.val_fraction, trials=args.trials,
                          concurrent=args.concurrent, seed=seed, options=strategy_options(strategy, warmup), train=train)
    summary = None if args.fresh else finished_summary(folder)
    if summary is None or not same_config(summary.get("config"), config):
        if folder.exists():
            shutil.rmtree(folder)  # unfinished, or run with other settings: start it again from scratch
        summary = run_search(config, folder, verbose=False).summary
    records = read_trials(folder)
    best = summary.get("best") or {}
    cost = cost_summary(records)  # from the records: also for runs finished before summaries had costs
    return {"strategy": strategy, "seed": seed, "folder": str(folder), "curve": best_so_far(records),
            "cost_curve": cost_points(records, cost["metric"])[1], "cost_unit": cost["unit"],
            "cost": cost[cost["metric"]], "cost_to_best": cost["to_best_s"],
            "best_val": best.get("val_accuracy"), "best_test": best.get("test_accuracy"),
            "best_params": best.get("params"), "failed": summary["counts"]["failed"],
            "search_s": summary["timings"].get("search_s")}


def mean_std(values: list[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation of the values that exist (nan, nan if none)."""
    from nas.compare.stats import spread

    result = spread([v for v in values if v is not None])
    return result.mean, result.std


def checkpoints(trials: int) -> list[int]:
    """Trial counts at which the any-time table reads the curves: each quarter of the budget."""
    return sorted({max(1, round(trials * q / 4)) for q in (1, 2, 3, 4)})


def table(runs: list[dict], strategies: list[str], trials: int) -> tuple[list[dict], str]:
    marks = checkpoints(trials)
    rows = []
    for strategy in strategies:
        mine = [r for r in runs if r["strategy"] == strategy]
        row = {"strategy": strategy, "seeds": len(mine),
               "best_val": mean_std([r["best_val"] for r in mine]),
               "best_test": mean_std([r["best_test"] for r in mine]),
               "failed": sum(r["failed"] for r in mine),
               "search_s": mean_std([r["search_s"] for r in mine]),
               "cost": mean_std([r["cost"] for r in mine]),
               "cost_to_best": mean_std([r["cost_to_best"] for r in mine])}
        for mark in marks:
            row[f"val@{mark}"] = mean_std([r["curve"][mark - 1] if len(r["curve"]) >= mark else None for r in mine])
        rows.append(row)
    unit = next((r["cost_unit"] for r in runs), "CPU seconds")
    header = ["strategy", "seeds", "best val acc", "its test acc"] + [f"best val @{m}" for m in marks] + \
             ["failed trials", "search time (s)", f"cost ({unit})", "cost to best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["strategy"], str(row["seeds"]), _pm(row["best_val"]), _pm(row["best_test"])]
        cells += [_pm(row[f"val@{m}"]) for m in marks]
        cells += [str(row["failed"]), f"{row['search_s'][0]:.0f}", f"{row['cost'][0]:.0f}",
                  f"{row['cost_to_best'][0]:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return rows, "\n".join(lines)


def significance(runs: list[dict], strategies: list[str]) -> tuple[list[dict], str]:
    """Each strategy against random search, on the best validation accuracy and on that genome's test
    accuracy over seeds: Welch's two-sided t-test, Holm-adjusted over all the tests made here."""
    from nas.compare.stats import ALPHA, compare_pairs

    others = [s for s in strategies if s != "random"]
    if "random" not in strategies or not others:
        return [], ""
    metrics = {"best_val": "best validation accuracy", "best_test": "its test accuracy"}
    samples = {(s, m): [r[m] for r in runs if r["strategy"] == s and r[m] is not None]
               for s in strategies for m in metrics}
    pairs = [((s, m), ("random", m)) for m in metrics for s in others]
    rows, lines = [], []
    for c in compare_pairs(samples, pairs):
        (strategy, metric), label = c.a, metrics[c.a[1]]
        verdict = c.reason or ("significant" if c.significant else "not significant")
        rows.append({"metric": metric, "strategy": strategy, "difference": c.difference, "t": c.t, "p": c.p,
                     "p_holm": c.p_adjusted, "verdict": verdict})
        lines.append(f"- {strategy} vs random, {label}: {c.difference * 100:+.2f} pp (Welch t = {c.t:.2f}, "
                     f"p = {c.p:.2g}, Holm-adjusted p = {c.p_adjusted:.2g}): {verdict}")
    significant = sum(r["verdict"] == "significant" for r in rows)
    head = (f"{len(rows)} differences from random search tested (Welch's two-sided t-test over seeds, "
            f"Holm-adjusted together; significant: adjusted p < {ALPHA}): {significant} significant.")
    return rows, head + "\n\n" + "\n".join(lines)


def _pm(value: tuple[float, float]) -> str:
    return f"{value[0]:.4f} ± {value[1]:.4f}"


def plot(runs: list[dict], strategies: list[str], trials: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from nas.search.report import save_accuracy_plot

    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    x = list(range(1, trials + 1))
    for strategy in strategies:
        curves = [r["curve"] for r in runs if r["strategy"] == strategy]
        points = seeds_by_trial(curves, trials)
        if not points:
            continue
        points.append((trials + 0.5, *points[-1][1:]))  # hold the last value to the plot's edge
        xs, means, lows, highs = zip(*points)
        line, = axes.plot(xs, means, drawstyle="steps-post", linewidth=2, label=f"{strategy} (n={len(curves)})")
        axes.fill_between(xs, lows, highs, step="post", alpha=0.15, color=line.get_color())
    axes.set_xlim(0.5, trials + 0.5)
    axes.set_xticks(x if trials <= 20 else None)
    save_accuracy_plot(figure, axes, path, "trials", "best validation accuracy so far", title)


def every_run(column: list[float | None]) -> tuple[float, float, float] | None:
    """(mean, min, max) of one point of the runs' best-so-far curves, only where every run has a value: a
    mean over the runs that happen to have one would change support along the curve and could drop (a
    best-so-far never does)."""
    if not column or any(value is None for value in column):
        return None
    return statistics.fmean(column), min(column), max(column)


def seeds_by_trial(curves: list[list[float | None]], trials: int) -> list[tuple[float, float, float, float]]:
    """(trial, mean, min, max) of the runs' best-so-far curves against trials, where every run has a value."""
    columns = [[c[i] if i < len(c) else (c[-1] if c else None) for c in curves] for i in range(trials)]
    return [(i + 1, *spread) for i, spread in enumerate(map(every_run, columns)) if spread]


def seeds_by_cost(curves: list[list[list[float]]], grid: list[float]) -> list[tuple[float, float, float, float]]:
    """(cost, mean, min, max) of the runs' best-so-far curves against cost, where every run has a value."""
    columns = [[best_at(c, g) for c in curves] for g in grid]
    return [(g, *spread) for g, spread in zip(grid, map(every_run, columns)) if spread]


def cost_grid(runs: list[dict], points: int = 200) -> list[float]:
    """Costs at which the cost plot reads every run: 0 .. the costliest run's total."""
    top = max((r["cost_curve"][-1][0] for r in runs if r["cost_curve"]), default=0.0)
    return [top * i / (points - 1) for i in range(points)]


def best_at(curve: list[list[float]], cost: float) -> float | None:
    """A run's best validation accuracy once it had spent `cost` (None before its first result; its
    last value after its end: what it found with that budget)."""
    value = None
    for spent, best in curve:
        if spent > cost:
            break
        value = best
    return value


def plot_cost(runs: list[dict], strategies: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from nas.search.report import save_accuracy_plot

    grid = cost_grid(runs)
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for strategy in strategies:
        curves = [r["cost_curve"] for r in runs if r["strategy"] == strategy]
        points = seeds_by_cost(curves, grid)
        if not points:
            continue
        xs, means, lows, highs = zip(*points)
        line, = axes.plot(xs, means, drawstyle="steps-post", linewidth=2, label=f"{strategy} (n={len(curves)})")
        axes.fill_between(xs, lows, highs, step="post", alpha=0.15, color=line.get_color())
    unit = next((r["cost_unit"] for r in runs), "CPU seconds")
    axes.set_xlim(left=0)
    save_accuracy_plot(figure, axes, path, f"search cost ({unit})", "best validation accuracy so far", title)


def main() -> int:
    args = parse()
    warmup = args.warmup if args.warmup is not None else max(1, args.trials // 2)
    out = Path(args.out or f"results/strategies-{args.dataset.split(':')[0].replace('_', '-')}")
    out.mkdir(parents=True, exist_ok=True)
    from nas.search.run import tune_session

    started = time.perf_counter()
    runs = []
    with tune_session(None):  # one local Ray for every search
        for seed in range(args.seeds):
            for strategy in args.strategies:
                folder = out / "runs" / f"{strategy}-seed{seed}"
                run = run_one(args, strategy, seed, warmup, folder)
                runs.append(run)
                print(f"{strategy:>9} seed {seed}: best val {run['best_val']:.4f}, test "
                      f"{run['best_test']:.4f} ({run['search_s']:.0f}s)", flush=True)

    rows, markdown = table(runs, args.strategies, args.trials)
    title = (f"{args.space} space on {args.dataset}: {plural(args.trials, 'trial')} x {plural(args.epochs, 'epoch')}, "
             f"{plural(args.seeds, 'seed')}")
    plot(runs, args.strategies, args.trials, out / "anytime.png", title)
    plot_cost(runs, args.strategies, out / "anytime_cost.png", title)
    setup = {key: value for key, value in vars(args).items() if key != "fresh"}
    setup["warmup"] = warmup
    setup["options"] = {s: strategy_options(s, warmup) for s in args.strategies}
    tests, verdicts = significance(runs, args.strategies)
    (out / "summary.json").write_text(json.dumps({"setup": setup, "table": rows, "tests": tests, "runs": runs},
                                                 indent=2) + "\n")
    command = "python benchmarks/strategies.py " + " ".join(sys.argv[1:])
    (out / "summary.md").write_text(f"# Strategies: {title}\n\n`{command.strip()}`\n\nMean ± sample std over seeds. "
                                    f"Warm-up (random) proposals of evolution and TPE: {warmup}; with the same seed, evolution's "
                                    f"warm-up is random search's first {warmup} proposals.\n\n"
                                    f"{markdown}\n\n{verdicts}\n\n![any-time](anytime.png)\n\n"
                                    "![any-time against cost](anytime_cost.png)\n")
    print()
    print(markdown)
    print()
    print(verdicts)
    print(f"\n{len(runs)} searches in {time.perf_counter() - started:.0f}s -> {out}/summary.md, {out}/anytime.png, "
          f"{out}/anytime_cost.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
