"""Paths over a genome's parts, for choosing what to freeze: ``stem,stages[0:3]``, ``classifier``.

    stem                the stem
    stages              every stage
    stages[i]           stage i (from 0; negative counts from the end, as in Python)
    stages[i:j]         stages i to j - 1 (either end may be left out: stages[2:], stages[:-1])
    stages[i][k]        cell k of stage i (also stages[i][k:l])
    head                the layers after the last stage (for most networks a pooling, without weights)
    classifier          the final linear layer (absent in a genome with ``classifier: none``)

A list is comma-separated. A path stands for the parameters of the compiled network under the
module it names: `nas.build` names them ``stem.*``, ``stages.<i>.<k>.*``, ``head.*`` and
``classifier.*``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from nas.errors import NasError

PARTS = ("stem", "stages", "head", "classifier")
_INDEX = r"\[\s*(-?\d+)?\s*(:)?\s*(-?\d+)?\s*\]"
_PATH = re.compile(rf"^(stem|stages|head|classifier)((?:{_INDEX}){{0,2}})$")
_ONE_INDEX = re.compile(_INDEX)


class PathError(NasError):
    """A part path that is malformed or names nothing in this network."""


@dataclass(frozen=True)
class PartPath:
    """One path: a part, and for stages an optional stage selection and cell selection."""

    text: str
    part: str
    stages: slice | int | None = None
    cells: slice | int | None = None

    def prefixes(self, model: nn.Module, option: str) -> list[str]:
        """Module names in `model` (a compiled Network) that this path covers."""
        if self.part != "stages":
            return [self.part]
        stages = _pick(len(model.stages), self.stages, f"{option} {self.text}", "stages")
        if self.cells is None:
            return [f"stages.{i}" for i in stages]
        (i,) = stages
        cells = _pick(len(model.stages[i]), self.cells, f"{option} {self.text}", f"cells in stages[{i}]")
        return [f"stages.{i}.{k}" for k in cells]


def parse_paths(text: str | Sequence[str], option: str = "--freeze") -> tuple[PartPath, ...]:
    """`text` (comma-separated, or a sequence of paths) parsed; one line naming the first bad path."""
    items = text.split(",") if isinstance(text, str) else list(text)
    paths = []
    for item in (i.strip() for i in items):
        compact = re.sub(r"\s+", "", item)
        match = _PATH.match(compact)
        if not match:
            raise PathError(f"{option} {item or repr(item)}: expected a part of the genome: stem, stages, "
                            f"stages[i], stages[i:j], stages[i][k], head or classifier (comma-separated)")
        part = match.group(1)
        try:
            indices = [_selection(m) for m in _ONE_INDEX.finditer(match.group(2))]
        except PathError as error:
            raise PathError(f"{option} {item}: {error}") from None
        if indices and part != "stages":
            raise PathError(f"{option} {item}: only stages are indexed (stages[i], stages[i][k])")
        if len(indices) == 2 and isinstance(indices[0], slice):
            raise PathError(f"{option} {item}: cells are chosen in one stage: stages[i][k], not a range of stages")
        paths.append(PartPath(compact, part, *indices))
    if not paths:
        raise PathError(f"{option}: no parts given")
    return tuple(paths)


def _selection(match: re.Match) -> slice | int:
    start, colon, stop = match.groups()
    if colon:
        return slice(int(start) if start else None, int(stop) if stop else None)
    if start is None or stop is not None:
        raise PathError(f"bad index {match.group(0)}")
    return int(start)


def _pick(count: int, selection: slice | int | None, where: str, what: str) -> list[int]:
    if selection is None:
        return list(range(count))
    if isinstance(selection, int):
        if not -count <= selection < count:
            raise PathError(f"{where}: out of range: there are {count} {what} (0..{count - 1})")
        return [selection % count]
    chosen = list(range(count))[selection]
    if not chosen:
        raise PathError(f"{where}: selects none of the {count} {what}")
    return chosen


def covered(name: str, prefixes: Iterable[str]) -> bool:
    """Whether the parameter or module `name` lies under one of `prefixes`."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def select(model: nn.Module, paths: Sequence[PartPath], option: str = "--freeze",
           allow_empty: bool = False) -> dict[str, list[str]]:
    """Parameter names of `model` under each path (in the network's order). A path whose part holds no
    weights is an error (it would freeze nothing) unless `allow_empty`."""
    names = [n for n, _ in model.named_parameters()]
    chosen = {}
    for path in paths:
        prefixes = path.prefixes(model, option)
        params = [n for n in names if covered(n, prefixes)]
        if not params and not allow_empty:
            hint = (" (this genome has `classifier: none`: its head gives the logits)" if path.part == "classifier"
                    else " (its layers have no weights)")
            raise PathError(f"{option} {path.text}: names no weights{hint}")
        chosen[path.text] = params
    return chosen
