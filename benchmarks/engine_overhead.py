"""How much wall time the search engine (Ray Tune + `nas.search.run`) adds over the trials' own work.

Runs one search of small trials on digits and prints

    ratio = wall time / ideal,   ideal = (sum of the trials' own training times) / concurrent trials

where a trial's own training time is what the trainable measures for itself: building the network
(cost check included) plus its epochs (train + validation). Everything else is engine overhead:
starting Ray, starting trial actors, shipping data, reporting, checkpoint I/O, experiment snapshots.
The ratio is given for the search alone (Tuner.fit) and for the whole command (Ray start, data
loading and the final report included). Target: <= 1.15 for the search.

    python benchmarks/engine_overhead.py                         # 20 trials, 2 epochs, 2 at a time
    python benchmarks/engine_overhead.py --trials 30 --checkpoint-every 1
    python benchmarks/engine_overhead.py --naive                 # Tune's defaults, as a plain loop would

`--naive` keeps Tune's default environment (per-trial JSON/CSV/TensorBoard loggers, working-dir
changes), checkpoints every epoch, and loads the data set inside every trial instead of sharing it
through the object store (REFERENCES.md reports wall/ideal ~2.9 for a naive loop on these machines;
this variant keeps actor reuse and the rest of `run_search`, so it is not that loop).

Most of what is left is a one-time cost: the first trials wait for their actor processes to start
and import torch and Ray Tune (~2.5 s on 2 cores). `ratio_after_start` leaves that out:
(wall - time to the first trial) / ideal, the engine's cost per trial once it runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--space", default="macro")
    parser.add_argument("--train-limit", type=int, default=None, help="training images per trial (default: all)")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="epochs between checkpoints (0: last only)")
    parser.add_argument("--naive", action="store_true", help="Tune's defaults and data loaded in every trial")
    parser.add_argument("--keep", metavar="DIR", help="keep the run folder here (default: a temporary folder)")
    return parser.parse_args()


def naive_environment() -> None:
    """Undo this project's Tune settings (they are applied with setdefault, so setting them wins)."""
    os.environ.update({"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "0", "RAY_CHDIR_TO_TRIAL_DIR": "1",
                       "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "5"})


def timeline(trials: list[dict], search_started_at: float, wall_search: float) -> dict[str, float]:
    """Where the search's wall time goes, from the trials' own clock readings (started_at: entering the
    trainable; reported_at: its last report): until the first trial starts (actor start-up), between
    consecutive trials on one actor (trial hand-over), inside trials but outside their own compute
    (reports, checkpoint saving), and after the last trial (shutting the experiment down)."""
    by_actor: dict[int, list[dict]] = {}
    for trial in trials:
        by_actor.setdefault(trial["pid"], []).append(trial)
    handovers = []
    for runs in by_actor.values():
        runs.sort(key=lambda t: t["started_at"])
        handovers += [b["started_at"] - a["reported_at"] for a, b in zip(runs, runs[1:])]
    first = min(t["started_at"] for t in trials)
    last = max(t["reported_at"] for t in trials)
    inside = [t["reported_at"] - t["started_at"] - t["train_time"] for t in trials]
    return {
        "actors": len(by_actor),
        "to_first_trial_s": round(first - search_started_at, 2),
        "handover_s_median": round(statistics.median(handovers), 3) if handovers else None,
        "handover_s_total": round(sum(handovers), 2),
        "in_trial_overhead_s_total": round(sum(inside), 2),
        "after_last_trial_s": round(search_started_at + wall_search - last, 2),
    }


def main() -> int:
    args = parse()
    if args.naive:
        naive_environment()
    import ray

    from nas.search.run import SearchConfig, run_search
    from nas.train import trainable as trainable_module
    from nas.train.datasets import load_dataset

    if args.naive:  # every trial loads the data itself (nothing shared through the object store)
        original = trainable_module.train_genome

        def load_in_trial(config, data):
            original(config, load_dataset(data.name, train_limit=args.train_limit))

        trainable_module.train_genome = load_in_trial  # what nas.train.trainable.tune_trainable wraps

    config = SearchConfig(strategy=args.strategy, space=args.space, trials=args.trials, concurrent=args.concurrent,
                          train_limit=args.train_limit,
                          train={"epochs": args.epochs, "checkpoint_every": 1 if args.naive else args.checkpoint_every})
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nas-engine-overhead-")) / "run"
    started, started_at = time.perf_counter(), time.time()
    outcome = run_search(config, folder, verbose=False)
    wall_total = time.perf_counter() - started
    if ray.is_initialized():
        ray.shutdown()

    trials = [t for t in outcome.records if t["status"] == "TERMINATED"]
    own = [t["train_time"] for t in trials]
    timings = outcome.summary["timings"]
    concurrency = min(args.concurrent, os.cpu_count() or 1)
    ideal = sum(own) / concurrency
    wall_search = timings["search_s"]
    result = {
        "variant": "naive" if args.naive else "tuned",
        "trials": len(trials),
        "failed": len(outcome.records) - len(trials),
        "concurrent": concurrency,
        "epochs": args.epochs,
        "checkpoint_every": config.settings.checkpoint_every,
        "ideal_s": round(ideal, 2),
        "wall_search_s": round(wall_search, 2),
        "wall_total_s": round(wall_total, 2),
        "ratio_search": round(wall_search / ideal, 3),
        "ratio_total": round(wall_total / ideal, 3),
        "ray_start_s": timings.get("ray_start_s"),
        "data_s": timings.get("data_s"),
        "report_s": round(wall_total - sum(timings.values()), 2),
        "trial_own_s_median": round(statistics.median(own), 2),
        "trial_build_s_median": round(statistics.median(t["build_time"] for t in trials), 3),
        "overhead_per_trial_s": round((wall_search * concurrency - sum(own)) / max(1, len(trials)), 3),
    }
    result.update(timeline(trials, started_at + timings["ray_start_s"] + timings["data_s"], wall_search))
    result["ratio_after_start"] = round((wall_search - result["to_first_trial_s"]) / ideal, 3)
    print(json.dumps(result, indent=2))
    print(f"wall/ideal: search {result['ratio_search']:.3f}, whole command {result['ratio_total']:.3f}, "
          f"search after the first trial started {result['ratio_after_start']:.3f} "
          f"({len(trials)} trials, {concurrency} at a time; ideal {ideal:.1f}s, search {wall_search:.1f}s, "
          f"total {wall_total:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
