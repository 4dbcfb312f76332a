"""The genome: a whole network as plain, immutable, hashable, validated data.

A genome has an input (channels, size), a stem, stages of repeated cells, a head, and
optionally named explicit cell graphs under ``cells``. The classifier (a linear layer to
``num_classes``) is implied after the head. See `nas.cell` for the cell format.

    name: resnet18
    input: {channels: 3, size: 224}
    stem:
      - {op: conv, out: 64, kernel: 7, stride: 2}
      - {op: maxpool, kernel: 3, stride: 2, padding: 1}
    stages:
      - {cell: basic, out: 64, repeats: 2}
      - {cell: basic, out: 128, repeats: 2, stride: 2}
    head:
      - {op: global_avgpool}

A cell with several input ports (see `nas.cell`) says in its stage where each port reads:
``reads: [2, 1]`` counts back over the outputs of earlier cells (1: the previous cell's output,
2: the one before), the stem's output counting as one; counting back past the stem reads the
stem, so the first cells of a network read the stem twice, as in DARTS. Default ``[1]``.

Explicit cells may use the tokens ``"@in"``, ``"@out"`` and ``"@stride"`` as parameter
values; they stand for the cell's input channels, the stage's ``out`` and the cell's stride.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from nas import cell as cells
from nas.errors import GenomeError
from nas.frozen import FrozenDict, freeze, thaw

GENOME_FIELDS = ("name", "input", "num_classes", "stem", "stages", "head", "cells")
STAGE_FIELDS = ("cell", "out", "repeats", "stride", "params", "reads")


def _positive_int(value: Any, where: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise GenomeError(where, f"must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class InputSpec:
    channels: int = 3
    size: tuple[int, int] = (224, 224)

    @staticmethod
    def from_dict(spec: Any) -> "InputSpec":
        if not isinstance(spec, Mapping):
            raise GenomeError("input", f"must be a mapping with channels and size, got {spec!r}")
        unknown = sorted(set(spec) - {"channels", "size"})
        if unknown:
            raise GenomeError("input", f"unknown field {unknown[0]!r} (allowed: channels, size)")
        channels = _positive_int(spec.get("channels", 3), "input.channels")
        size = spec.get("size", 224)
        if isinstance(size, int):
            size = (size, size)
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise GenomeError("input.size", f"must be an integer or [height, width], got {size!r}")
        return InputSpec(channels, tuple(_positive_int(s, "input.size") for s in size))

    def to_dict(self) -> dict[str, Any]:
        height, width = self.size
        return {"channels": self.channels, "size": height if height == width else [height, width]}


@dataclass(frozen=True)
class Stage:
    """`repeats` cells of kind `cell`; the first has stride `stride`, all output `out` channels.

    `reads` gives, for each input port of the cell, how many cell outputs back it reads (1: previous)."""

    cell: str
    out: int | None = None
    repeats: int = 1
    stride: int = 1
    params: FrozenDict = field(default_factory=FrozenDict)
    reads: tuple[int, ...] = (1,)

    @staticmethod
    def from_dict(spec: Any, where: str) -> "Stage":
        if not isinstance(spec, Mapping):
            raise GenomeError(where, f"a stage is a mapping with a 'cell', got {spec!r}")
        unknown = sorted(set(spec) - set(STAGE_FIELDS))
        if unknown:
            raise GenomeError(where, f"unknown stage field {unknown[0]!r} (allowed: {', '.join(STAGE_FIELDS)})")
        if not isinstance(spec.get("cell"), str):
            raise GenomeError(f"{where}.cell", f"must name a cell template or a cell under 'cells', got {spec.get('cell')!r}")
        out = spec.get("out")
        if out is not None:
            _positive_int(out, f"{where}.out")
        params = spec.get("params", {})
        if not isinstance(params, Mapping):
            raise GenomeError(f"{where}.params", f"must be a mapping, got {params!r}")
        return Stage(
            cell=spec["cell"],
            out=out,
            repeats=_positive_int(spec.get("repeats", 1), f"{where}.repeats"),
            stride=_positive_int(spec.get("stride", 1), f"{where}.stride"),
            params=freeze(params),
            reads=_reads(spec.get("reads", [1]), f"{where}.reads"),
        )

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"cell": self.cell}
        if self.out is not None:
            spec["out"] = self.out
        if self.repeats != 1:
            spec["repeats"] = self.repeats
        if self.stride != 1:
            spec["stride"] = self.stride
        if self.params:
            spec["params"] = thaw(self.params)
        if self.reads != (1,):
            spec["reads"] = list(self.reads)
        return spec


def _reads(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise GenomeError(where, f"must be a non-empty list of integers >= 1 (1: the previous cell), got {value!r}")
    return tuple(_positive_int(v, f"{where}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True, eq=False)
class Genome:
    """A network as data. Build it with `nas.build`; compare and hash it by architecture (not name)."""

    name: str
    stem: nx.DiGraph
    stages: tuple[Stage, ...]
    head: nx.DiGraph
    input: InputSpec = InputSpec()
    num_classes: int = 1000
    cells: FrozenDict = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        from nas.expand import expand  # validation runs the expansion, which needs the op registries

        if not self.stages:
            raise GenomeError("stages", "a genome needs at least one stage")
        for name in ("stem", "head"):
            object.__setattr__(self, name, nx.freeze(getattr(self, name)))
        expand(self)

    # ----- dict / YAML / JSON -----
    @staticmethod
    def from_dict(spec: Any) -> "Genome":
        if not isinstance(spec, Mapping):
            raise GenomeError("", f"a genome is a mapping with {', '.join(GENOME_FIELDS)}; got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(GENOME_FIELDS))
        if unknown:
            raise GenomeError(unknown[0], f"unknown genome field (allowed: {', '.join(GENOME_FIELDS)})")
        for required in ("name", "stem", "stages", "head"):
            if required not in spec:
                raise GenomeError(required, "missing")
        if not isinstance(spec["name"], str) or not spec["name"]:
            raise GenomeError("name", f"must be a non-empty string, got {spec['name']!r}")
        stages = spec["stages"]
        if not isinstance(stages, list) or not stages:
            raise GenomeError("stages", "must be a non-empty list of stages")
        named = spec.get("cells", {}) or {}
        if not isinstance(named, Mapping):
            raise GenomeError("cells", "must be a mapping of cell name -> cell")
        return Genome(
            name=spec["name"],
            input=InputSpec.from_dict(spec.get("input", {})),
            num_classes=_positive_int(spec.get("num_classes", 1000), "num_classes"),
            stem=cells.from_dict(spec["stem"], "stem"),
            stages=tuple(Stage.from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)),
            head=cells.from_dict(spec["head"], "head"),
            cells=FrozenDict((str(k), cells.from_dict(v, f"cells.{k}")) for k, v in named.items()),
        )

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "input": self.input.to_dict(),
            "num_classes": self.num_classes,
            "stem": cells.to_dict(self.stem),
            "stages": [stage.to_dict() for stage in self.stages],
            "head": cells.to_dict(self.head),
        }
        if self.cells:
            spec["cells"] = {name: cells.to_dict(graph) for name, graph in self.cells.items()}
        return spec

    @staticmethod
    def from_yaml(text: str) -> "Genome":
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise GenomeError("", f"malformed YAML{at}: {getattr(error, 'problem', error)}") from None
        return Genome.from_dict(spec)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=120)

    @staticmethod
    def from_json(text: str) -> "Genome":
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise GenomeError("", f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
        return Genome.from_dict(spec)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @staticmethod
    def load(path: str | Path) -> "Genome":
        """Read a genome from a .yaml/.yml or .json file."""
        path = Path(path)
        if not path.is_file():
            raise GenomeError("", f"no such genome file: {path}")
        text = path.read_text()
        try:
            return Genome.from_json(text) if path.suffix == ".json" else Genome.from_yaml(text)
        except GenomeError as error:
            raise GenomeError(f"{path}" + (f": {error.where}" if error.where else ""), error.message) from None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() if path.suffix == ".json" else self.to_yaml())
        return path

    # ----- identity -----
    def fingerprint(self) -> str:
        """A stable hex digest of the architecture: equal (or isomorphic) genomes share it; the name is ignored."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            spec = self.to_dict()
            del spec["name"]
            spec["stem"] = cells.fingerprint(self.stem)
            spec["head"] = cells.fingerprint(self.head)
            spec["cells"] = {name: cells.fingerprint(graph) for name, graph in self.cells.items()}
            text = json.dumps(spec, sort_keys=True, default=str)
            cached = hashlib.sha256(text.encode()).hexdigest()
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def __hash__(self) -> int:
        return int(self.fingerprint()[:16], 16)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Genome):
            return NotImplemented
        if self.fingerprint() != other.fingerprint():
            return False
        same_cells = self.cells.keys() == other.cells.keys() and all(
            cells.isomorphic(graph, other.cells[name]) for name, graph in self.cells.items()
        )
        return same_cells and cells.isomorphic(self.stem, other.stem) and cells.isomorphic(self.head, other.head)

    def __repr__(self) -> str:
        return f"Genome(name={self.name!r}, stages={len(self.stages)}, fingerprint={self.fingerprint()[:12]})"

    def replace(self, **changes: Any) -> "Genome":
        """A new genome with some fields changed (the original is untouched)."""
        return replace(self, **changes)
