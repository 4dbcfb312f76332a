"""Search strategies on a ground-truth table: many seeds, equal query budgets, anytime regret, significance.

    python benchmarks/table_strategies.py results/bench-fashion-mnist/table --seeds 20 --queries 50 \
        --out results/bench-fashion-mnist/strategies

Every strategy (random, evolution, rl, optuna (TPE), pnas by default) runs `--seeds` times over the table's
space for `--queries` proposals in a plain ask/tell loop; each proposal is answered from the table
(`nas.evaluate.on_table`: its own entry when stored, else the nearest stored architecture by differing
choices). Nothing trains, so a run takes seconds.

Strategies guided by a cheap evaluator instead of trained accuracy (`--guided STRATEGY+EVALUATOR ...`,
e.g. ``evolution+jacob_cov``, ``evolution+supernet:spos`` = SPOS's search, ``random+supernet:spos`` =
RSWS's) are told the evaluator's score of each answer, read from `--scores` (the scores.csv of
`nas bench rank --report`), and have found, after each query, the table accuracy of their best-scored
answer. Their cost per query is the evaluator's seconds per architecture (`--rank`: that report's rank.csv)
plus, once, what the evaluator cost up front (`--upfront supernet:spos=CPU_SECONDS`: the supernet's
training); a trained query costs what the table recorded for the answering architecture (its cpu_s).

    python benchmarks/table_strategies.py results/bench-fashion-mnist/table --seeds 100 --queries 50 \
        --guided evolution+jacob_cov evolution+supernet:spos random+supernet:spos \
        --scores results/bench-fashion-mnist/scores.csv --rank results/bench-fashion-mnist/rank.csv \
        --upfront supernet:spos=600 --out results/bench-fashion-mnist/strategies

Written to `--out`:

    strategies.md    per strategy: mean ± std over seeds of the best validation accuracy found and of the
                     regret (table best - best found) after 1/4, 1/2, 3/4 and all of the budget; Welch's
                     t-tests of each strategy's final regret against random search, Holm-adjusted
                     (`nas.compare.stats`); the command and its wall time
    curves.csv       every run's best-so-far after each query
    regret.png       mean anytime regret per strategy against queries (band: ± one standard error over
                     seeds); an unguided seed's best is carried forward, so its curve never rises
    regret_cost.png  the same against CPU seconds spent (log scale), every strategy on one axis
    strategies.json  the same as data
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STRATEGIES = ("random", "evolution", "rl", "optuna", "pnas")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a table folder or table.json (nas bench build)")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--guided", nargs="+", default=[], metavar="STRATEGY+EVALUATOR",
                        help="strategies told an evaluator's score (a column of --scores) instead of the accuracy")
    parser.add_argument("--scores", help="scores.csv of nas bench rank --report (one row per table architecture)")
    parser.add_argument("--rank", help="rank.csv of the same report: each evaluator's seconds per architecture")
    parser.add_argument("--upfront", nargs="+", default=[], metavar="EVALUATOR=CPU_S",
                        help="an evaluator's one-off cost (a supernet's training), counted before its first query")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="runs at once in N processes (default 1); the results do not depend on it")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from nas.compare.stats import compare_pairs, spread
    from nas.evaluate.on_table import Answerer, TableJob, mean_curve, run_jobs
    from nas.evaluate.table import Table

    if args.seeds < 2 or args.queries < 4:
        parser.error("--seeds must be at least 2 and --queries at least 4")
    table = Table.load(args.table)
    if len(table) < 2:
        parser.error(f"{args.table}: {len(table)} architectures; a benchmark needs at least 2")
    space = table.space()
    answerer = Answerer(table)
    top = max(e.final_val_accuracy for e in table.entries)
    guided = guided_runs(args, table, parser)
    names = [*args.strategies, *guided]
    jobs = [TableJob(guided.get(name, (name, None))[0], seed, name) for name in names for seed in range(args.seeds)]
    scores = {name: values for name, (_, values) in guided.items()}
    results: dict[tuple[str, int], object] = {}
    started = time.perf_counter()
    finished = run_jobs(table, space, jobs, queries=args.queries, scores=scores, workers=args.workers,
                        answerer=answerer)
    for done, (job, run) in enumerate(zip(jobs, finished), 1):
        results[(job.name, job.seed)] = run
        elapsed = time.perf_counter() - started
        print(f"{done}/{len(jobs)} runs ({job.name} seed {job.seed}), {elapsed:.0f} s, "
              f"ETA {elapsed / done * (len(jobs) - done):.0f} s", file=sys.stderr, flush=True)
    runs = {name: [results[(name, seed)] for seed in range(args.seeds)] for name in names}
    wall = time.perf_counter() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    points = sorted({max(1, args.queries // 4), max(1, args.queries // 2), max(1, 3 * args.queries // 4), args.queries})

    def at(run, q):  # best after q queries, carried forward past a run's end
        return run.best_so_far[min(q, len(run.best_so_far)) - 1]

    rows, samples = [], {}
    for name, group in runs.items():
        final = [top - at(r, args.queries) for r in group]
        samples[name] = [-v for v in final]  # higher is better for the test: minus the regret
        rows.append({"strategy": name, "seeds": len(group),
                     "best": spread([at(r, args.queries) for r in group]),
                     "regret": {q: spread([top - at(r, q) for r in group]) for q in points},
                     "found_best": sum(1 for v in final if v == 0.0),
                     "distinct": statistics.fmean(r.distinct for r in group),
                     "exact": statistics.fmean(r.exact for r in group)})
    others = [name for name in names if name != "random"]
    tests = compare_pairs(samples, [(name, "random") for name in others]) if "random" in runs else []

    command = "python benchmarks/table_strategies.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"# Strategies on the table: {table.describe()}", "", f"`{command}`", "",
             f"{args.seeds} seeds per strategy (seeds 0..{args.seeds - 1}), {args.queries} queries each; table best "
             f"validation accuracy {top:.4f}; regret = table best - best found (mean ± sample std over seeds). "
             "Each query is answered by the table (a proposal not stored: its nearest stored architecture by "
             f"differing choices). Wall time of all runs: {wall:.0f} s."
             + (" A guided strategy (STRATEGY+EVALUATOR) is told the evaluator's score of each answer and has "
                "found the table accuracy of its best-scored answer." if guided else ""), "",
             "| strategy | seeds | best val acc | " + " | ".join(f"regret @{q}" for q in points)
             + " | found table best | distinct entries | exact hits |",
             "|---|---:|---|" + "---|" * len(points) + "---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['strategy']} | {row['seeds']} | {row['best'].mean:.4f} ± {row['best'].std:.4f} | "
                     + " | ".join(f"{row['regret'][q].mean:.4f} ± {row['regret'][q].std:.4f}" for q in points)
                     + f" | {row['found_best']}/{row['seeds']} | {row['distinct']:.1f} | {row['exact']:.1f} |")
    if tests:
        significant = sum(1 for t in tests if t.significant)
        lines += ["", f"Final regret against random search, Welch's two-sided t-test over seeds, Holm-adjusted "
                      f"together ({len(tests)} tests; significant: adjusted p < 0.05): {significant} significant.", ""]
        for t in tests:
            p = "-" if math.isnan(t.p) else f"{t.p:.3g}"
            padj = "-" if math.isnan(t.p_adjusted) else f"{t.p_adjusted:.3g}"
            verdict = ("lower regret" if t.difference > 0 else "higher regret") if t.significant else "not significant"
            lines.append(f"- {t.a} vs random: regret {-t.difference * 100:+.2f} pp (Welch t = {t.t:.2f}, p = {p}, "
                         f"Holm-adjusted p = {padj}): {verdict}{f' ({t.reason})' if t.reason else ''}")
    lines += ["", "![anytime regret](regret.png)", ""]
    (out / "strategies.md").write_text("\n".join(lines))

    with open(out / "curves.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["strategy", "seed", *[f"q{i + 1}" for i in range(args.queries)]])
        for name, group in runs.items():
            for r in group:
                writer.writerow([name, r.seed, *[f"{at(r, q):.6g}" for q in range(1, args.queries + 1)]])
    (out / "strategies.json").write_text(json.dumps({
        "command": command, "table": str(args.table), "table_best": top, "queries": args.queries,
        "seeds": args.seeds, "wall_s": round(wall, 1),
        "strategies": [{"strategy": r["strategy"], "best_mean": r["best"].mean, "best_std": r["best"].std,
                        "regret": {str(q): {"mean": s.mean, "std": s.std} for q, s in r["regret"].items()},
                        "found_best": r["found_best"], "distinct": r["distinct"], "exact": r["exact"]} for r in rows],
        "tests": [{"a": t.a, "b": t.b, "difference": t.difference, "t": t.t, "p": t.p, "p_adjusted": t.p_adjusted,
                   "significant": t.significant} for t in tests],
        "curves": {name: [r.best_so_far for r in group] for name, group in runs.items()}}, indent=1) + "\n")
    plot(runs, top, args.queries, out / "regret.png", table.describe(), mean_curve)
    costs = query_costs(args, table, names, guided)
    plot_cost(runs, top, costs, out / "regret_cost.png", table.describe())
    print("\n".join(lines))
    return 0


def guided_runs(args, table, parser) -> dict[str, tuple[str, list[float]]]:
    """--guided: name -> (strategy, each table entry's score by the evaluator, in table order)."""
    if not args.guided:
        return {}
    if not args.scores:
        parser.error("--guided needs --scores (the scores.csv of nas bench rank --report)")
    with open(args.scores, newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_fingerprint = {row["fingerprint"]: row for row in rows}
    missing = [e.fingerprint for e in table.entries if e.fingerprint not in by_fingerprint]
    if missing:
        parser.error(f"--scores {args.scores}: no row for {len(missing)} of the table's architectures")
    guided = {}
    for name in args.guided:
        strategy, sep, evaluator = name.partition("+")
        if not sep or strategy not in STRATEGIES or evaluator not in rows[0]:
            parser.error(f"--guided {name}: expected STRATEGY+EVALUATOR with a strategy of {', '.join(STRATEGIES)} "
                         f"and a column of {args.scores} ({', '.join(list(rows[0])[3:])})")
        guided[name] = (strategy, [float(by_fingerprint[e.fingerprint][evaluator]) for e in table.entries])
    return guided


def query_costs(args, table, names, guided) -> dict[str, tuple[float, list[float] | float]]:
    """name -> (one-off CPU seconds, CPU seconds per query: per table entry when trained, else one figure)."""
    per_arch = {}
    if args.rank:
        with open(args.rank, newline="") as handle:
            per_arch = {row["evaluator"]: float(row["s_per_arch"] or 0.0) for row in csv.DictReader(handle)}
    upfront = {}
    for item in args.upfront:
        evaluator, _, seconds = item.partition("=")
        upfront[evaluator] = float(seconds)
    costs = {}
    for name in names:
        if name in guided:
            evaluator = name.partition("+")[2]
            costs[name] = (upfront.get(evaluator, 0.0), per_arch.get(evaluator, 0.0))
        else:
            costs[name] = (0.0, [e.cpu_s for e in table.entries])
    return costs


def line_styles(names) -> dict[str, dict[str, object]]:
    """Trained strategies drawn solid, guided ones (STRATEGY+EVALUATOR) dashed, each group in colours of its own:
    tab20's ten strong colours first, then its ten light ones (matplotlib's default cycle repeats past ten)."""
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"].colors
    palette = tab20[0::2] + tab20[1::2]
    styles = {}
    for guided, linestyle in ((False, "-"), (True, "--")):
        group = [name for name in names if ("+" in name) == guided]
        styles.update({name: {"color": palette[i % len(palette)], "linestyle": linestyle}
                       for i, name in enumerate(group)})
    return styles


def plot_cost(runs, top, costs, path, title) -> None:
    """Mean regret against mean CPU seconds spent after each query (a query's cost: the answering entry's
    training, or the evaluator's per-architecture seconds; plus the evaluator's one-off cost)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    styles = line_styles(list(runs))
    for name, group in runs.items():
        upfront, per_query = costs[name]
        length = max(len(r.best_so_far) for r in group)
        spent, regret = [], []
        for q in range(length):
            totals = []
            for r in group:
                done = r.entries[:q + 1]
                per = sum(per_query[i] for i in done) if isinstance(per_query, list) else per_query * len(done)
                totals.append(upfront + per)
            spent.append(statistics.fmean(totals))
            regret.append(statistics.fmean(top - r.best_so_far[min(q, len(r.best_so_far) - 1)] for r in group))
        axis.plot([max(s, 1e-3) for s in spent], regret, label=name, **styles[name])
    axis.set_xscale("log")
    axis.set_xlabel("CPU seconds spent (mean over seeds; log scale)")
    axis.set_ylabel("regret: table best - best found (val acc)")
    axis.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    axis.legend(fontsize=7 if len(runs) > 10 else 8, ncol=2 if len(runs) > 10 else 1)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot(runs, top, queries, path, title, mean_curve) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    xs = list(range(1, queries + 1))
    styles = line_styles(list(runs))
    for name, group in runs.items():
        mean = [top - v for v in mean_curve(group, queries)]
        curves = [[top - (r.best_so_far[min(q, len(r.best_so_far)) - 1]) for q in xs] for r in group]
        error = [statistics.stdev(c[i] for c in curves) / math.sqrt(len(curves)) if len(curves) > 1 else 0.0
                 for i in range(queries)]
        axis.plot(xs, mean, label=name, **styles[name])
        axis.fill_between(xs, [m - e for m, e in zip(mean, error)], [m + e for m, e in zip(mean, error)], alpha=0.15,
                          color=styles[name]["color"])
    axis.set_xlabel("queries (architectures evaluated)")
    axis.set_ylabel("regret: table best - best found (val acc)")
    axis.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    axis.legend(fontsize=7 if len(runs) > 10 else 10, ncol=2 if len(runs) > 10 else 1)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
