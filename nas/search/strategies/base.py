"""The base of every strategy: plain Python, no Ray. A strategy is ask/tell over a seeded RNG with state that
saves and restores; `nas.engine.searcher.TuneSearcher` is the one adapter that runs it in Ray Tune.

A strategy only implements its core:
  - `ask() -> Proposal | None | FINISHED`: the next sample to try (None: wait for results),
  - `tell(proposal, outcome)`: what a proposal scored (`outcome` is a dict of metrics, None if it failed),
  - `core_state()` / `set_core_state(state)`: the core's own state (population, weights, study, ...).

The base turns proposals into trial configs ``{"genome", "sample", "fingerprint"}`` (`suggest(trial_id)`)
and dedupes by fingerprint, confirmed by genome equality (`_key`: a fingerprint hit counts only when the
genomes are equal): a genome already evaluated in this run is never suggested again; its recorded outcome
is told to the core instead (and counted in `duplicates_avoided`). A proposal of a genome that is still
being evaluated waits, and is told the outcome when that trial completes (`on_trial_complete`). Failed
trials (errors, missing or non-finite metric) are recorded as failures and never retried. Any loop can
drive it (suggest, train, on_trial_complete; `get_state`/`set_state` or `save`/`restore` between).
"""
from __future__ import annotations

import copy
import math
import pickle
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.errors import NasError
from nas.genome import Genome
from nas.search.strategies import options as typed_options
from nas.spaces.base import SearchSpace
from nas.suggest import did_you_mean

FINISHED = "FINISHED"  # what `ask` and `suggest` return when the strategy has nothing more to try
EXTRA_METRICS = ("val_accuracy", "params", "flops")  # recorded with every outcome when reported
MINIMIZED = ("params", "flops", "epoch_time")  # default direction of these objectives (others: maximized)


class StrategyError(NasError, ValueError):
    """A strategy name or option is invalid."""


@dataclass
class Proposal:
    """One sample a core asked for, with whatever the core needs back at tell time (`token`)."""

    sample: dict[str, Any]
    token: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def _kind_of(default: Any) -> str:
    """The kind of an option judged by its default (for strategies that declare none in OPTION_HELP)."""
    if default is None:
        return "int or list"  # computed from the search unless given
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list)):
        if isinstance(default, types):
            return kind
    return "any"


def check_option(strategy: str, key: str, value: Any, default: Any, kind: str | None = None) -> None:
    """An option's type and range (the strategy's own checks come after), by its declared `kind` (OPTION_HELP:
    "int", "float", "str", "list", "bool" or alternatives joined by " or "), else judged by its default: a
    number takes a finite, non-negative number (an integer for "int"); text and lists the same kind; an
    option whose default is None (computed from the search) takes None, or for "int" a positive integer."""
    if value is None and default is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    positive = default is None  # a given value replaces a computed one: at least 1
    checks = {
        "int": (lambda: number and isinstance(value, int) and value >= (1 if positive else 0),
                "a positive whole number" if positive else "a whole number >= 0"),
        "float": (lambda: number and math.isfinite(value) and value >= 0, "a finite number >= 0"),
        "str": (lambda: isinstance(value, str), "a name"),
        "list": (lambda: isinstance(value, list), "a list, e.g. [1.0, 1.1]"),
        "bool": (lambda: isinstance(value, bool), "true or false"),
    }
    alternatives = [k.strip() for k in (kind or _kind_of(default)).split(" or ")]
    known = [checks[k] for k in alternatives if k in checks]
    if len(known) < len(alternatives) or any(ok() for ok, _ in known):  # a kind we cannot check: the strategy's
        return
    expected = " or ".join(description for _, description in known)
    raise StrategyError(f"strategy {strategy!r} option {key}: expected {expected}, got {value!r}")


class SpaceSearcher:
    """Base of all strategies. Subclasses set `name`, their options and the core methods.

    Options are one frozen dataclass `Options` whose fields are made with
    `nas.search.strategies.options.option` (default, type, range, help in one place); `OPTIONS`
    (option -> default) and `OPTION_HELP` (option -> (type, meaning)) are derived from it. A strategy
    of a plug-in may instead set those two dicts itself (checked by `check_option`)."""

    name = "base"
    Options: type | None = None
    OPTIONS: dict[str, Any] = {}
    # option -> (type, meaning), what `nas search --strategy S --help-options` shows beside OPTIONS' defaults
    OPTION_HELP: dict[str, tuple[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("Options") is not None:
            cls.OPTIONS = typed_options.defaults(cls.Options)
            cls.OPTION_HELP = typed_options.help_table(cls.Options)
    max_draws = 200  # proposals per suggest before giving up (all duplicates: the space looks exhausted)

    def __init__(self, space: SearchSpace, *, seed: int, metric: str = "val_accuracy", mode: str = "max",
                 max_trials: int, options: Mapping[str, Any] | None = None):
        if mode not in ("min", "max"):
            raise StrategyError(f"mode must be 'min' or 'max', got {mode!r}")
        if not isinstance(max_trials, int) or max_trials < 1:
            raise StrategyError(f"max_trials must be a positive integer, got {max_trials!r}")
        self.metric, self.mode = metric, mode
        self.space = space
        self.seed = seed
        self.max_trials = max_trials
        self.options = self.resolve_options(options or {})
        self.rng = random.Random(seed)
        # Genomes are keyed by fingerprint; should two different genomes share one, the second gets "#1", ...
        self.results: dict[str, dict[str, float] | None] = {}  # key -> outcome (None: failed)
        self.pending: dict[str, tuple[Proposal, str]] = {}  # trial id -> (proposal, key)
        self.waiting: dict[str, list[Proposal]] = {}  # key in flight -> duplicate proposals
        self.seen: dict[str, list[dict[str, Any]]] = {}  # fingerprint -> the distinct genomes (dict form) having it
        self._seen_genomes: dict[str, list[Genome]] = {}  # the same genomes, built (a cache, not saved)
        self.suggested = 0
        self.duplicates_avoided = 0
        self.invalid_proposals = 0
        self.warm: list[dict[str, Any]] = []  # warm-start samples, best first (`warm_start`)
        self.setup()

    # ----- the core (per strategy) -----
    def setup(self) -> None:
        """Create the core's state from `self.options` (called once, at the end of __init__)."""

    def ask(self) -> Proposal | None | str:
        raise NotImplementedError

    def tell(self, proposal: Proposal, outcome: dict[str, float] | None) -> None:
        raise NotImplementedError

    def core_state(self) -> dict[str, Any]:
        return {}

    def set_core_state(self, state: dict[str, Any]) -> None:
        pass

    # ----- helpers for cores -----
    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            allowed = ", ".join(sorted(cls.OPTIONS)) or "none"
            raise StrategyError(f"strategy {cls.name!r} has no option {unknown[0]!r} (allowed: {allowed})"
                                + did_you_mean(unknown[0], cls.OPTIONS))
        for key, value in options.items():
            if cls.Options is not None and key in typed_options.fields_of(cls.Options):
                problem = typed_options.check(cls.name, cls.Options, key, value)
                if problem:
                    raise StrategyError(f"strategy {cls.name!r} option {key}: {problem}")
            else:
                check_option(cls.name, key, value, cls.OPTIONS[key], cls.OPTION_HELP.get(key, (None,))[0])
        return {**cls.OPTIONS, **options}

    def score(self, outcome: Mapping[str, float] | None) -> float | None:
        """The outcome's metric, signed so that larger is better (None for a failure)."""
        if outcome is None or self.metric not in outcome:
            return None
        value = outcome[self.metric]
        return value if self.mode == "max" else -value

    def subject(self, space: str) -> str:
        """What the search's start line says it searches, after the strategy's name: "over <space>"."""
        return f"over {space}"

    def objectives(self) -> list[str]:
        """The metrics an outcome must have to count as a success (one unless multi-objective)."""
        return [self.metric]

    def warm_start(self, samples: list[dict[str, Any]]) -> None:
        """Samples to propose first, best first (e.g. the best of many random samples by a zero-cost proxy,
        `nas.evaluate.warmup`): each proposal the core marks ``origin: random`` (evolution's initial population,
        PNAS's random warm-up) takes the next of them instead of its random draw."""
        self.warm = [copy.deepcopy(dict(sample)) for sample in samples]

    # ----- trials: what a loop (or the Ray Tune adapter) calls -----
    def suggest(self, trial_id: str) -> dict[str, Any] | None | str:
        if trial_id in self.pending:
            proposal, key = self.pending[trial_id]
            return self._config(proposal)
        if self.suggested >= self.max_trials:
            return FINISHED
        for _ in range(self.max_draws):
            proposal = self.ask()
            if proposal is None or proposal == FINISHED:
                return proposal
            if self.warm and proposal.meta.get("origin") == "random":
                proposal.sample, proposal.meta["origin"] = self.warm.pop(0), "warmup"
            try:
                key = self._key(self.space.realize(proposal.sample))
                proposal.meta.setdefault("fingerprint", key.split("#")[0])
            except NasError:
                self.invalid_proposals += 1
                self.tell(proposal, None)
                continue
            if key in self.results:
                self.duplicates_avoided += 1
                self.tell(proposal, self.results[key])
                continue
            if any(fp == key for _, fp in self.pending.values()):
                self.duplicates_avoided += 1
                self.waiting.setdefault(key, []).append(proposal)
                continue
            self.pending[trial_id] = (proposal, key)
            self.suggested += 1
            proposal.meta.setdefault("trial", self.suggested)  # the trial's number (Tune's counter: the screen's)
            return self._config(proposal)
        return None if self.pending else FINISHED

    def _key(self, genome: Genome) -> str:
        """`genome`'s key in `results`, `pending` and `waiting`: its fingerprint, confirmed with `==` against
        the genomes seen with that fingerprint; a different genome sharing it gets ``fingerprint#k``."""
        fingerprint = genome.fingerprint()
        known = self.seen.setdefault(fingerprint, [])
        built = self._seen_genomes.setdefault(fingerprint, [])
        built.extend(Genome.from_dict(spec) for spec in known[len(built):])  # after a restore
        for k, other in enumerate(built):
            if other == genome:
                return fingerprint if k == 0 else f"{fingerprint}#{k}"
        known.append(genome.to_dict())
        built.append(genome)
        return fingerprint if len(built) == 1 else f"{fingerprint}#{len(built) - 1}"

    def _config(self, proposal: Proposal) -> dict[str, Any]:
        genome = self.space.realize(proposal.sample)
        return {"genome": genome.to_dict(), "sample": copy.deepcopy(proposal.sample), "fingerprint": genome.fingerprint()}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        entry = self.pending.pop(trial_id, None)
        if entry is None:
            return  # not ours (or already completed)
        proposal, key = entry
        outcome = None if error else self.outcome(result)
        self.results[key] = outcome
        self.tell(proposal, outcome)
        for waiter in self.waiting.pop(key, []):
            self.tell(waiter, outcome)

    def outcome(self, result: Mapping[str, Any] | None) -> dict[str, float] | None:
        """The metrics to remember of a trial's last result; None when an objective is missing or not finite."""
        if not result:
            return None
        kept = {}
        for name in dict.fromkeys([*self.objectives(), *EXTRA_METRICS]):
            value = result.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                kept[name] = float(value)
        if any(name not in kept for name in self.objectives()):
            return None
        return kept

    # ----- state -----
    def get_state(self) -> dict[str, Any]:
        return copy.deepcopy({
            "strategy": self.name,
            "choices": [choice.name for choice in self.space.choices],
            "metric": self.metric,
            "mode": self.mode,
            "seed": self.seed,
            "max_trials": self.max_trials,
            "options": self.options,
            "rng": self.rng.getstate(),
            "results": self.results,
            "pending": self.pending,
            "waiting": self.waiting,
            "seen": self.seen,
            "suggested": self.suggested,
            "duplicates_avoided": self.duplicates_avoided,
            "invalid_proposals": self.invalid_proposals,
            "warm": self.warm,
            "core": self.core_state(),
        })

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != self.name:
            raise StrategyError(f"cannot restore a {state.get('strategy')!r} searcher's state into {self.name!r}")
        if state["choices"] != [choice.name for choice in self.space.choices]:
            raise StrategyError(f"the saved searcher state belongs to another search space than {self.space.name!r}")
        state = copy.deepcopy(state)
        self.metric, self.mode = state["metric"], state["mode"]
        self.seed, self.max_trials, self.options = state["seed"], state["max_trials"], state["options"]
        self.rng.setstate(state["rng"])
        self.results, self.pending, self.waiting = state["results"], state["pending"], state["waiting"]
        self.seen, self._seen_genomes = state.get("seen", {}), {}
        self.suggested = state["suggested"]
        self.duplicates_avoided = state["duplicates_avoided"]
        self.invalid_proposals = state["invalid_proposals"]
        self.warm = state.get("warm", [])
        self.set_core_state(state["core"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(space={self.space.name!r}, suggested={self.suggested}, "
                f"evaluated={len(self.results)}, duplicates_avoided={self.duplicates_avoided})")
