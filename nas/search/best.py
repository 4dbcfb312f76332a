"""The best trial's network written out at the end of a search: its genome (best_genome.yaml), its trained
weights (best_weights.pt), their input contract (best_input.json) and its accuracy on the test split.

`EarlyBest` ranks the trials and starts that work in a thread as soon as the trials are over, so that the
test runs while Ray stops (about a second and a half on two cores) instead of after it; `report.finish`
takes its best trial and result (the trials are not ranked again).
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas.compiler import build
from nas.engine.ranking import ranked
from nas.engine.records import BEST_GENOME, BEST_INPUT, BEST_WEIGHTS, read_records, replace_file
from nas.genome import Genome
from nas.train.checkpointing import STATE_FILE, read_state
from nas.train.contract import input_contract, to_json
from nas.train.inference import accuracy
from nas.train.settings import TrainSettings
from nas.train.speed import resolve_channels_last


def test_accuracy(genome_spec: Mapping[str, Any], weights: Mapping[str, Any], data) -> float:
    """Accuracy of the genome with `weights` on the data set's test split (on this machine's CPU)."""
    model = build(Genome.from_dict(genome_spec), num_classes=data.num_classes, in_channels=data.channels,
                  input_size=data.size)
    model.load_state_dict(weights)
    cpu = torch.device("cpu")
    channels_last = resolve_channels_last(None, cpu)  # the loop's measured default (channels-last on CPUs)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return accuracy(model, data, data.test, TrainSettings.eval_batch_size, channels_last)  # BNs folded, no autograd


def write_best(folder: Path, best: dict[str, Any], data) -> dict[str, Any]:
    """Best genome (YAML), its weights and its test accuracy; returns what was written."""
    written: dict[str, Any] = {}
    genome = Genome.from_dict(best["genome"])
    genome.save(folder / BEST_GENOME)
    written["genome_file"] = BEST_GENOME
    checkpoint = best.get("checkpoint")
    if not (checkpoint and Path(checkpoint).is_dir()):
        return written
    state, damage = read_state(checkpoint)
    if damage:
        written["weights_missing"] = f"{Path(checkpoint) / STATE_FILE}: {damage}"
    else:
        weights = state.get("evaluated", state["model"])  # the moving average, where kept
        torch.save(weights, folder / BEST_WEIGHTS)
        written["weights_file"] = BEST_WEIGHTS
        replace_file(folder / BEST_INPUT, to_json(input_contract(data)))
        written["input_file"] = BEST_INPUT
        written["test_accuracy"] = test_accuracy(best["genome"], weights, data)
    return written


class EarlyBest:
    """`write_best` for the best trial recorded in `folder` (`best`: its record, None when no trial completed),
    running in a daemon thread from construction (a second Ctrl-C does not wait for it); `take()` returns its
    result. Made once the trials have ended: trials.json is final then (the records are written while Tune's
    loop runs, and after it only by `record_interrupted`)."""

    def __init__(self, folder: Path, data) -> None:
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        order = ranked([trial.to_dict() for trial in read_records(folder)])
        self.best = dict(order[0]) if order else None
        self.thread = None
        if self.best is not None:
            self.thread = threading.Thread(target=self._run, args=(folder, data), name="nas-best-test", daemon=True)
            self.thread.start()

    def _run(self, folder: Path, data) -> None:
        try:
            self.result = write_best(folder, self.best, data)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread by take()
            self.error = error

    def take(self) -> dict[str, Any] | None:
        """What `write_best` wrote for `best` (waiting for it), None when there is no best trial."""
        if self.thread is None:
            return None
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.result
