"""Trials in order of merit, from their records (trials.json's, as plain mappings): the ranking that picks a
search's best trial and the leaderboard, and the best-so-far curve. Read by a search's report and by
`nas compare` (which reads search run folders)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nas.engine.records import TrialStatus


def accuracy(record: Mapping[str, Any]) -> float | None:
    """The trial's validation accuracy; for a proxy-scored trial (nas.evaluate), which has none, its score."""
    value = record.get("val_accuracy")
    if value is None:
        value = record.get("score")
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def ranked(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed trials, best first: validation accuracy, then fewer parameters, then earlier."""
    done = [r for r in records if r["status"] == TrialStatus.TERMINATED and accuracy(r) is not None]
    return sorted(done, key=lambda r: (-accuracy(r), r.get("params") or 0, r["index"]))


def best_so_far(records: Sequence[Mapping[str, Any]]) -> list[float | None]:
    best: float | None = None
    curve = []
    for record in sorted(records, key=lambda r: r["index"]):
        value = accuracy(record) if record["status"] == TrialStatus.TERMINATED else None
        if value is not None and (best is None or value > best):
            best = value
        curve.append(best)
    return curve


def trial_points(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(trial number from 1, validation accuracy) of every completed trial that has one, in trial order."""
    return [(r["index"] + 1, accuracy(r)) for r in sorted(records, key=lambda r: r["index"])
            if r["status"] == TrialStatus.TERMINATED and accuracy(r) is not None]


def best_so_far_points(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(trial number from 1, best validation accuracy up to it) from the first completed trial on."""
    return [(i + 1, v) for i, v in enumerate(best_so_far(records)) if v is not None]
