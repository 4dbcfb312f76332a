"""The search-space interface: named finite choices (some conditional), sampled and mutated into genomes.

A sample is a plain JSON-serialisable dict ``{choice name: value}`` holding exactly the choices
that are active for it. A space turns a sample into a `Genome` with `realize`; strategies only
see the choices, so every strategy works with every space.
"""
from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.errors import NasError
from nas.genome import Genome


class SpaceError(NasError, ValueError):
    """A search-space file or a sample is invalid."""


def plain(value: Any) -> Any:
    """`value` as JSON would give it back (tuples become lists), so options compare like samples."""
    return json.loads(json.dumps(value))


@dataclass(frozen=True)
class Choice:
    """One decision: pick one of `options`. Active only when every earlier choice named in `when`
    is active and has one of the listed values."""

    name: str
    options: tuple[Any, ...]
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.options:
            raise SpaceError(f"choice {self.name!r} has no options")
        options = tuple(plain(o) for o in self.options)
        if len({json.dumps(o, sort_keys=True) for o in options}) != len(options):
            raise SpaceError(f"choice {self.name!r} lists an option twice: {list(options)}")
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "when", {k: tuple(plain(v) for v in vs) for k, vs in self.when.items()})

    def is_active(self, sample: Mapping[str, Any]) -> bool:
        return all(name in sample and sample[name] in allowed for name, allowed in self.when.items())

    def index(self, value: Any) -> int:
        """The position of `value` among the options (a SpaceError if it is not one)."""
        for i, option in enumerate(self.options):
            if option == value:
                return i
        raise SpaceError(f"choice {self.name!r}: {value!r} is not an option (options: {list(self.options)})")


def sample_key(sample: Mapping[str, Any]) -> str:
    return json.dumps(sample, sort_keys=True)


class SearchSpace(ABC):
    """Choices plus the map from a sample to a genome. Subclasses define `choices` and `genome_of`."""

    max_tries = 200  # draws before sample/mutate give up on finding a valid genome
    cache_size = 4096  # realized genomes kept in memory

    def __init__(self, name: str, choices: Sequence[Choice], *, input_channels: int = 3, input_size: int = 32,
                 num_classes: int = 10):
        self.name = name
        self.choices = list(choices)
        self.input_channels = input_channels  # the realized genomes' input and classes (the data set's)
        self.input_size = input_size
        self.num_classes = num_classes
        names = [c.name for c in self.choices]
        if len(set(names)) != len(names):
            raise SpaceError(f"space {name!r}: duplicate choice names")
        seen: set[str] = set()
        for choice in self.choices:
            unknown = [n for n in choice.when if n not in seen]
            if unknown:
                raise SpaceError(f"choice {choice.name!r} depends on {unknown[0]!r}, which is not an earlier choice")
            seen.add(choice.name)
        self._genomes: dict[str, Genome] = {}  # sample key -> genome, bounded by cache_size

    # ----- to be defined by each space -----
    @abstractmethod
    def genome_of(self, sample: Mapping[str, Any]) -> Genome:
        """The genome of a (structurally checked) sample; may raise GenomeError."""

    # ----- choices -----
    def active_choices(self, sample: Mapping[str, Any]) -> list[Choice]:
        return [c for c in self.choices if c.is_active(sample)]

    def complete(self, partial: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """Walk the choices in order: keep the values of `partial` that are still active, draw the rest."""
        sample: dict[str, Any] = {}
        for choice in self.choices:
            if not choice.is_active(sample):
                continue
            sample[choice.name] = partial[choice.name] if choice.name in partial else rng.choice(choice.options)
        return sample

    def check_choices(self, sample: Mapping[str, Any]) -> None:
        """Structure only: exactly the active choices are present, each with one of its options."""
        if not isinstance(sample, Mapping):
            raise SpaceError(f"a sample is a mapping of choice name -> value, got {type(sample).__name__}")
        expected = [c.name for c in self.active_choices(sample)]
        missing = [n for n in expected if n not in sample]
        extra = sorted(set(sample) - set(expected))
        if missing:
            raise SpaceError(f"space {self.name!r}: sample lacks choice {missing[0]!r}")
        if extra:
            raise SpaceError(f"space {self.name!r}: sample has {extra[0]!r}, which is not an active choice")
        for choice in self.active_choices(sample):
            choice.index(sample[choice.name])

    # ----- the contract -----
    def sample(self, rng: random.Random) -> dict[str, Any]:
        """A random valid sample: every active choice uniformly at random (redrawn until the genome is valid)."""
        error: Exception | None = None
        for _ in range(self.max_tries):
            candidate = self.complete({}, rng)
            try:
                self.realize(candidate)
                return candidate
            except NasError as failure:
                error = failure
        raise SpaceError(f"space {self.name!r}: no valid sample in {self.max_tries} draws; last error: {error}")

    def mutate(self, sample: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """A valid copy of `sample` with exactly one active choice set to another of its options.

        Choices that the change activates are drawn at random; those it deactivates are dropped.
        """
        self.check_choices(sample)
        mutable = [c for c in self.active_choices(sample) if len(c.options) > 1]
        if not mutable:
            raise SpaceError(f"space {self.name!r}: the sample has no choice with a second option")
        error: Exception | None = None
        for _ in range(self.max_tries):
            choice = rng.choice(mutable)
            value = rng.choice([o for o in choice.options if o != sample[choice.name]])
            child = self.complete({**sample, choice.name: value}, rng)
            try:
                self.realize(child)
                return child
            except NasError as failure:
                error = failure
        raise SpaceError(f"space {self.name!r}: no valid mutation in {self.max_tries} tries; last error: {error}")

    def realize(self, sample: Mapping[str, Any]) -> Genome:
        """The genome of `sample` (cached: genomes are immutable)."""
        key = sample_key(sample)
        genome = self._genomes.get(key)
        if genome is None:
            self.check_choices(sample)
            genome = self.genome_of(sample)
            if len(self._genomes) >= self.cache_size:
                del self._genomes[next(iter(self._genomes))]
            self._genomes[key] = genome
        return genome

    def validate(self, sample: Mapping[str, Any]) -> None:
        """Raise a NasError (SpaceError or GenomeError) unless `sample` realizes a valid genome."""
        self.realize(sample)

    def genome_name(self, sample: Mapping[str, Any]) -> str:
        return f"{self.name}-{hashlib.sha1(sample_key(sample).encode()).hexdigest()[:10]}"

    def size(self) -> int | None:
        """The number of samples when no choice is conditional (an upper bound of distinct genomes), else None."""
        if any(c.when for c in self.choices):
            return None
        total = 1
        for choice in self.choices:
            total *= len(choice.options)
        return total

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_genomes"] = {}  # a cache: rebuilt on demand, not worth pickling
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, choices={len(self.choices)})"
