"""How well each evaluator ranks a table: rank correlations with bootstrap confidence intervals, the top-10%
hit rate, and the report files (Markdown, CSV, a plot) of `nas bench rank --report DIR`.

    rows = judge(scores, truth, boots=1000, seed=0)     # one Judgement per evaluator
    write_report(rows, "results/bench", title=..., command=...)

Kendall's tau-b and Spearman's rho are `scipy.stats`'s, over the architectures with a finite score. A
confidence interval is the 2.5 and 97.5 percentiles of the statistic over `boots` bootstrap resamples of
the architectures (drawn with replacement, seeded; a resample with fewer than 3 distinct architectures, or
constant scores or accuracies, is skipped). The top-10% hit rate is the share of the table's best 10% by
accuracy (at least one architecture) that are also among the evaluator's best 10% (ties in the score broken
by table order): 0.1 is what a random ranking gets on average.
"""
from __future__ import annotations

import csv
import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.engine.records import replace_file

REPORT_MD, REPORT_CSV, REPORT_PNG = "rank.md", "rank.csv", "rank.png"
TOP_SHARE = 0.1


@dataclass
class Judgement:
    evaluator: str
    scored: int
    kendall_tau: float
    kendall_ci: tuple[float, float]
    spearman_rho: float
    spearman_ci: tuple[float, float]
    top_hit: float  # share of the table's top 10% in the evaluator's top 10%
    seconds_per_arch: float | None = None
    anchor: float | None = None  # published Spearman rho on NAS-Bench-201 CIFAR-10

    def to_row(self) -> dict[str, Any]:
        return {"evaluator": self.evaluator, "archs": self.scored,
                "spearman_rho": _r(self.spearman_rho), "spearman_lo": _r(self.spearman_ci[0]),
                "spearman_hi": _r(self.spearman_ci[1]), "kendall_tau": _r(self.kendall_tau),
                "kendall_lo": _r(self.kendall_ci[0]), "kendall_hi": _r(self.kendall_ci[1]),
                "top10_hit": _r(self.top_hit),
                "s_per_arch": None if self.seconds_per_arch is None else round(self.seconds_per_arch, 4),
                "nb201_cifar10_spearman": self.anchor}


def _r(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _pairs(scores: Sequence[float], truth: Sequence[float]) -> tuple[list[float], list[float]]:
    kept = [(s, t) for s, t in zip(scores, truth)
            if s is not None and math.isfinite(s) and t is not None and math.isfinite(t)]
    return [s for s, _ in kept], [t for _, t in kept]


def _both(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    from scipy import stats  # deferred: scipy (1.5 s; `nas bench --help` imports this module)

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan, math.nan
    return float(stats.kendalltau(x, y).statistic), float(stats.spearmanr(x, y).statistic)


def top_hit_rate(scores: Sequence[float], truth: Sequence[float], share: float = TOP_SHARE) -> float:
    """Share of the best `share` of architectures by `truth` that are also in the best `share` by `scores`
    (non-finite scores rank last; ties in either broken by order)."""
    n = len(truth)
    if n == 0:
        return math.nan
    k = max(1, int(round(share * n)))
    key = [s if s is not None and math.isfinite(s) else -math.inf for s in scores]
    best_truth = set(sorted(range(n), key=lambda i: (-truth[i], i))[:k])
    best_score = set(sorted(range(n), key=lambda i: (-key[i], i))[:k])
    return len(best_truth & best_score) / k


def bootstrap(x: Sequence[float], y: Sequence[float], boots: int, seed: int) -> tuple[tuple[float, float],
                                                                                     tuple[float, float]]:
    """95% percentile intervals of (Kendall's tau, Spearman's rho) over `boots` resamples of the pairs."""
    import numpy as np  # deferred: numpy (keeps `nas bench --help` fast)

    if len(x) < 3 or boots < 1:
        return (math.nan, math.nan), (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    taus, rhos = [], []
    for _ in range(boots):
        index = rng.integers(0, len(xs), len(xs))
        tau, rho = _both(list(xs[index]), list(ys[index]))
        if math.isfinite(tau) and math.isfinite(rho):
            taus.append(tau)
            rhos.append(rho)
    if not taus:
        return (math.nan, math.nan), (math.nan, math.nan)
    return (tuple(float(v) for v in np.percentile(taus, [2.5, 97.5])),
            tuple(float(v) for v in np.percentile(rhos, [2.5, 97.5])))


def judge(scores: Mapping[str, Sequence[float]], truth: Sequence[float], *, boots: int = 1000, seed: int = 0,
          seconds: Mapping[str, float] | None = None, anchors: Mapping[str, float] | None = None
          ) -> list[Judgement]:
    """One `Judgement` per evaluator of `scores` (each a score per architecture, aligned with `truth`)."""
    rows = []
    for name, values in scores.items():
        x, y = _pairs(values, truth)
        tau, rho = _both(x, y)
        tau_ci, rho_ci = bootstrap(x, y, boots, seed)
        per_arch = None if seconds is None or name not in seconds else seconds[name] / max(1, len(truth))
        rows.append(Judgement(name, len(x), tau, tau_ci, rho, rho_ci, top_hit_rate(list(values), list(truth)),
                              per_arch, (anchors or {}).get(name)))
    return rows


def _figure(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def markdown(rows: Sequence[Judgement], *, title: str, command: str, truth_line: str, boots: int) -> str:
    ordered = sorted(rows, key=lambda r: -r.spearman_rho if math.isfinite(r.spearman_rho) else 2.0)
    lines = [f"# {title}", "", f"`{command}`", "", truth_line, "",
             f"95% confidence intervals: percentiles of {boots} bootstrap resamples of the architectures. "
             "Top-10% hit: share of the table's best 10% (by accuracy) that the evaluator also puts in its best "
             "10% (a random ranking: 0.1 on average). NB201: published Spearman rho on NAS-Bench-201 CIFAR-10 "
             "(all 15,625 cells; Abdelfattah et al. 2021).", "",
             "| evaluator | archs | Spearman rho [95% CI] | Kendall tau [95% CI] | top-10% hit | s / arch | NB201 rho |",
             "|---|---:|---|---|---:|---:|---:|"]
    for r in ordered:
        lines.append(f"| {r.evaluator} | {r.scored} | {_figure(r.spearman_rho)} [{_figure(r.spearman_ci[0])}, "
                     f"{_figure(r.spearman_ci[1])}] | {_figure(r.kendall_tau)} [{_figure(r.kendall_ci[0])}, "
                     f"{_figure(r.kendall_ci[1])}] | {_figure(r.top_hit)} | "
                     f"{'-' if r.seconds_per_arch is None else f'{r.seconds_per_arch:.3f}'} | {_figure(r.anchor)} |")
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Judgement]) -> str:
    buffer = io.StringIO()
    dicts = [r.to_row() for r in rows]
    writer = csv.DictWriter(buffer, fieldnames=list(dicts[0]) if dicts else ["evaluator"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(dicts)
    return buffer.getvalue()


def plot(rows: Sequence[Judgement], path: Path, title: str) -> None:
    """Spearman's rho and Kendall's tau of each evaluator with their 95% intervals (horizontal bars)."""
    import matplotlib  # deferred: matplotlib (only a report draws; Agg is chosen before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib (as above)

    ordered = sorted(rows, key=lambda r: r.spearman_rho if math.isfinite(r.spearman_rho) else -2.0)
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(ordered) + 1.5))
    for offset, (label, value, ci) in enumerate((("Spearman rho", "spearman_rho", "spearman_ci"),
                                                   ("Kendall tau", "kendall_tau", "kendall_ci"))):
        ys = [i + (0.2 if offset == 0 else -0.2) for i in range(len(ordered))]
        values = [getattr(r, value) for r in ordered]
        lows = [max(0.0, v - getattr(r, ci)[0]) if math.isfinite(getattr(r, ci)[0]) else 0.0
                for r, v in zip(ordered, values)]
        highs = [max(0.0, getattr(r, ci)[1] - v) if math.isfinite(getattr(r, ci)[1]) else 0.0
                 for r, v in zip(ordered, values)]
        axis.barh(ys, [v if math.isfinite(v) else 0.0 for v in values], height=0.4, xerr=[lows, highs],
                  capsize=2, label=label)
    axis.set_yticks(range(len(ordered)), [r.evaluator for r in ordered])
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_xlim(-1.0, 1.0)
    axis.set_xlabel("rank correlation with the table's accuracy (95% bootstrap interval)")
    axis.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(rows: Sequence[Judgement], folder: str | Path, *, title: str, command: str, truth_line: str,
                 boots: int) -> list[Path]:
    """rank.md, rank.csv and rank.png in `folder` (made if missing); the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / REPORT_MD, folder / REPORT_CSV, folder / REPORT_PNG]
    replace_file(written[0], markdown(rows, title=title, command=command, truth_line=truth_line, boots=boots))
    replace_file(written[1], csv_text(rows))
    plot(rows, written[2], title)
    return written
