"""The genome: a whole network as plain, immutable, hashable, validated data.

A genome has an input (channels, size), a stem, stages of repeated cells, a head, and
optionally named explicit cell graphs under ``cells``. The classifier (a linear layer to
``num_classes``) is implied after the head, unless ``classifier: none`` says that the head gives
the logits itself (its nodes may use the token ``"@classes"``). See `nas.cellgraph` for the cell format.

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

A cell with several input ports (see `nas.cellgraph`) says in its stage where each port reads:
``reads: [2, 1]`` counts back over the outputs of earlier cells (1: the previous cell's output,
2: the one before), the stem's output counting as one; counting back past the stem reads the
stem, so the first cells of a network read the stem twice, as in DARTS. Default ``[1]``.

Explicit cells may use the tokens ``"@in"``, ``"@out"`` and ``"@stride"`` as parameter
values; they stand for the cell's input channels, the stage's ``out`` and the cell's stride.

Layers: this module is data. It checks a genome's structure itself (fields, types, the bounds of
`nas.limits`, cell graphs) and imports nothing from the registries or shape inference; on
construction it hands the genome to `nas.validation.validate` (imported on first use), which checks
ops, parameters and shapes and returns the genome's identity (`nas.identity`). So a Genome that
exists is valid, and equality and the fingerprint compare the resolved, canonical form.
A Genome is immutable all the way down: frozen dataclasses, FrozenDicts, and read-only graphs
whose node and edge attributes cannot be changed (`nas.cellgraph.freeze_graph`).

A stage's ``params`` give an explicit cell more tokens (``params: {pool: 32}`` -> ``"@pool"``),
and ``first`` overrides params for a stage's first cell. Values may be arithmetic written as data:
``{mul: ["@out", 4]}``, ``{div: ["@in", 2]}`` (floor), ``add``, ``sub``, ``max``, ``min``, ``int``
and ``{round: [value, 8]}`` (MobileNet's make_divisible), nested as needed (see `nas.expand`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from nas import cellgraph
from nas.errors import GenomeError
from nas.frozen import FrozenDict, freeze, thaw
from nas.limits import MAX_INT, MAX_REPEATS, MAX_TEXT, check_data

# libyaml's safe loader when PyYAML has it: 7x faster on large files, and it bounds nesting (depth 1000)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
GENOME_FIELDS = ("name", "input", "num_classes", "classifier", "stem", "stages", "head", "cells")
STAGE_FIELDS = ("cell", "out", "repeats", "stride", "params", "first", "reads", "aux")
# "linear": a Linear(head features, num_classes) follows the head; "none": the head itself gives the logits
CLASSIFIERS = ("linear", "none")


def _positive_int(value: Any, where: str, minimum: int = 1, maximum: int = MAX_INT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise GenomeError(where, f"must be an integer >= {minimum}, got {value!r}")
    if value > maximum:
        raise GenomeError(where, f"must be at most {maximum:,}, got {value:,}")
    return value


@dataclass(frozen=True)
class InputSpec:
    channels: int = 3
    size: tuple[int, int] = (224, 224)

    def __post_init__(self) -> None:
        _positive_int(self.channels, "input.channels")
        if not isinstance(self.size, (list, tuple)) or len(self.size) != 2:
            raise GenomeError("input.size", f"must be [height, width], got {self.size!r}")
        object.__setattr__(self, "size", tuple(_positive_int(s, "input.size") for s in self.size))

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

    `first` holds params that the stage's first cell takes instead of (or on top of) `params`.
    `reads` gives, for each input port of the cell, how many cell outputs back it reads (1: previous).
    `aux` marks where a training's auxiliary head reads (the output of the stage's last cell; at most one
    stage); the head exists only in training (`nas.train.regularizers`), never in the built network.
    """

    cell: str
    out: int | None = None
    repeats: int = 1
    stride: int = 1
    params: FrozenDict = field(default_factory=FrozenDict)
    first: FrozenDict = field(default_factory=FrozenDict)
    reads: tuple[int, ...] = (1,)
    aux: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.aux, bool):
            raise GenomeError("aux", f"must be true or false, got {self.aux!r}")
        if not isinstance(self.params, Mapping):
            raise GenomeError("params", f"must be a mapping, got {self.params!r}")
        if not isinstance(self.first, Mapping):
            raise GenomeError("first", f"must be a mapping, got {self.first!r}")
        check_data(self.params, "params")  # bounded before it is walked (a stage built in Python, not read from a file)
        check_data(self.first, "first")
        object.__setattr__(self, "params", freeze(self.params))  # a dict given in Python is frozen too
        object.__setattr__(self, "first", freeze(self.first))
        object.__setattr__(self, "reads", _reads(self.reads, "reads"))

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
        first = spec.get("first", {})
        if not isinstance(first, Mapping):
            raise GenomeError(f"{where}.first", f"must be a mapping of the first cell's params, got {first!r}")
        return Stage(
            cell=spec["cell"],
            out=out,
            repeats=_positive_int(spec.get("repeats", 1), f"{where}.repeats", maximum=MAX_REPEATS),
            stride=_positive_int(spec.get("stride", 1), f"{where}.stride"),
            params=freeze(params),
            first=freeze(first),
            reads=_reads(spec.get("reads", [1]), f"{where}.reads"),
            aux=_flag(spec.get("aux", False), f"{where}.aux"),
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
        if self.first:
            spec["first"] = thaw(self.first)
        if self.reads != (1,):
            spec["reads"] = list(self.reads)
        if self.aux:
            spec["aux"] = True
        return spec


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise GenomeError(where, f"must be true or false, got {value!r}")
    return value


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
    classifier: str = "linear"

    def __post_init__(self) -> None:
        self._check_structure()
        from nas.validation import validate  # deferred: torch; the layer above: registries, shapes (module docstring)

        object.__setattr__(self, "_identity", validate(self))

    def _check_structure(self) -> None:
        """Types and bounds of every field; graphs become read-only copies (the caller's stay theirs)."""
        if not isinstance(self.name, str) or not self.name:
            raise GenomeError("name", f"must be a non-empty string, got {self.name!r}")
        if not isinstance(self.input, InputSpec):
            raise GenomeError("input", f"must be an InputSpec, got {self.input!r}")
        _positive_int(self.num_classes, "num_classes")
        if not isinstance(self.stages, (tuple, list)) or not self.stages:
            raise GenomeError("stages", "a genome needs at least one stage")
        object.__setattr__(self, "stages", tuple(self.stages))
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, Stage):
                raise GenomeError(f"stages[{i}]", f"must be a Stage, got {type(stage).__name__}")
            _positive_int(stage.repeats, f"stages[{i}].repeats", maximum=MAX_REPEATS)
            _positive_int(stage.stride, f"stages[{i}].stride")
            if stage.out is not None:
                _positive_int(stage.out, f"stages[{i}].out")
        marked = [i for i, stage in enumerate(self.stages) if stage.aux]
        if len(marked) > 1:
            raise GenomeError(f"stages[{marked[1]}].aux", f"only one stage may carry the auxiliary head "
                                                          f"(stages[{marked[0]}] has it already)")
        if self.classifier not in CLASSIFIERS:
            raise GenomeError("classifier", f"must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}")
        for name in ("stem", "head"):
            graph = getattr(self, name)
            if not isinstance(graph, nx.DiGraph):
                raise GenomeError(name, f"must be a cell graph, got {type(graph).__name__}")
            cellgraph.validate_structure(graph, name)
            object.__setattr__(self, name, cellgraph.freeze_graph(graph))
        if not isinstance(self.cells, Mapping):
            raise GenomeError("cells", "must be a mapping of cell name -> cell graph")
        named = {}
        for key, graph in self.cells.items():
            if not isinstance(graph, nx.DiGraph):
                raise GenomeError(f"cells.{key}", f"must be a cell graph, got {type(graph).__name__}")
            cellgraph.validate_structure(graph, f"cells.{key}")
            named[str(key)] = cellgraph.freeze_graph(graph)
        object.__setattr__(self, "cells", FrozenDict(named))

    # ----- dict / YAML / JSON -----
    @staticmethod
    def from_dict(spec: Any) -> "Genome":
        check_data(spec)  # plain, finite, bounded data before anything walks it
        if not isinstance(spec, Mapping):
            raise GenomeError("", f"a genome is a mapping with {', '.join(GENOME_FIELDS)}; got "
                                  f"{'nothing' if spec is None else 'a ' + type(spec).__name__}")
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
            classifier=spec.get("classifier", "linear"),
            stem=cellgraph.from_dict(spec["stem"], "stem"),
            stages=tuple(Stage.from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)),
            head=cellgraph.from_dict(spec["head"], "head"),
            cells=FrozenDict((str(k), cellgraph.from_dict(v, f"cells.{k}")) for k, v in named.items()),
        )

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "input": self.input.to_dict(),
            "num_classes": self.num_classes,
            **({"classifier": self.classifier} if self.classifier != "linear" else {}),
            "stem": cellgraph.to_dict(self.stem),
            "stages": [stage.to_dict() for stage in self.stages],
            "head": cellgraph.to_dict(self.head),
        }
        if self.cells:
            spec["cells"] = {name: cellgraph.to_dict(graph) for name, graph in self.cells.items()}
        return spec

    @staticmethod
    def from_yaml(text: str) -> "Genome":
        _check_length(text)
        try:
            spec = yaml.load(text, Loader=_YAML_LOADER)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise GenomeError("", f"malformed YAML{at}: {getattr(error, 'problem', error)}") from None
        except RecursionError:
            raise GenomeError("", "malformed YAML: nested too deeply") from None
        except ValueError:  # an integer with more digits than Python converts
            raise GenomeError("", "malformed YAML: a number has too many digits") from None
        if spec is None:
            raise GenomeError("", "empty: no genome in it (a mapping with name, stem, stages, head, ...)")
        return Genome.from_dict(spec)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=120)

    @staticmethod
    def from_json(text: str) -> "Genome":
        _check_length(text)
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as error:
            raise GenomeError("", f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
        except RecursionError:
            raise GenomeError("", "malformed JSON: nested too deeply") from None
        except ValueError:  # an integer with more digits than Python converts
            raise GenomeError("", "malformed JSON: a number has too many digits") from None
        return Genome.from_dict(spec)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @staticmethod
    def load(path: str | Path) -> "Genome":
        """Read a genome from a .yaml/.yml or .json file."""
        path = Path(path)
        if path.is_dir():
            raise GenomeError("", f"{path}: is a folder, not a genome file")
        if not path.is_file():
            raise GenomeError("", f"no such genome file: {path}")
        if path.stat().st_size > 4 * MAX_TEXT:  # before reading: the text check below counts characters
            raise GenomeError(str(path), f"too large for a genome file ({path.stat().st_size:,} bytes)")
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
        """A stable hex digest of the architecture, from its canonical form (`nas.identity`): the same for
        genomes that differ only in names, node order or how defaults and numbers were written."""
        return self._identity.digest

    def __hash__(self) -> int:
        return hash(self._identity)

    def __eq__(self, other: object) -> bool:
        """Same architecture: equal canonical forms, confirmed graph by graph (isomorphic, concat order kept)."""
        if not isinstance(other, Genome):
            return NotImplemented
        return self is other or self._identity == other._identity

    def __repr__(self) -> str:
        identity = self.__dict__.get("_identity")  # absent while an invalid genome is being refused
        fingerprint = identity.digest[:12] if identity is not None else "unchecked"
        return f"Genome(name={self.name!r}, stages={len(self.stages)}, fingerprint={fingerprint})"

    def replace(self, **changes: Any) -> "Genome":
        """A new genome with some fields changed (the original is untouched)."""
        return replace(self, **changes)


def _check_length(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise GenomeError("", f"too large for a genome ({len(text):,} characters; at most {MAX_TEXT:,})")
