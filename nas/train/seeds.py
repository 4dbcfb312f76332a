"""`nas train --seeds 0 1 2`: one genome trained once per seed, the seeds as parallel Ray Tune trials.

Each trial is the search's own trainable (`nas.train.trainable.train_genome`) with the same settings
but the seed, on the same splits, reporting its test accuracy after its last epoch, as `nas compare`
retrains its models (through the same engine, `nas.engine`: Ray session, experiment, interrupts, progress
view). The output folder:

    genome.yaml           the genome, for the data set
    seed<S>/              per seed: weights.pt (the evaluated weights) and train.json (settings, history, accuracies)
    seeds.json            every seed's accuracies and the mean and standard deviation over the seeds
    tune/                 Ray Tune's experiment (each trial's last checkpoint)
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ray import tune

from nas.compare.stats import spread
from nas.engine import experiment
from nas.engine.interrupts import Interrupted, Interrupts
from nas.engine.progress import TrialsView
from nas.engine.session import tune_session
from nas.engine.verbosity import libraries_quiet, ray_listener_muted
from nas.errors import NasError
from nas.genome import Genome
from nas.train.checkpointing import load_weights
from nas.train.datasets import load_dataset
from nas.train.fit import GENOME_FILE, RESULT_FILE, WEIGHTS_FILE, for_data, new_folder
from nas.train.settings import TrainSettings
from nas.train.trainable import tune_trainable

SEEDS_FILE = "seeds.json"  # and tune/, Ray Tune's experiment


class SeedRecipe:
    """A `tune.sample_from` function: the settings with the trial's seed and the test split at the end."""

    def __init__(self, settings: TrainSettings):
        self.settings = settings.to_dict()

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return TrainSettings.from_dict({**self.settings, "seed": config["seed"], "test_at_end": True}).to_dict()


def trial_name(trial) -> str:
    return f"seed{trial.config['seed']}"


def train_seeds(genome: Genome, dataset: str, seeds: Sequence[int], settings: TrainSettings, out: str | Path, *,
                data_dir: str | None = None, val_fraction: float = 0.1, split_seed: int = 0,
                train_limit: int | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                address: str | None = None, verbose: bool = True, recipe: str | None = None,
                val_limit: int | str | None = None) -> dict[str, Any]:
    """Train `genome` once per seed in parallel on Ray Tune; write the folder above; return seeds.json's record."""
    if len(set(seeds)) != len(seeds) or not seeds:
        raise NasError(f"--seeds: give distinct seeds, got {' '.join(map(str, seeds))}")
    folder = new_folder(out)
    data = load_dataset(dataset, data_dir, val_fraction=val_fraction, seed=split_seed, train_limit=train_limit,
                        val_limit=val_limit)
    genome = for_data(genome, data)
    genome.save(folder / GENOME_FILE)
    space = {"seed": tune.grid_search(list(seeds)), "genome": genome.to_dict(), "fingerprint": genome.fingerprint(),
             "train": tune.sample_from(SeedRecipe(settings))}
    if verbose:
        print(f"{data.describe()}\n{len(seeds)} seeds x {settings.epochs} epochs -> {folder}", flush=True)
    view = TrialsView(len(seeds), label=trial_name, enabled=verbose,
                      metrics=(("test_accuracy", "test"), ("val_accuracy", "val")), best=None)
    with Interrupts() as interrupts, libraries_quiet(True), view, ray_listener_muted(True), tune_session(address):
        interrupts.arm()
        # reuse_actors: more seeds than slots train one after another in the same worker process (a new one
        # costs seconds of CPU: torch and Ray Tune imported again), as a search's trials do
        config = tune.TuneConfig(num_samples=1, reuse_actors=True, trial_name_creator=trial_name,
                                 trial_dirname_creator=trial_name)
        tuner = experiment.new_tuner(folder, tune_trainable(data, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
                                     space, config)
        results = experiment.fit(tuner, interrupts)
        if interrupts.signal is not None:
            raise Interrupted(interrupts.signal)
    rows = []
    for result in results:
        seed, metrics = result.config["seed"], result.metrics or {}
        row = {"seed": seed, "test_accuracy": metrics.get("test_accuracy"), "val_accuracy": metrics.get("val_accuracy"),
               "train_time": metrics.get("train_time"), "error": str(result.error) if result.error else None}
        own = folder / f"seed{seed}"
        own.mkdir()
        if result.error is None and result.checkpoint is not None:
            with result.checkpoint.as_directory() as directory:
                weights = load_weights(directory)

            torch.save(weights, own / WEIGHTS_FILE)
            frame = result.metrics_dataframe
            history = [] if frame is None else [
                {k: float(r[k]) for k in ("epoch", "train_loss", "val_accuracy", "epoch_time")}
                for _, r in frame.iterrows()]
            record = {"genome": genome.name, "fingerprint": genome.fingerprint(),
                      "test_accuracy": row["test_accuracy"], "val_accuracy": row["val_accuracy"],
                      "settings": TrainSettings.from_dict(result.config["train"]).to_dict(), "history": history,
                      "recipe": recipe, "data": data.describe(), "params": metrics.get("params"),
                      "flops": metrics.get("flops"), "genome_file": f"../{GENOME_FILE}", "weights_file": WEIGHTS_FILE}
            (own / RESULT_FILE).write_text(json.dumps(record, indent=2) + "\n")
        rows.append(row)
    rows.sort(key=lambda r: list(seeds).index(r["seed"]))
    done = [r for r in rows if r["error"] is None and r["test_accuracy"] is not None]
    test, val = spread([r["test_accuracy"] for r in done]), spread([r["val_accuracy"] for r in done])
    summary = {"genome": genome.name, "fingerprint": genome.fingerprint(), "data": data.describe(), "recipe": recipe,
               "settings": {k: v for k, v in settings.to_dict().items() if k != "seed"}, "seeds": rows,
               "test_mean": test.mean, "test_std": test.std, "val_mean": val.mean, "val_std": val.std, "n": test.n}
    (folder / SEEDS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
