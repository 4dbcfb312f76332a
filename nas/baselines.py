"""Hand-designed networks as genomes: the files in ``baselines/`` and the ones derived from them.

    >>> from nas import baselines
    >>> baselines.get("resnet50").name
    'resnet50'
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from nas.errors import GenomeError
from nas.genome import Genome
from nas.resources import data_dir
from nas.scale_genome import EFFICIENTNET, efficientnet

# Baselines derived from a file rather than written out, name -> function of `get`.
DERIVED: dict[str, Callable[[Callable[[str], Genome]], Genome]] = {}


def _efficientnet(variant: str) -> Callable[[Callable[[str], Genome]], Genome]:
    return lambda get: efficientnet(get("efficientnet_b0"), variant)


# EfficientNet-B1..B7: B0 compound-scaled with the released coefficients (nas.scale_genome.EFFICIENTNET).
DERIVED.update({f"efficientnet_{variant}": _efficientnet(variant) for variant in EFFICIENTNET})


def _files() -> dict[str, object]:
    folder = data_dir("baselines")
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def names() -> list[str]:
    """Every baseline's name, sorted."""
    return sorted(set(_files()) | set(DERIVED))


@lru_cache(maxsize=None)
def get(name: str) -> Genome:
    """The baseline genome called `name`. Cached and shared: safe because a genome is immutable all the way
    down (fields, stages, parameters, graphs and their node attributes), so no caller can alter what the
    next one gets (tests/test_identity.py tries every way in)."""
    files = _files()
    if name in files:
        return Genome.load(files[name])
    if name in DERIVED:
        return DERIVED[name](get)
    raise GenomeError("", f"unknown baseline {name!r} (known: {', '.join(names())})")
