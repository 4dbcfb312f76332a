"""The leaderboard `nas search` prints at the end (and `nas search --leaderboard` for a run folder): the best
completed trials, one row each."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.engine.ranking import accuracy, ranked
from nas.units import si


LEADERBOARD_COLUMNS = ("rank", "trial", "val acc", "params", "FLOPs", "epochs", "time (s)", "fingerprint", "node")


def leaderboard(records: Sequence[dict[str, Any]], top: int = 10) -> list[tuple[str, ...]]:
    rows = []
    for rank, record in enumerate(ranked(records)[:top], start=1):
        value = accuracy(record)
        shown = f"{value:.4f}" if record.get("val_accuracy") is not None else f"{value:.4g}"  # a proxy's score
        rows.append((str(rank), str(record["index"] + 1), shown, si(record.get("params")),
                     si(record.get("flops")), str(record.get("epoch")), f"{record.get('train_time') or 0:.1f}",
                     (record.get("fingerprint") or "")[:12], str(record.get("node_ip") or "")))
    return rows
