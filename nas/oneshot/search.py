"""The one-shot searches themselves, free of Ray: train a supernet epoch by epoch, then name a genome.

    search = make_search("darts", space, data, settings, options, seed=0, paths=16)
    for epoch in range(search.epoch + 1, search.epochs + 1):
        metrics = search.train_epoch()          # per epoch: the derived path, its genome, collapse counts
    final = search.finish()                     # the chosen path (SPOS/RSWS: after scoring `paths` paths)
    state = search.state_dict(); search.load_state_dict(state)   # everything a resume needs

- DARTS (Liu et al. 2019): the training split is halved; per step the architecture weights
  (Adam, `arch_lr`, `arch_weight_decay`) take a step on a batch of the second half (first order, or with
  `order` 2 the unrolled second-order gradient, `DartsSearch._unrolled_gradient`), then the network
  weights (SGD with the run's lr, momentum, weight decay, cosine schedule, gradient norm clipped to 5)
  on a batch of the first half. `warmup_epochs` train the weights only. With `partial_channels` K > 1,
  PC-DARTS (Xu et al. 2020): partial-channel edges and edge normalisation. The derived cell is read
  off the architecture weights after every epoch (`Architecture.derive`).
- SPOS (Guo et al. 2020): every step trains one path drawn uniformly from the space on the whole
  training split; then regularized evolution (`nas.search.strategies.evolution`, through its ask/tell
  interface) over `paths` paths, each scored by its validation accuracy with the inherited weights after
  its batch-norm statistics are recalibrated on `bn_batches` training batches.
- RSWS (Li & Talwalkar 2019): the same supernet training; then `paths` paths drawn at random
  (`nas.search.strategies.random_search`), scored the same way.

After every epoch a path is scored (DARTS: the derived one; SPOS/RSWS: one drawn at random) and recorded
with its genome, its cells' parameter-free ops and skip connections (DARTS's collapse: `stop_skips`
ends the training early once the normal cell holds that many skip connections, as DARTS+ / P-DARTS).

One file of about 400 lines: one job, the one-shot loop (`OneShotSearch`) and its three variants, which
override a step or two of it each and read best side by side.
"""
from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from nas.oneshot.architecture import Architecture, cell_counts, op_kinds
from nas.oneshot.supernet import CellSupernet, OneShotError, supernet_for
from nas.search.strategies import strategy_class
from nas.search.strategies.base import FINISHED
from nas.spaces.base import SearchSpace
from nas.summary import summary
from nas.train.datasets import DatasetSplits, Split
from nas.train.loop import BatchHook, augmentation, batches, inputs, make_scheduler, steps_per_epoch, tagged, to_device
from nas.train.failures import TrialFailure
from nas.train.settings import TrainSettings
from nas.train.speed import resolve_channels_last

GRAD_CLIP = 5.0


@torch.no_grad()
def recalibrate(model: nn.Module, data: DatasetSplits, split: Split, batch_size: int, count: int,
                generator: torch.Generator, channels_last: bool = False, **forward: Any) -> None:
    """SPOS's batch-norm recalibration: every BN's running statistics reset, then re-estimated (as a plain
    average) over `count` training batches of this path; `count` 0 keeps the statistics as they are.
    `channels_last`: the batches in that memory format (as the supernet trains)."""
    if count <= 0:
        return
    batch_norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    norms = [m for m in model.modules() if isinstance(m, batch_norms) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for index in batches(len(split), batch_size, generator)[:count]:
        model(inputs(data, split.x[index.to(split.x.device)], channels_last), **forward)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.no_grad()
def accuracy(model: nn.Module, data: DatasetSplits, split: Split, batch_size: int, channels_last: bool = False,
             **forward: Any) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        logits = model(inputs(data, split.x[start:start + batch_size], channels_last), **forward)
        correct += int((logits.argmax(1) == split.y[start:start + batch_size]).sum())
    return correct / max(1, len(split))


class OneShotSearch:
    """What every one-shot search shares: the supernet, its weight optimizer and schedule, the record."""

    name = "oneshot"

    def __init__(self, space: SearchSpace, data: DatasetSplits, settings: TrainSettings, options: Mapping[str, Any],
                 *, seed: int, paths: int, device: torch.device = torch.device("cpu")):
        self.data, self.settings, self.options, self.seed, self.paths = data, settings, dict(options), seed, paths
        self.device = device
        torch.manual_seed(seed)
        self.supernet: CellSupernet = supernet_for(space, channels=options.get("channels"),
                                                   normal_cells=options.get("normal_cells"),
                                                   partial=self.partial()).to(device)
        # the memory format, as `nas train`'s (a recipe's `channels_last`; unset: channels-last on CPUs). On 1
        # thread it made an epoch faster than NCHW: DARTS 1.23x and SPOS 1.23x (the cells space, digits), SPOS
        # over an MBConv stage space 1.08x (1,280 Fashion-MNIST images): benchmarks/oneshot_speed.py
        # --channels-last on / off
        self.channels_last = resolve_channels_last(settings.channels_last, device)
        if self.channels_last:
            self.supernet.to(memory_format=torch.channels_last)
        self.space = self.supernet.space
        self.kinds = op_kinds(self.supernet) if isinstance(self.supernet, CellSupernet) else {}  # stages: none
        self.rng = random.Random(seed)  # paths
        self.generator = torch.Generator().manual_seed(seed + 1)  # batch order, BN recalibration
        self.train_split, self.val_split = to_device(data.train, device), to_device(data.val, device)
        self.policy = augmentation(settings, data)
        self.weight_split = self._weight_split()
        self.optimizer = torch.optim.SGD(self.supernet.parameters(), lr=settings.learning_rate,
                                         momentum=settings.momentum, weight_decay=settings.decay)
        self.scheduler = make_scheduler(self.optimizer, settings,
                                        steps_per_epoch(len(self.weight_split), settings.batch_size))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []  # per epoch: epoch, path, counts, val_accuracy
        self.stopped_early: str | None = None
        self.result: dict[str, Any] | None = None  # after `finish`

    # ----- per strategy -----
    def partial(self) -> int:
        return 1

    def _weight_split(self) -> Split:
        return self.train_split

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def epoch_path(self) -> dict[str, Any]:
        raise NotImplementedError

    def _finish(self) -> tuple[dict[str, Any], float, dict[str, Any]]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # ----- the loop -----
    @property
    def epochs(self) -> int:
        return self.settings.epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs or self.stopped_early is not None

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.policy(x, self.generator) if self.policy.active else x

    def train_epoch(self, on_batch: Callable[..., None] | None = None) -> dict[str, Any]:
        """One epoch of supernet training, then the epoch's path scored and recorded; returns its metrics.
        `on_batch(phase, epoch, done, total, loss)` is told of every training batch (as `nas.train.loop`'s
        hooks: a trial's in-epoch progress, `nas.engine.board.trial_progress`)."""
        started = time.perf_counter()
        self.epoch += 1
        train_loss = self.train_pass(tagged(on_batch, "train", self.epoch))
        if not math.isfinite(train_loss):
            raise TrialFailure(f"loss became {'NaN' if math.isnan(train_loss) else 'inf'} at epoch {self.epoch}")
        train_time = time.perf_counter() - started
        path = self.epoch_path()
        metrics = self._describe(path, self.score(path))
        metrics.update(train_loss=train_loss, epoch=self.epoch, epoch_time=time.perf_counter() - started,
                       supernet_epoch_time=train_time)
        metrics.update(self.epoch_metrics())
        changed = not self.history or self.history[-1]["path"] != path
        self.history.append({"epoch": self.epoch, "path": path, "changed": changed,
                             "val_accuracy": metrics["val_accuracy"],
                             **{k: metrics[k] for k in metrics if k.startswith(("param_free_", "skips_"))}})
        stop = self.options.get("stop_skips") or 0
        if stop and metrics.get("skips_normal", 0) >= stop and self.epoch < self.epochs:
            self.stopped_early = (f"epoch {self.epoch}: the normal cell holds {metrics['skips_normal']} skip "
                                  f"connections (stop_skips {stop})")
        metrics["stopped_early"] = self.stopped_early
        return metrics

    def train_pass(self, on_batch: BatchHook | None = None) -> float:
        """One pass of supernet training over the weights' split; the mean training loss. `on_batch` (a
        `nas.train.loop.BatchHook`) is told of every batch done."""
        self.supernet.train()
        total, count = 0.0, 0
        split = self.weight_split
        order = batches(len(split), self.settings.batch_size, self.generator)
        for done, index in enumerate(order, 1):
            index = index.to(split.x.device)
            x, y = inputs(self.data, split.x[index], self.channels_last, self._augment), split.y[index]
            loss = self._step(x, y)
            total += float(loss) * len(index)
            count += len(index)
            if on_batch is not None:
                on_batch(done, len(order), lambda: total / max(1, count))
        return total / max(1, count)

    def epoch_metrics(self) -> dict[str, Any]:
        return {}

    @contextlib.contextmanager
    def path_statistics(self, path: Mapping[str, Any], generator: torch.Generator | None = None) -> Iterator[None]:
        """The supernet with `path`'s BN statistics recalibrated (SPOS) inside the block, and its own running
        statistics back as they were after it: scoring a path leaves the supernet as it found it (the relaxed
        network's statistics, which DARTS evaluates with, are not those of any one path). `generator` draws
        the recalibration batches (default: the search's own, which it advances)."""
        saved = [(buffer, buffer.clone()) for buffer in self.supernet.buffers()]
        try:
            recalibrate(self.supernet, self.data, self.train_split, self.settings.batch_size,
                        self.options.get("bn_batches", 0), generator or self.generator, self.channels_last,
                        path=path)
            yield
        finally:
            with torch.no_grad():
                for buffer, value in saved:
                    buffer.copy_(value)

    def score(self, path: Mapping[str, Any], generator: torch.Generator | None = None) -> float:
        """Validation accuracy of `path` with the supernet's weights, its BN statistics recalibrated (batches
        drawn by `generator`, default the search's own)."""
        with self.path_statistics(path, generator):
            return accuracy(self.supernet, self.data, self.val_split, self.settings.eval_batch_size,
                            self.channels_last, path=path)

    def _describe(self, path: Mapping[str, Any], val_accuracy: float) -> dict[str, Any]:
        genome = self.space.realize(path)
        cost = summary(genome)
        return {"val_accuracy": val_accuracy, "sample": dict(path), "genome": genome.to_dict(),
                "fingerprint": genome.fingerprint(), "params": cost.params, "flops": cost.flops,
                **(cell_counts(path, self.kinds, self.supernet.kinds, self.supernet.space.blocks)
                   if self.kinds else {})}

    def finish(self) -> dict[str, Any]:
        """The search's answer: its path, genome and metrics (SPOS/RSWS score `paths` paths first)."""
        path, val_accuracy, extra = self._finish()
        self.result = {**self._describe(path, val_accuracy), **extra, "epoch": self.epoch,
                       "derived_last_changed": self.last_change(), "stopped_early": self.stopped_early}
        return self.result

    def last_change(self) -> int | None:
        """The last epoch whose recorded path differs from the epoch before (None before any epoch)."""
        changes = [h["epoch"] for h in self.history if h["changed"]]
        return changes[-1] if changes else None

    def extract(self) -> dict[str, torch.Tensor] | None:
        """The weights of `nas.build(result genome)` taken from the supernet (None with partial channels)."""
        if self.result is None or self.supernet.partial > 1:
            return None
        path = self.result["sample"]
        with self.path_statistics(path):
            _, network = self.supernet.extract(path)
            return {name: value.clone() for name, value in network.state_dict().items()}

    # ----- state -----
    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "epoch": self.epoch, "supernet": self.supernet.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "rng": self.rng.getstate(), "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(), "history": copy.deepcopy(self.history),
                "stopped_early": self.stopped_early, "result": copy.deepcopy(self.result),
                "extra": self.extra_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name:
            raise OneShotError(f"the checkpoint is of a {state.get('name')!r} search, not {self.name!r}")
        self.epoch = int(state["epoch"])
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.setstate(state["rng"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history = copy.deepcopy(state["history"])
        self.stopped_early, self.result = state["stopped_early"], copy.deepcopy(state["result"])
        self.load_extra_state(state["extra"])

    def _weight_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.supernet.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.scheduler.step()


class DartsSearch(OneShotSearch):
    name = "darts"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.architecture = Architecture(self.supernet, torch.Generator().manual_seed(self.seed + 2),
                                         edge_norm=self.supernet.partial > 1).to(self.device)
        self.arch_optimizer = torch.optim.Adam(self.architecture.parameters(), lr=self.options["arch_lr"],
                                               betas=(0.5, 0.999), weight_decay=self.options["arch_weight_decay"])
        self.arch_batches: list[torch.Tensor] = []

    def partial(self) -> int:
        return int(self.options.get("partial_channels") or 1)

    def _weight_split(self) -> Split:
        """The first half of the training split (DARTS: the second half trains the architecture)."""
        half = len(self.train_split) // 2
        return Split(self.train_split.x[:half], self.train_split.y[:half])

    def _arch_split(self) -> Split:
        half = len(self.train_split) // 2
        return Split(self.train_split.x[half:], self.train_split.y[half:])

    def _relaxed(self) -> dict[str, Any]:
        return {"weights": self.architecture.weights(), "edge_weights": self.architecture.edge_weights()}

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.epoch > self.options.get("warmup_epochs", 0):
            if not self.arch_batches:
                split = self._arch_split()
                self.arch_batches = list(batches(len(split), self.settings.batch_size, self.generator))
            index = self.arch_batches.pop().to(self.train_split.x.device)
            split = self._arch_split()
            ax, ay = inputs(self.data, split.x[index], self.channels_last), split.y[index]
            self.arch_optimizer.zero_grad(set_to_none=True)
            if self.options.get("order", 1) == 2:
                self._unrolled_gradient(x, y, ax, ay)
            else:  # the architecture's gradient only: autograd skips the weights' (the weight step recomputes them)
                alphas = list(self.architecture.parameters())
                loss = self.criterion(self.supernet(ax, **self._relaxed()), ay)
                for a, g in zip(alphas, torch.autograd.grad(loss, alphas, allow_unused=True)):
                    a.grad = g if g is not None else torch.zeros_like(a)
            self.arch_optimizer.step()
        with torch.no_grad():
            relaxed = self._relaxed()  # constants for the weight step: no gradient to the architecture
        loss = self.criterion(self.supernet(x, **relaxed), y)
        self._weight_step(loss)
        return loss.detach()

    def _unrolled_gradient(self, x: torch.Tensor, y: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor) -> None:
        """DARTS's second-order architecture gradient, left in the architecture weights' `.grad`.

        w' = w - xi * (grad_w L_train(w, a) + momentum buffer * momentum + weight decay * w), xi the current
        weight learning rate; the gradient is grad_a L_val(w', a) - xi * H dw', where dw' = grad_w' L_val(w', a)
        and the Hessian-vector product H dw' = (grad_a L_train(w + e dw', a) - grad_a L_train(w - e dw', a)) / 2e,
        e = 0.01 / |dw'| (Liu et al. 2019, eq. 7-8)."""
        weights = [p for p in self.supernet.parameters() if p.requires_grad]
        alphas = list(self.architecture.parameters())
        group = self.optimizer.param_groups[0]
        xi, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        saved = [p.detach().clone() for p in weights]
        gradients = torch.autograd.grad(self.criterion(self.supernet(x, **self._relaxed()), y), weights,
                                        allow_unused=True)
        with torch.no_grad():
            for p, g in zip(weights, gradients):
                step = (g if g is not None else torch.zeros_like(p)) + decay * p
                buffer = self.optimizer.state.get(p, {}).get("momentum_buffer")
                if buffer is not None:
                    step = step + momentum * buffer
                p.sub_(xi * step)
        val = torch.autograd.grad(self.criterion(self.supernet(ax, **self._relaxed()), ay), [*alphas, *weights],
                                  allow_unused=True)
        d_alpha, d_weights = val[:len(alphas)], [g if g is not None else torch.zeros_like(p)
                                                  for g, p in zip(val[len(alphas):], weights)]
        epsilon = 0.01 / max(float(torch.cat([g.flatten() for g in d_weights]).norm()), 1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, w, d in zip(weights, saved, d_weights):
                    p.copy_(w + sign * epsilon * d)
            hessian.append(torch.autograd.grad(self.criterion(self.supernet(x, **self._relaxed()), y), alphas,
                                               allow_unused=True))
        with torch.no_grad():
            for p, w in zip(weights, saved):
                p.copy_(w)
            for a, g, plus, minus in zip(alphas, d_alpha, *hessian):
                g = g if g is not None else torch.zeros_like(a)
                if plus is not None and minus is not None:
                    g = g - xi * (plus - minus) / (2 * epsilon)
                a.grad = g

    def epoch_path(self) -> dict[str, Any]:
        return self.architecture.derive()

    def epoch_metrics(self) -> dict[str, Any]:
        relaxed = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in self._relaxed().items()}
        return {"supernet_val_accuracy": accuracy(self.supernet, self.data, self.val_split,
                                                  self.settings.eval_batch_size, self.channels_last, **relaxed),
                "alphas": {k: [[round(float(v), 4) for v in row] for row in w.detach()]
                           for k, w in self.architecture.weights().items()}}

    def _finish(self) -> tuple[dict[str, Any], float, dict[str, Any]]:
        path = self.architecture.derive()
        return path, self.score(path), {}

    def extra_state(self) -> dict[str, Any]:
        return {"architecture": self.architecture.state_dict(), "arch_optimizer": self.arch_optimizer.state_dict(),
                "arch_batches": [b.clone() for b in self.arch_batches]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.architecture.load_state_dict(state["architecture"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.arch_batches = list(state["arch_batches"])


class UniformSearch(OneShotSearch):
    """Supernet training by uniform single paths (SPOS, RSWS); a strategy then scores `paths` paths."""

    def _draw(self) -> dict[str, Any]:
        return self.space.complete({}, self.rng)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.criterion(self.supernet(x, path=self._draw()), y)
        self._weight_step(loss)
        return loss.detach()

    def epoch_path(self) -> dict[str, Any]:
        return self.space.sample(self.rng)

    def _finish(self) -> tuple[dict[str, Any], float, dict[str, Any]]:
        """Score `paths` paths proposed by this strategy's ask/tell object (`nas.oneshot.strategies`)."""
        searcher = strategy_class(self.name)(self.space, seed=self.seed, max_trials=self.paths, options=self.options)
        best: tuple[float, dict[str, Any]] | None = None
        scored = over_budget = 0
        for k in range(10 * self.paths):
            config = searcher.suggest(f"path{k}")
            if config is None or config == FINISHED:
                break
            if self.over_budget(config["sample"]):  # as a multi-trial search fails such a trial: not scored
                over_budget += 1
                searcher.on_trial_complete(f"path{k}", error=True)
                continue
            value = self.score(config["sample"])
            scored += 1
            searcher.on_trial_complete(f"path{k}", {"val_accuracy": value})
            if best is None or value > best[0]:
                best = (value, config["sample"])
        if best is None:
            raise OneShotError(f"no path could be scored ({over_budget} over the size limits --max-params "
                               f"{self.settings.max_params} / --max-flops {self.settings.max_flops})"
                               if over_budget else "no path could be scored")
        return best[1], best[0], {"paths_scored": scored, "paths_over_budget": over_budget,
                                  "duplicates_avoided": searcher.duplicates_avoided}

    def over_budget(self, path: Mapping[str, Any]) -> bool:
        """True when `path`'s genome has more parameters than ``--max-params`` or more FLOPs per image than
        ``--max-flops``: the path is not scored, and the strategy is told it failed."""
        if self.settings.max_params is None and self.settings.max_flops is None:
            return False  # no limits: no need to build the genome
        cost = summary(self.space.realize(path))
        return self.settings.over_caps(cost.params, cost.flops) is not None


class SposSearch(UniformSearch):
    name = "spos"


class RswsSearch(UniformSearch):
    name = "rsws"


SEARCHES: dict[str, type[OneShotSearch]] = {"darts": DartsSearch, "pcdarts": DartsSearch, "spos": SposSearch,
                                            "rsws": RswsSearch}


def make_search(strategy: str, space: SearchSpace, data: DatasetSplits, settings: TrainSettings,
                options: Mapping[str, Any], *, seed: int, paths: int,
                device: torch.device = torch.device("cpu")) -> OneShotSearch:
    """The one-shot search `strategy` (darts, pcdarts, spos, rsws, enas) over `space` with its resolved `options`."""
    if strategy == "enas":  # its own module (nas.oneshot.enas), which imports this one
        from nas.oneshot.enas import EnasSearch  # a cycle: nas.oneshot.enas imports this module

        return EnasSearch(space, data, settings, options, seed=seed, paths=paths, device=device)
    if strategy not in SEARCHES:
        raise OneShotError(f"unknown one-shot strategy {strategy!r} (known: {', '.join(SEARCHES)})")
    return SEARCHES[strategy](space, data, settings, options, seed=seed, paths=paths, device=device)
