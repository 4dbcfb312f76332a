"""Progressive NAS (Liu et al. 2018): grow cells one block at a time, guided by a learned predictor.

On a space with a growth order (a `grown(blocks)` method, like the `cells` space: the same space with
fewer blocks per cell, whose samples are prefixes of the bigger space's), the search runs in steps:
  1. `warmup` random 1-block samples are trained (the paper trains every 1-block cell);
  b. the predictor is fitted on every result so far, the samples trained at step b-1 are expanded by
     one block (all expansions, or a seeded random subset of `candidates` when there are more), and the
     `k` expansions it predicts best are trained (isomorphic or already trained genomes are skipped).
A step starts when all of the previous step's trials have finished (the searcher waits meanwhile);
the trial budget (`max_trials`) ends the search in whatever step it is. A trial's sample belongs to
its step's grown space (fewer blocks than the space itself); its genome is the network it trains.
After the last step (all blocks), and on spaces without a growth order, the search is
predictor-guided: after `warmup` random samples, the predictor (refitted whenever new results came
in) scores `candidates` random samples and the best `k` are proposed, without waiting.

The predictor is an ensemble of `ensemble` MLPs (`hidden` units, `epochs` Adam steps at `lr`; the
paper compared an LSTM and an MLP) over a one-hot encoding of the active choices
(`nas.search.strategies.predictor`); with 5 members each trains on 4/5 of the results. Its error is
reported two ways, in `fits` (the strategy's state) and in the log: each fit's out-of-fold MAE and
Spearman correlation, and, as trials finish, how the predictions made for them compare with what
they scored (`prediction_error()`).

Defaults scale with the budget: with B blocks, `warmup` = clamp(max_trials // B, 1, 256) and `k` =
clamp((max_trials - warmup) // (B - 1), 1, 256), so that the last step ends near the budget (paper:
K = 256); without a growth order, `warmup` = clamp(max_trials // 4, 1, 10) and `k` = 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import logging
import math
import zlib
from collections.abc import Mapping
from typing import Any

from nas.errors import NasError
from nas.search.strategies.base import Proposal, SpaceSearcher, StrategyError
from nas.search.strategies import strategy
from nas.search.strategies.options import option
from nas.spaces.base import SearchSpace, sample_key

log = logging.getLogger(__name__)
MAX_BLOCKS = 64  # the largest block count probed to find a growable space's own


def growth_blocks(space: SearchSpace) -> int | None:
    """The number of blocks of a space with a growth order (None: no `grown`, or none reproduces it)."""
    grown = getattr(space, "grown", None)
    if not callable(grown):
        return None
    names = [choice.name for choice in space.choices]
    for blocks in range(1, MAX_BLOCKS + 1):
        if [choice.name for choice in grown(blocks).choices] == names:
            return blocks
    return None


def completions(space: SearchSpace, partial: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every sample of `space` that keeps the values of `partial` (its still-active choices)."""
    found: list[dict[str, Any]] = []
    sample: dict[str, Any] = {}

    def walk(i: int) -> None:
        if i == len(space.choices):
            found.append(dict(sample))
            return
        choice = space.choices[i]
        if not choice.is_active(sample):
            walk(i + 1)
            return
        for value in ([partial[choice.name]] if choice.name in partial else choice.options):
            sample[choice.name] = value
            walk(i + 1)
            del sample[choice.name]

    walk(0)
    return found


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StrategyError(f"pnas option {name!r} must be a positive integer, got {value!r}")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@strategy
class PNASSearcher(SpaceSearcher):
    name = "pnas"
    @dataclass(frozen=True)
    class Options:
        k: int | None = option(None, "expansions trained per step (the paper's K = 256); none: clamp((trials - "
                                     "warmup) // (B - 1), 1, 256) with B blocks, 1 without a growth order", minimum=1)
        candidates: int = option(1000, "expansions (or random samples) the predictor ranks per step, at most",
                                 minimum=1)
        warmup: int | None = option(None, "random samples trained first (1-block cells on a growable space); none: "
                                          "clamp(trials // B, 1, 256), or clamp(trials // 4, 1, 10) without a "
                                          "growth order", minimum=1)
        ensemble: int = option(5, "MLPs in the predictor's ensemble (each fitted on (n-1)/n of the results)",
                               minimum=1)
        hidden: int = option(64, "hidden units of each predictor MLP", minimum=1)
        epochs: int = option(100, "Adam steps per predictor fit", minimum=0)
        lr: float = option(0.01, "the predictor's Adam learning rate", minimum=0)

    def setup(self) -> None:
        o = self.options
        for name in ("candidates", "ensemble", "hidden", "epochs"):
            _positive_int(name, o[name])
        for name in ("k", "warmup"):
            _positive_int(name, o[name], allow_none=True)
        if not isinstance(o["lr"], (int, float)) or isinstance(o["lr"], bool) or not 0 < o["lr"] < math.inf:
            raise StrategyError(f"pnas option 'lr' must be a positive number, got {o['lr']!r}")
        self.full_space = self.space
        self.blocks = growth_blocks(self.space)
        if self.blocks is None:
            self.warmup = o["warmup"] or _clamp(self.max_trials // 4, 1, 10)
            self.k = o["k"] or 1
        else:
            self.warmup = o["warmup"] or o["k"] or _clamp(self.max_trials // self.blocks, 1, 256)
            rest = (self.max_trials - self.warmup) // (self.blocks - 1) if self.blocks > 1 else self.warmup
            self.k = o["k"] or _clamp(rest, 1, 256)
        from nas.search.strategies.predictor import Ensemble, OneHot  # deferred: torch and scipy (nas --help lists us)

        self.encoding = OneHot(self.full_space)
        self.predictor = Ensemble(self.encoding.width, members=o["ensemble"], hidden=o["hidden"], epochs=o["epochs"],
                                  lr=float(o["lr"]))
        self.phase = "grow" if self.blocks else "guided"
        self.step = 0  # growth step (= blocks of the samples it trains); 0 before the first
        self.queue: list[tuple[dict[str, Any], float | None]] = []  # (sample, predicted score) still to propose
        self.issued = 0  # proposals of this step made / told
        self.told = 0
        self.step_samples: list[dict[str, Any]] = []  # this step's samples that trained successfully
        self.history: dict[str, tuple[dict[str, Any], float]] = {}  # sample key -> (sample, score), successes
        self.fitted_on = 0  # len(history) at the last fit
        self.fits: list[dict[str, Any]] = []
        self.checked: list[tuple[float, float]] = []  # (predicted, actual score) of predicted proposals
        self.random_left = 0 if self.blocks else self.warmup
        self.empty_pool_at: int | None = None  # len(self.results) when a pool held nothing new

    # ----- the core -----
    def ask(self) -> Proposal | None:
        while self.phase == "grow" and not self.queue:
            if self.told < self.issued:
                return None  # the next step needs all of this one's results
            self._next_step()
        if self.phase == "grow":
            sample, predicted = self.queue.pop(0)
            self.issued += 1
            return Proposal(sample, token=predicted, meta={"step": self.step})
        if self.random_left > 0 or not self.history:
            self.random_left = max(0, self.random_left - 1)
            return Proposal(self.space.sample(self.rng), meta={"origin": "random"})
        if not self.queue:
            if self.empty_pool_at == len(self.results):  # nothing new in the last pool, nothing learnt since
                return Proposal(self.space.sample(self.rng), meta={"origin": "random"})
            if len(self.history) != self.fitted_on:
                self._fit()
            pool = [self.space.complete({}, self.rng) for _ in range(self.options["candidates"])]
            self.queue = self._best(pool, self.k)
            if not self.queue:  # the space looks exhausted: random proposals until a result comes in
                self.empty_pool_at = len(self.results)
                return Proposal(self.space.sample(self.rng), meta={"origin": "random"})
        sample, predicted = self.queue.pop(0)
        return Proposal(sample, token=predicted, meta={"origin": "predicted"})

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        score = self.score(outcome)
        growing = self.phase == "grow" and proposal.meta.get("step") == self.step
        if growing:
            self.told += 1
        if score is None:
            return
        self.history[sample_key(proposal.sample)] = (proposal.sample, score)
        if growing:
            self.step_samples.append(proposal.sample)
        if proposal.token is not None:
            self.checked.append((proposal.token, score))

    # ----- growth -----
    def _next_step(self) -> None:
        parents, previous = self.step_samples, self.space
        self.issued = self.told = 0
        self.step_samples = []
        if self.step >= self.blocks:
            self.phase, self.space, self.queue = "guided", self.full_space, []
            log.info("pnas: grown to %d blocks; predictor-guided search from here", self.blocks)
            return
        self.step += 1
        self.space = self.full_space.grown(self.step)
        if self.step == 1:
            self.queue = self._random_distinct(self.warmup)
            return
        if len(self.history) != self.fitted_on:
            self._fit()
        pool = self._expansions(parents, previous)
        self.queue = self._best(pool, self.k)
        log.info("pnas step %d (%d blocks): ranked %d expansions of %d cells, training the best %d",
                 self.step, self.step, len(pool), len(parents), len(self.queue))

    def _random_distinct(self, count: int) -> list[tuple[dict[str, Any], None]]:
        chosen: dict[str, dict[str, Any]] = {}
        for _ in range(self.max_draws * max(1, count)):
            if len(chosen) >= count:
                break
            sample = self.space.sample(self.rng)
            chosen.setdefault(self.space.realize(sample).fingerprint(), sample)
        return [(sample, None) for sample in chosen.values()]

    def _expansions(self, parents: list[dict[str, Any]], previous: SearchSpace) -> list[dict[str, Any]]:
        """The samples of the current space that extend `parents` (random ones if no parent trained):
        all of them, or `candidates` distinct ones drawn at random when there are more."""
        limit = self.options["candidates"]
        if not parents:
            parents = [{}]
        old = {choice.name for choice in previous.choices}
        bound = len(parents)
        for choice in self.space.choices:
            if choice.name not in old:
                bound *= len(choice.options)
        if bound <= limit:
            pool = {sample_key(s): s for parent in parents for s in completions(self.space, parent)}
            return list(pool.values())
        drawn: dict[str, dict[str, Any]] = {}
        for _ in range(3 * limit):
            if len(drawn) >= limit:
                break
            sample = self.space.complete(self.rng.choice(parents), self.rng)
            drawn.setdefault(sample_key(sample), sample)
        return list(drawn.values())

    # ----- the predictor -----
    def _fit(self) -> None:
        samples = [sample for sample, _ in self.history.values()]
        scores = [score for _, score in self.history.values()]
        seed = zlib.crc32(f"{self.seed}:{len(self.fits)}".encode())
        stats = self.predictor.fit(self.encoding.encode(samples), scores, seed)
        self.fitted_on = len(self.history)
        stats = {"step": self.step, "phase": self.phase, **stats}
        self.fits.append(stats)
        log.info("pnas predictor fit %d on %d results: held-out MAE %s, Spearman %s (%.2f s)", len(self.fits),
                 stats["n"], stats["heldout_mae"], stats["heldout_spearman"], stats["seconds"])

    def _best(self, pool: list[dict[str, Any]], count: int) -> list[tuple[dict[str, Any], float | None]]:
        """The `count` samples of `pool` predicted best (pool order without a predictor) that realize a
        valid genome not trained, running or chosen already."""
        if not pool:
            return []
        predicted: list[float | None]
        if self.predictor.fitted:
            predicted = list(self.predictor.predict(self.encoding.encode(pool)))
            order = sorted(range(len(pool)), key=lambda i: (-predicted[i], i))
        else:
            predicted, order = [None] * len(pool), list(range(len(pool)))
        taken = set(self.results) | {fingerprint for _, fingerprint in self.pending.values()}
        chosen = []
        for i in order:
            if len(chosen) >= count:
                break
            try:
                fingerprint = self.space.realize(pool[i]).fingerprint()
            except NasError:
                continue
            if fingerprint not in taken:
                taken.add(fingerprint)
                chosen.append((pool[i], predicted[i]))
        return chosen

    def prediction_error(self) -> dict[str, Any]:
        """How the predictions made for finished trials compare with what they scored."""
        if not self.checked:
            return {"n": 0, "mae": None, "spearman": None}
        from nas.search.strategies.predictor import rank_correlation  # deferred: scipy (nas --help lists us)

        predicted, actual = zip(*self.checked)
        return {"n": len(self.checked), "mae": sum(abs(p - a) for p, a in self.checked) / len(self.checked),
                "spearman": rank_correlation(predicted, actual)}

    # ----- state -----
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["choices"] = [choice.name for choice in self.full_space.choices]  # self.space is a grown copy
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.space = self.full_space
        super().set_state(state)

    def core_state(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "warmup": self.warmup, "k": self.k, "phase": self.phase, "step": self.step,
                "queue": self.queue, "issued": self.issued, "told": self.told, "step_samples": self.step_samples,
                "history": self.history, "fitted_on": self.fitted_on, "fits": self.fits, "checked": self.checked,
                "random_left": self.random_left, "empty_pool_at": self.empty_pool_at, "predictor": self.predictor.state_dict(),
                "prediction_error": self.prediction_error()}

    def set_core_state(self, state: dict[str, Any]) -> None:
        self.blocks, self.warmup, self.k = state["blocks"], state["warmup"], state["k"]
        self.phase, self.step, self.queue = state["phase"], state["step"], state["queue"]
        self.issued, self.told, self.step_samples = state["issued"], state["told"], state["step_samples"]
        self.history, self.fitted_on, self.fits = state["history"], state["fitted_on"], state["fits"]
        self.checked, self.random_left = state["checked"], state["random_left"]
        self.empty_pool_at = state["empty_pool_at"]
        o = self.options
        from nas.search.strategies.predictor import Ensemble  # deferred: torch (nas --help lists us)

        self.predictor = Ensemble(self.encoding.width, members=o["ensemble"], hidden=o["hidden"], epochs=o["epochs"],
                                  lr=float(o["lr"]))
        self.predictor.load_state_dict(state["predictor"])
        grow = self.phase == "grow" and self.step >= 1
        self.space = self.full_space.grown(self.step) if grow else self.full_space
