"""The proxy, table and supernet evaluators as Ray Tune trainables: one report per trial, no training.

A search with `--evaluate proxy:NAME`, `table:PATH` or `supernet:RUN` runs through the same strategies, Tune
experiment, run folder, records and leaderboard as a trained one; only the trial differs:

  proxy:NAME   builds the genome (seeded as a trained trial would be), scores it with the proxy on one
               minibatch of the recipe's batch size (`nas.evaluate.proxies`) and reports ``score`` (the
               strategy's metric), never a ``val_accuracy``;
  table:PATH   looks the genome up in the table (`nas.evaluate.table`) and reports the table's final
               validation accuracy (``val_accuracy``, ``epoch`` = the table's epochs) and the training cost
               the table recorded (``table_cpu_s``, ``table_gpu_s``); never its test accuracy. A genome the
               table lacks fails its trial with one line.
  supernet:RUN the candidate's path scored with the weights of the one-shot run's trained supernet, BN
               statistics recalibrated (`nas.evaluate.inherited`); reports that accuracy as ``score`` (the
               strategy's metric) and ``inherited_accuracy``, never as a ``val_accuracy``. The supernet is
               loaded once per worker process and kept for the next trials it runs.

Every trial also reports ``evaluator`` (e.g. ``proxy:synflow``), params, FLOPs and its own cost (cpu_s,
gpu_s) as a trained trial does, so the records say which evaluator scored each trial.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from ray import tune

from nas.evaluate.inherited import InheritedScorer
from nas.evaluate.proxies import Candidate, score
from nas.evaluate.spec import Evaluator
from nas.evaluate.table import Table
from nas.errors import NasError
from nas.genome import Genome
from nas.summary import summary
from nas.train.datasets import DatasetSplits
from nas.train.failures import TrialFailure
from nas.train.settings import TrainSettings
from nas.train.trainable import CostClock, check_caps, placement


def _common(config: dict[str, Any], evaluator: str) -> tuple[Genome, TrainSettings, dict[str, Any], CostClock]:
    where = placement()
    torch.set_num_threads(where["threads"])
    settings = TrainSettings.from_dict(config.get("train"))
    genome = Genome.from_dict(config["genome"])
    fixed = {"evaluator": evaluator, "started_at": time.time(), "node_ip": where["node_ip"],
             "node_id": where["node_id"], "device": str(where["device"]), "_device": where["device"]}
    return genome, settings, fixed, CostClock(where["gpu_fraction"])


def score_genome(config: dict[str, Any], data: DatasetSplits, proxy: str) -> None:
    """A trial of `--evaluate proxy:NAME`: the genome's proxy score as ``score``."""
    started = time.perf_counter()
    genome, settings, fixed, clock = _common(config, f"proxy:{proxy}")
    device = fixed.pop("_device")
    cost = summary(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
    check_caps(cost.params, cost.flops, settings)
    candidate = Candidate.of(genome, data, seed=settings.seed, batch_size=settings.batch_size, device=device)
    value = score(proxy, candidate)
    elapsed = time.perf_counter() - started
    tune.report({"score": value, "params": cost.params, "flops": cost.flops, "epoch": 0, "build_time": elapsed,
                 "train_time": elapsed, "reported_at": time.time(), **fixed, **clock.read()})


def look_up_genome(config: dict[str, Any], table: Table, where: str) -> None:
    """A trial of `--evaluate table:PATH`: the table's final validation accuracy of the genome."""
    started = time.perf_counter()
    genome, settings, fixed, clock = _common(config, f"table:{where}")
    fixed.pop("_device")
    entry = table.lookup(genome, config["genome"])
    if entry is None:
        raise TrialFailure(table.missing_line(genome, where))
    check_caps(entry.params, entry.flops, settings)
    elapsed = time.perf_counter() - started
    tune.report({"val_accuracy": entry.final_val_accuracy, "params": entry.params, "flops": entry.flops,
                 "epoch": len(entry.val_accuracy), "build_time": elapsed, "train_time": elapsed,
                 "table_cpu_s": entry.cpu_s, "table_gpu_s": entry.gpu_s, "table_train_time": entry.train_time,
                 "reported_at": time.time(), **fixed, **clock.read()})


_SCORERS: dict[str, InheritedScorer] = {}  # per worker process: run folder -> its loaded supernet


def inherit_genome(config: dict[str, Any], data: DatasetSplits, run: str) -> None:
    """A trial of `--evaluate supernet:RUN`: the candidate's path scored with the supernet's weights."""
    started = time.perf_counter()
    genome, settings, fixed, clock = _common(config, f"supernet:{run}")
    fixed.pop("_device")
    cost = summary(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
    check_caps(cost.params, cost.flops, settings)
    if run not in _SCORERS:
        _SCORERS.clear()  # one supernet at a time per worker
        _SCORERS[run] = InheritedScorer.load(run, data, seed=settings.seed)
    try:
        value = _SCORERS[run].score(config["sample"])
    except NasError as error:
        raise TrialFailure(str(error)) from None
    elapsed = time.perf_counter() - started
    tune.report({"score": value, "inherited_accuracy": value, "params": cost.params, "flops": cost.flops,
                 "epoch": 0, "build_time": elapsed, "train_time": elapsed, "reported_at": time.time(), **fixed,
                 **clock.read()})


def evaluator_trainable(evaluator: Evaluator, data: DatasetSplits, resources: dict[str, float]):
    """The Ray Tune trainable of a proxy, table or supernet evaluator (`data` or the table shared through the
    object store)."""
    if evaluator.kind == "proxy":
        trainable = tune.with_parameters(score_genome, data=data, proxy=evaluator.argument)
    elif evaluator.kind == "table":
        trainable = tune.with_parameters(look_up_genome, table=Table.load(evaluator.argument),
                                         where=str(evaluator.argument))
    elif evaluator.kind == "supernet":
        trainable = tune.with_parameters(inherit_genome, data=data, run=str(Path(evaluator.argument).resolve()))
    else:
        raise ValueError(f"no evaluator trainable for {evaluator}")
    return tune.with_resources(trainable, resources)
