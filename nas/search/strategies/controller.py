"""The RNN controller of Zoph & Le (2017): an LSTM that emits one decision per choice of a space.

Each step reads the embedding of the previous decision (a learned start vector at step 0), and a
choice's own linear head gives a softmax over that choice's options. Conditional choices that are
inactive for the sample drawn so far are skipped, so only active choices add to the log-probability.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nas.spaces.base import SearchSpace


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the controller's tiny ops on one thread: on a machine busy with trials, OpenMP's thread pool
    made each of Adam's small ops take milliseconds instead of microseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Controller(nn.Module):
    def __init__(self, space: SearchSpace, hidden: int, layers: int, init_range: float, generator: torch.Generator):
        super().__init__()
        sizes = [len(choice.options) for choice in space.choices]
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in sizes)
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(layers))
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in sizes)
        self.double()  # float64: float32 Adam state underflows to slow denormals once a softmax saturates
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -init_range, init_range, generator=generator)

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(shape, dtype=self.start.dtype)

    def _step(self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        for i, cell in enumerate(self.cells):
            state[i] = cell(x, state[i])
            x = state[i][0]
        return x

    def walk(self, space: SearchSpace, forced: dict[str, Any] | None = None,
             generator: torch.Generator | None = None) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Run the controller over the space's active choices; returns (sample, log-prob, entropy).

        With `forced`, its decisions are taken (to score a sample); otherwise they are drawn with `generator`.
        """
        hidden = self.start.shape[1]
        state = [(self._zeros(1, hidden), self._zeros(1, hidden)) for _ in self.cells]
        x = self.start
        sample: dict[str, Any] = {}
        log_prob = self._zeros()
        entropy = self._zeros()
        for i, choice in enumerate(space.choices):
            if not choice.is_active(sample):
                continue
            logits = self.heads[i](self._step(x, state))[0]
            log_probs = torch.log_softmax(logits, 0)
            if forced is None:
                index = int(torch.multinomial(log_probs.exp(), 1, generator=generator).item())
            else:
                index = choice.index(forced[choice.name])
            sample[choice.name] = choice.options[index]
            log_prob = log_prob + log_probs[index]
            entropy = entropy - (log_probs.exp() * log_probs).sum()
            x = self.embeddings[i](torch.tensor([index]))
        return sample, log_prob, entropy

    def probabilities(self, space: SearchSpace, prefix: dict[str, Any], name: str) -> list[float]:
        """The controller's distribution over choice `name`'s options after the decisions in `prefix`."""
        hidden = self.start.shape[1]
        state = [(self._zeros(1, hidden), self._zeros(1, hidden)) for _ in self.cells]
        x = self.start
        sample: dict[str, Any] = {}
        with torch.no_grad():
            for i, choice in enumerate(space.choices):
                if not choice.is_active(sample):
                    continue
                probs = torch.softmax(self.heads[i](self._step(x, state))[0], 0)
                if choice.name == name:
                    return probs.tolist()
                index = choice.index(prefix[choice.name])
                sample[choice.name] = choice.options[index]
                x = self.embeddings[i](torch.tensor([index]))
        raise KeyError(f"choice {name!r} is not active after {prefix}")
