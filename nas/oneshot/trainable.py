"""The one Ray Tune trial of a one-shot search: train the supernet, report and checkpoint every epoch.

    trainable = tune.with_parameters(train_oneshot, data=data, space=space)

`config` holds ``train`` (the `TrainSettings` fields) and ``oneshot`` (strategy, its resolved options,
seed, paths). After every epoch the trial reports the epoch's path: ``val_accuracy`` (that path scored
with the supernet's weights, BN recalibrated), its ``sample``, ``genome``, ``fingerprint``, ``params``,
``flops``, the parameter-free ops and skip connections of its cells (``param_free_normal``,
``skips_normal``, ...), ``train_loss``, ``epoch_time``; DARTS also ``supernet_val_accuracy`` and the
softmaxed ``alphas``. Each report carries a checkpoint (``state.pt``: the whole search state under
``oneshot``), so a stopped trial resumes from its last epoch with the same random states. The last
report (``final: True``) is the search's answer: the chosen path (SPOS/RSWS after scoring `paths`
paths), the per-epoch ``history``, ``derived_last_changed`` and ``stopped_early``; its checkpoint's
``model`` is ``nas.build(genome)``'s state_dict with the supernet's weights (empty with partial channels).
"""
from __future__ import annotations

import time
from typing import Any

import torch
from ray import tune

from nas.engine.board import trial_progress
from nas.engine.checkpoint_report import report_with_checkpoint
from nas.engine.stopping import stops_quietly
from nas.oneshot.search import make_search
from nas.spaces.base import SearchSpace
from nas.train.checkpointing import read_state, write_state
from nas.train.datasets import DatasetSplits
from nas.train.settings import TrainSettings
from nas.train.trainable import CostClock, placement


def _report(search, metrics: dict[str, Any], model: dict[str, torch.Tensor] | None = None) -> None:
    state = {"epoch": search.epoch, "metrics": metrics, "model": model or {}, "oneshot": search.state_dict()}
    report_with_checkpoint(metrics, lambda folder: write_state(folder, state))


@stops_quietly  # the run was interrupted (nas.engine.stopping): the trial ends where it is
def train_oneshot(config: dict[str, Any], data: DatasetSplits, space: SearchSpace, board: str | None = None) -> None:
    """Train the supernet epoch by epoch (reporting and checkpointing each) and report the search's answer; with
    `board` (a search's progress board, `nas.engine.board`) its training batches are posted there as well."""
    started = time.perf_counter()
    settings = TrainSettings.from_dict(config.get("train"))
    spec = config["oneshot"]
    where = placement()
    torch.set_num_threads(where["threads"])
    clock = CostClock(where["gpu_fraction"])
    search = make_search(spec["strategy"], space, data, settings, spec["options"], seed=spec["seed"],
                         paths=spec["paths"], device=where["device"])
    fixed = {"node_ip": where["node_ip"], "node_id": where["node_id"], "device": str(where["device"]),
             "started_at": time.time(), "augment": search.policy.describe()}
    last: dict[str, Any] = {}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            saved, _ = read_state(directory)
        if saved is not None and "oneshot" in saved:  # else damaged (the driver says so): start again
            search.load_state_dict(saved["oneshot"])
            last = dict(saved["metrics"])
            clock.carry(last)
    if search.result is not None:  # finished, but stopped before Tune recorded it: report it again
        tune.report(last)
        return
    resumed_from = search.epoch
    spent = float(last.get("train_time", 0.0))
    train_loss = last.get("train_loss")
    live = trial_progress(board, settings, len(search.weight_split), 0, search.epoch)  # None without a board
    while not search.done:
        metrics = search.train_epoch(on_batch=live)
        train_loss = metrics["train_loss"]
        spent += metrics["epoch_time"]
        metrics.update(fixed, train_time=spent, resumed_from=resumed_from, reported_at=time.time(),
                       build_time=0.0, final=False, **clock.read())
        _report(search, metrics)
    clock_started = time.perf_counter()
    result = search.finish()
    model = search.extract()
    spent += time.perf_counter() - clock_started
    metrics = {**result, **fixed, "history": search.history, "train_loss": train_loss, "train_time": spent,
               "resumed_from": resumed_from,
               "reported_at": time.time(), "final": True, "weights_shared": model is not None,
               "wall_s": time.perf_counter() - started, **clock.read()}
    _report(search, metrics, model)


def oneshot_trainable(data: DatasetSplits, space: SearchSpace, resources: dict[str, float], board: str | None = None):
    """`train_oneshot` as a Ray Tune trainable with the data set and the (fitted) space shared through Ray, its
    in-epoch progress posted to `board` (None: reported per epoch only)."""
    return tune.with_resources(tune.with_parameters(train_oneshot, data=data, space=space, board=board), resources)
