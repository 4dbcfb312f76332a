"""Bounds on what a genome may ask for, checked before any work is done (a leaf module).

A genome file is user input: it may be an alias-expansion bomb ("billion laughs"), absurdly
nested, or ask for 10**12 repeats or 10**9 channels. Each of these must end in one line naming
the field within a second or two, never in a hang or gigabytes of memory. The bounds are far
above any published network (the largest written channel count is a few thousand, the deepest
stage a few hundred cells, the largest cell a few hundred nodes).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nas.errors import GenomeError

MAX_TEXT = 1_000_000  # characters of a genome file (the largest baseline has about 2,000)
MAX_DEPTH = 40  # nesting of mappings and lists in a genome
MAX_VALUES = 200_000  # mappings, lists and scalars in a genome, aliases counted as often as they are used
MAX_INT = 1 << 20  # any integer written in a genome (channels, sizes, kernels, layers, ...)
MAX_REPEATS = 1_000  # cells in one stage
MAX_CELL_NODES = 1_000  # nodes in one cell graph
MAX_CELL_SIZE = 20_000  # nodes plus edges of one cell graph (a dense block of 100 layers has about 5,400)
MAX_NETWORK_SIZE = 50_000  # nodes plus edges of all the cells of an expanded network (DenseNet-169: about 6,000)

_SCALARS = (str, int, float, bool, type(None))


def check_data(value: Any, where: str = "") -> None:
    """Raise a GenomeError naming the field if `value` is not plain, finite, bounded data.

    Walks the value as written (aliases followed, so an expansion bomb counts its expansion) and
    stops at the first bound passed: the work done is at most `MAX_VALUES` steps.
    """
    budget = [MAX_VALUES]
    _walk(value, where, 0, budget)


def _walk(value: Any, where: str, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise GenomeError(where, f"the genome holds more than {MAX_VALUES:,} values (YAML aliases expanding?)")
    if depth > MAX_DEPTH:
        shown = where if len(where) <= 60 else where[:60] + "..."
        raise GenomeError(shown, f"nested more than {MAX_DEPTH} levels deep (a self-referencing YAML alias?)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise GenomeError(where, f"keys must be names, got {key!r}")
            _walk(item, f"{where}.{key}" if where else str(key), depth + 1, budget)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _walk(item, f"{where}[{i}]", depth + 1, budget)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise GenomeError(where, f"{value} is out of range (integers in a genome are at most {MAX_INT:,})")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise GenomeError(where, f"must be a finite number, got {value!r}")
    elif not isinstance(value, _SCALARS):
        raise GenomeError(where, f"must be plain data (a mapping, list, string, number, boolean or null), "
                                 f"got {type(value).__name__}")
