"""A search's cost, from its trial records: every trial reports cpu_s (CPU seconds of its process) and gpu_s
(wall seconds x the GPU fraction it holds), carried over resumes. A run's cost unit is GPU seconds when any
trial ran on a GPU, else CPU seconds; cumulative costs add the trials in the order the strategy proposed
them (all of them, failed and unfinished ones too), so "the cost to reach the best result" is what the
trials up to and including the best one cost, whatever ran concurrently."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nas.engine.ranking import accuracy, best_so_far, ranked
from nas.engine.records import TrialStatus


COST_UNITS = {"cpu_s": "CPU seconds", "gpu_s": "GPU seconds"}


def cost_key(records: Sequence[Mapping[str, Any]]) -> str:
    """The run's cost metric: gpu_s when any trial spent GPU time, else cpu_s."""
    return "gpu_s" if any((r.get("gpu_s") or 0) > 0 for r in records) else "cpu_s"


def _cost(record: Mapping[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def cumulative_costs(records: Sequence[Mapping[str, Any]], key: str | None = None) -> list[float]:
    """Cost of the trials up to and including each one, in proposal order (one value per trial)."""
    key = key or cost_key(records)
    total, out = 0.0, []
    for record in sorted(records, key=lambda r: r["index"]):
        total += _cost(record, key)
        out.append(total)
    return out


def cost_points(records: Sequence[Mapping[str, Any]], key: str | None = None
                ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(cumulative cost, validation accuracy) of every completed trial, and (cumulative cost, best
    validation accuracy so far) from the first completed trial on: the any-time curve against cost."""
    key = key or cost_key(records)
    order = sorted(records, key=lambda r: r["index"])
    costs, curve = cumulative_costs(order, key), best_so_far(order)
    done = [(c, accuracy(r)) for c, r in zip(costs, order) if r["status"] == TrialStatus.TERMINATED and accuracy(r) is not None]
    return done, [(c, v) for c, v in zip(costs, curve) if v is not None]


def cost_summary(records: Sequence[Mapping[str, Any]], ranking: Sequence[Mapping[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """CPU and GPU seconds of all trials, the unit the run is measured in, and what the trials up to
    the best one cost (None without a completed trial). `ranking`: the completed trials best first, as
    `ranked` gives them (the best alone will do), where the caller ranked them already."""
    key = cost_key(records)
    order = sorted(records, key=lambda r: r["index"])
    summary: dict[str, Any] = {"unit": COST_UNITS[key], "metric": key,
                               "cpu_s": round(sum(_cost(r, "cpu_s") for r in records), 3),
                               "gpu_s": round(sum(_cost(r, "gpu_s") for r in records), 3),
                               "to_best_s": None, "best_trial": None}
    best = ranked(list(records)) if ranking is None else ranking
    if best:
        position = next(i for i, r in enumerate(order) if r["index"] == best[0]["index"])
        summary["to_best_s"] = round(cumulative_costs(order, key)[position], 3)
        summary["best_trial"] = best[0]["index"] + 1
    return summary
