"""The surrogate of progressive search: an ensemble of small MLPs over a one-hot encoding of a sample.

`OneHot(space)` gives every option of every choice of `space` one input; a sample sets the inputs
of its active choices (samples of a grown-out space with fewer blocks leave the later blocks' inputs
at zero, so one encoding serves every step). `Ensemble.fit(x, y, seed)` trains each member on all
results but one fold (k-fold with one fold per member, at most one per point), so that every result
also gets an out-of-fold prediction: the fit's held-out mean absolute error and Spearman rank
correlation, reported with the fit. Targets are standardised; training is full-batch Adam on one
thread with torch's RNG forked and seeded, so a fit is deterministic and takes well under a second
on a CPU for a few hundred results.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from scipy.stats import spearmanr
from torch import nn

from nas.search.strategies.controller import single_threaded
from nas.spaces.base import SearchSpace


class OneHot:
    """Sample -> 0/1 vector with one entry per (choice, option) of `space`."""

    def __init__(self, space: SearchSpace):
        self.choices = {choice.name: choice for choice in space.choices}
        self.offsets: dict[str, int] = {}
        width = 0
        for choice in space.choices:
            self.offsets[choice.name] = width
            width += len(choice.options)
        self.width = width

    def encode(self, samples: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        rows, columns = [], []
        for row, sample in enumerate(samples):
            for name, value in sample.items():
                rows.append(row)
                columns.append(self.offsets[name] + self.choices[name].index(value))
        x = torch.zeros(len(samples), self.width)
        x[rows, columns] = 1.0
        return x


class MLPs(nn.Module):
    """`members` independent MLPs (two hidden layers of `hidden` units) evaluated as one batched model:
    x (n, width) -> predictions (members, n)."""

    def __init__(self, members: int, width: int, hidden: int):
        super().__init__()
        sizes = [(width, hidden), (hidden, hidden), (hidden, 1)]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(members, a, b)) for a, b in sizes)
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(members, 1, b)) for _, b in sizes)
        for (fan_in, _), weight, bias in zip(sizes, self.weights, self.biases):  # nn.Linear's default range
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.matmul(h, weight) + bias
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(2)


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    value = float(spearmanr(a, b).statistic)
    return value if math.isfinite(value) else None


class Ensemble:
    """`members` MLPs (`hidden` units, two hidden layers), trained together, `epochs` full-batch Adam steps at `lr`."""

    def __init__(self, width: int, *, members: int, hidden: int, epochs: int, lr: float):
        self.width, self.members, self.hidden, self.epochs, self.lr = width, members, hidden, epochs, lr
        self.model: MLPs | None = None
        self.mean, self.std = 0.0, 1.0

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def fit(self, x: torch.Tensor, y: Sequence[float], seed: int) -> dict[str, Any]:
        """Train on (x, y); returns the fit's statistics (n, folds, held-out MAE and Spearman, seconds)."""
        clock = time.perf_counter()
        n = len(y)
        target = torch.tensor(y, dtype=torch.float32)
        self.mean = float(target.mean())
        self.std = float(target.std()) if n > 1 and float(target.std()) > 1e-12 else 1.0
        z = (target - self.mean) / self.std
        folds = min(self.members, n) if n >= 2 else 0
        with single_threaded(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fold = torch.empty(n, dtype=torch.long)
            fold[torch.randperm(n)] = torch.arange(n) % max(folds, 1)
            member_fold = torch.arange(self.members) % max(folds, 1)
            left_out = (fold[None, :] == member_fold[:, None]) if folds else torch.zeros(self.members, n, dtype=torch.bool)
            self.model = MLPs(self.members, self.width, self.hidden)
            self._train(x, z, (~left_out).float())
            with torch.no_grad():
                predictions = self.model(x)
        stats: dict[str, Any] = {"n": n, "folds": folds, "heldout_mae": None, "heldout_spearman": None}
        if folds:
            mask = left_out.float()
            out_of_fold = (predictions * mask).sum(0) / mask.sum(0)
            predicted = (out_of_fold * self.std + self.mean).tolist()
            stats["heldout_mae"] = sum(abs(p - t) for p, t in zip(predicted, y)) / n
            stats["heldout_spearman"] = _spearman(predicted, list(y))
        stats["seconds"] = time.perf_counter() - clock
        return stats

    def _train(self, x: torch.Tensor, z: torch.Tensor, weights: torch.Tensor) -> None:
        """Full-batch Adam on each member's masked mean squared error (members learn independently)."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=1e-4)
        counts = weights.sum(1).clamp(min=1)
        for _ in range(self.epochs):
            optimizer.zero_grad()
            loss = (((self.model(x) - z) ** 2 * weights).sum(1) / counts).sum()
            loss.backward()
            optimizer.step()

    def predict(self, x: torch.Tensor) -> list[float]:
        """The ensemble's mean prediction (in the targets' units) for each row of `x`."""
        if self.model is None:
            raise RuntimeError("the predictor has not been fitted")
        with single_threaded(), torch.no_grad():
            z = self.model(x).mean(0)
        return (z * self.std + self.mean).tolist()

    def state_dict(self) -> dict[str, Any]:
        weights = None if self.model is None else copy.deepcopy(self.model.state_dict())
        return {"model": weights, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model = None
        if state["model"] is not None:
            self.model = MLPs(self.members, self.width, self.hidden)
            self.model.load_state_dict(state["model"])
        self.mean, self.std = state["mean"], state["std"]


def rank_correlation(predicted: Sequence[float], actual: Sequence[float]) -> float | None:
    """Spearman's rank correlation (None with fewer than 3 points or a constant side)."""
    return _spearman(list(predicted), list(actual))
