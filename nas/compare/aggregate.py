"""What a comparison's trials say per model: test and validation accuracy over the seeds, cost, latency
(measured once per folder) and training time; and what the searches and the comparison cost together."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nas.compare.config import CompareConfig
from nas.compare.latency import Latency, measure_latency
from nas.compare.plan import Model, SearchRun
from nas.compare.records import CompareTrial
from nas.compare.stats import spread
from nas.train.datasets import DatasetSplits

LATENCY_FILE = "latency.json"


def aggregate(models: Sequence[Model], records: Sequence[CompareTrial],
              latencies: Mapping[str, Latency]) -> list[dict[str, Any]]:
    """Per model: test and validation accuracy over its finished seeds, cost, latency and training time."""
    rows = []
    for model in models:
        own = [r for r in records if r.model == model.label]  # an interrupted or failed trial may know its size
        done = sorted((r for r in own if r.finished), key=lambda r: r.seed)
        failed = [r for r in own if r.failed]
        test, val, seconds = (spread([getattr(r, k) for r in done]) for k in ("test_accuracy", "val_accuracy",
                                                                              "train_time"))
        params = next((r.params for r in own if r.params is not None), None)
        flops = next((r.flops for r in own if r.flops is not None), None)
        latency = latencies.get(model.label)
        rows.append({
            "model": model.label, "kind": model.kind, "source": model.source,
            "seeds": [r.seed for r in done], "test_accuracies": [r.test_accuracy for r in done],
            "test_mean": test.mean, "test_std": test.std, "n": test.n,
            "val_mean": val.mean, "val_std": val.std,
            "train_time_mean": seconds.mean, "train_time_std": seconds.std,
            "params": params, "flops": flops,
            "latency_ms": latency.median_ms if latency else None,
            "failed": len(failed), "errors": sorted({r.error for r in failed if r.error}),
        })
    return rows


def measure_latencies(folder: Path, models: Sequence[Model], data: DatasetSplits,
                      config: CompareConfig) -> dict[str, Latency]:
    """Each model's latency, measured once per folder: a resumed comparison reuses the figures in
    latency.json (per genome fingerprint and measuring setup), so its report does not change."""
    path = folder / LATENCY_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    latencies = {}
    for model in models:
        key = f"{model.genome.fingerprint()}:{config.latency_threads}:{config.latency_repeats}"
        if key in saved:
            latencies[model.label] = Latency(**saved[key])
        else:
            latencies[model.label] = measure_latency(model.genome, data.input_shape, data.num_classes,
                                                     repeats=config.latency_repeats, threads=config.latency_threads)
            saved[key] = asdict(latencies[model.label])
    path.write_text(json.dumps(saved, indent=1) + "\n")
    return latencies


def comparison_cost(runs: Sequence[SearchRun], records: Sequence[CompareTrial]) -> dict[str, Any]:
    """CPU and GPU seconds the searches' trials and this comparison's trials spent (from their records)."""
    def spent(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {"trials": len(trials), **{key: round(sum(float(t.get(key) or 0.0) for t in trials), 1)
                                          for key in ("cpu_s", "gpu_s")}}

    searches = {run.label: spent(run.records) for run in runs}
    training = spent([r.to_dict() for r in records])
    parts = [*searches.values(), training]
    return {"searches": searches, "training": training,
            **{key: round(sum(part[key] for part in parts), 1) for key in ("cpu_s", "gpu_s")}}
