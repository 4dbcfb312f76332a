"""The supernet of a stage space (``kind: stages``): one set of weights per stage, paths run by slicing them.

`StageSupernet(space)` is derived from the space's own description (its stage slots, families and
choices, and the cell templates they name), never from code written per space, so every space file of
kind ``stages`` and every plug-in template gets one (as Once-for-All, Cai et al. 2020, and SPOS's
single-path training, Guo et al. 2020):

- Every stage slot's choices (``stage<k>.*``: family, width, repeats, the family's parameters such as
  kernel, expansion, SE ratio) are enumerated, and each combination expanded, for every input width the
  slot can receive, into its cells exactly as ``nas.build`` expands the genome's stages.
- A weight is named by where it sits, not by its shape: stage slot, family, the genome stage within the
  slot (a family with a ``before`` template has two), the cell's position in its stage, the cell graph's
  node name and the parameter's name in the node's module. Every path's weight of that name is a slice of
  one shared tensor holding the largest shape any option needs: the first channels (output, input:
  smaller widths and expansions), the centre of the largest kernel (smaller kernels), the first blocks of
  a stage (smaller depths: cell position r exists for paths with more than r repeats). A node that only
  some options have (an SE module, an expansion layer) holds one shared module that those paths use.
  The stem, the head (reading the last stage's widths) and the classifier are sliced the same way.
- A stage's family is a choice between branches: each family has its own weights per stage (as SPOS's
  choice blocks). Within one family, a choice that puts two different ops with weights at one node (e.g. a
  convolution or a separable convolution at the same place), or changes a weight's rank, or a kernel to
  one not centred in the largest (an odd and an even size), cannot share weights: building the supernet
  raises one line naming the choice. A node whose op has no weights in some options (a pooling, an
  identity where a block keeps its width) simply leaves the shared weights unused on those paths.

`forward(x, path=sample)` runs the path's cells (compiled once per stage combination, on the meta device,
without weights of their own) with the sliced shared tensors (`torch.func.functional_call`): gradients
reach the shared weights and batch-norm statistics are updated in the shared buffers. Batch norms'
statistics live in real batch-norm modules of the largest width (so SPOS's recalibration, which resets
every batch norm of the model, works unchanged). `extract(path)` returns ``(genome, nas.build(genome))``
loaded with the path's slices; in eval mode its outputs equal `forward(x, path=path)`
(tests/test_oneshot_stages.py).

Slicing channels by position is exact for any template; where a cell concatenates (dense, inception),
the first channels of a concatenation of narrower parts are not the first channels of each part, so
those paths share weights by position rather than by meaning (still exact, less related across paths).

One file of about 500 lines: one job, the stage supernet; deriving the shared tensors, slicing them for a
path and extracting a path's network all read the same naming of weights by position, kept in one place.
"""
from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
import torch.nn.functional as F

from nas import cellgraph
from nas.compiler import build, compile_cell
from nas.errors import NasError
from nas.expand import CellPlan, expand, infer_cell, stage_cell
from nas.genome import Genome, Stage
from nas.modules import Network
from nas.oneshot.supernet import OneShotError
from nas.ops.registry import get_op
from nas.spaces.base import Choice
from nas.spaces.layout import clip_strides, stem_layers
from nas.spaces.stages import StageSpace

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
MAX_COMBINATIONS = 20000  # stage combinations x input widths expanded while deriving the supernet


def _error(message: str) -> Exception:
    return OneShotError(message)


def _storage_name(key: str) -> str:
    """A shared tensor's key as a module attribute (no dots)."""
    return key.replace(".", ":")


@dataclass(frozen=True)
class _SlotStages:
    """The stages of one slot, as a genome holds them (no cells of its own)."""

    stages: tuple[Stage, ...]
    cells: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Entry:
    """One shared tensor: its largest shape and what every path's tensor of that name must agree on."""

    owner: str  # the class of the module holding it
    shape: list[int]
    buffer: bool
    norm: str | None  # the storage key of its batch norm, for batch-norm tensors
    first: tuple[int, tuple, tuple] | None  # (slot, combination, input shape) that first named it


@dataclass
class _Cell:
    """One cell of a path: its weightless module and, per tensor name, (shared key, slice)."""

    module: nn.Module
    tensors: list[tuple[str, str, tuple[slice, ...], bool]]  # (name, shared key, slice, a buffer)
    norms: list[tuple[nn.Module, str]] = field(default_factory=list)  # (its batch norm, shared batch norm key)


def _module_nodes(plan: CellPlan, module: nn.Module) -> dict[str, str]:
    """Per prefix of the compiled cell's parameter names, its graph node ('' for a chain of one node)."""
    graph = plan.graph
    ports = cellgraph.input_nodes(graph)
    order = [n for n in cellgraph.topological_order(graph) if n not in ports]
    if cellgraph.is_chain(graph):
        return {"": order[0]} if len(order) == 1 else {f"{i}.": n for i, n in enumerate(order)}
    return {f"ops.{i}.": n for i, n in enumerate(order)}


def cell_tensors(plan: CellPlan, module: nn.Module, prefix: str
                 ) -> list[tuple[str, str, str, str, nn.Module, str, bool]]:
    """Every parameter and buffer of a compiled cell: (its name, its shared key, its node's key, the node's op,
    the module holding it, the holder's name within the cell, whether it is a buffer)."""
    nodes = _module_nodes(plan, module)
    found = []
    named = [(n, False) for n, _ in module.named_parameters()] + [(n, True) for n, _ in module.named_buffers()]
    for name, buffer in named:
        start = max((p for p in nodes if name.startswith(p)), key=len)
        node = nodes[start]
        holder = name.rpartition(".")[0]
        found.append((name, f"{prefix}.{node}.{name[len(start):]}", f"{prefix}.{node}", plan.graph.nodes[node]["op"],
                      module.get_submodule(holder) if holder else module, holder, buffer))
    return found


def _slices(shape: tuple[int, ...], largest: list[int]) -> tuple[slice, ...]:
    """OFA's slicing: first entries along the two channel dimensions, the centre along the others."""
    out = []
    for d, (size, big) in enumerate(zip(shape, largest)):
        start = 0 if d < 2 else (big - size) // 2
        out.append(slice(start, start + size))
    return tuple(out)


def slot_choices(space: StageSpace, k: int) -> list[Choice]:
    return [c for c in space.choices if c.name.startswith(f"stage{k + 1}.")]


def combinations(choices: list[Choice]) -> list[dict[str, Any]]:
    """Every assignment of `choices` (a slot's), walking conditions as `SearchSpace.complete` does."""
    found: list[dict[str, Any]] = [{}]
    for choice in choices:
        grown = []
        for partial in found:
            if choice.is_active(partial):
                grown.extend({**partial, choice.name: option} for option in choice.options)
            else:
                grown.append(partial)
        found = grown
    return found


def _key(values: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in values.items()))


class StageSupernet(nn.Module):
    """The supernet of a stage space (see the module's docstring)."""

    partial = 1  # no partial channels: every path is a genome's network

    def __init__(self, space: StageSpace, **options: Any):
        super().__init__()
        given = sorted(k for k, v in options.items() if v is not None and not (k == "partial" and v == 1))
        if given:
            raise _error(f"option {given[0]!r} applies to the supernets of spaces of kind 'cells'; space "
                         f"{space.name!r} is of kind 'stages'")
        self.space = space
        self.kinds: list[str] = []
        _, size = stem_layers(space.stem_out, space.input_size, space.stem_max_size, space.stem_act)
        self.strides = clip_strides([slot.stride for slot in space.slots], size)
        self.entries: dict[str, _Entry] = {}
        self.ops: dict[str, tuple[str, tuple[int, tuple, tuple] | None]] = {}  # node key -> (op, first named by)
        self.plans: dict[tuple, tuple[list[tuple[str, CellPlan]], tuple[int, ...]]] = {}
        self.cells_: dict[tuple, list[_Cell]] = {}  # compiled lazily per (slot, combination, input shape)
        self.noted: set[tuple[str, int]] = set()
        self.node_memo: dict[tuple, nn.Module] = {}  # (op, params, input shape) -> its module on the meta device
        self.cell_memo: dict[tuple, CellPlan] = {}
        self.genome_memo: dict[tuple, _SlotStages | None] = {}
        self.meta: dict[int, nn.Module] = {}  # id(plan) -> its weightless module (the plans are kept in self.plans)
        default = space.realize(space.complete({}, random.Random(0)))
        reference = expand(default)
        self.stem_plan = reference.stem
        self._note("stem", reference.stem, None)
        shapes = {reference.stem.out_shape}
        self.combinations = [combinations(slot_choices(space, k)) for k in range(len(space.slots))]
        work = 0
        self.head_graph = default.head
        heads: dict[tuple[int, ...], CellPlan] = {}
        for k, combos in enumerate(self.combinations):
            repeats = f"stage{k + 1}.repeats"
            most = max(space.slots[k].repeats)
            outputs = set()
            for shape in sorted(shapes):
                for combo in combos:
                    if combo.get(repeats, most) != most:
                        continue  # a stage's first r cells do not depend on its repeats: cut from the deepest
                    work += 1
                    if work > MAX_COMBINATIONS:
                        raise _error(f"space {space.name!r}: more than {MAX_COMBINATIONS} stage combinations "
                                     "to derive a supernet from")
                    planned = self._expand_slot(k, combo, shape)
                    if planned is None:
                        continue
                    for depth in (space.slots[k].repeats if repeats in combo else (most,)):
                        cut = {**combo, repeats: depth} if repeats in combo else combo
                        cell_plans = [(prefix, plan) for prefix, plan in planned
                                      if int(prefix.rsplit(".", 2)[1]) < len(self.space.stages(cut, k, 1)) - 1
                                      or int(prefix.rsplit(".", 1)[1]) < depth]
                        out_shape = tuple(cell_plans[-1][1].out_shape) if cell_plans else shape
                        self.plans[(k, _key(cut), shape)] = (cell_plans, out_shape)
                        for prefix, plan in cell_plans:
                            self._note(prefix, plan, (k, _key(cut), shape))
                        outputs.add(out_shape)
            if not outputs:
                raise _error(f"space {space.name!r}: stage {k + 1} has no valid combination of its choices")
            shapes = outputs
        for shape in sorted(shapes):
            heads[shape] = infer_cell(self.head_graph, shape, "head", {"@in": shape[0], "@classes": space.num_classes})
            self._note("head", heads[shape], None)
        self.heads = heads
        self.num_classes = space.num_classes
        features = max(plan.out_shape[0] for plan in heads.values())
        self.classifier = nn.Linear(features, space.num_classes)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)
        self._make_storage()

    # ----- deriving -----
    def _expand_slot(self, k: int, combo: Mapping[str, Any], shape: tuple[int, ...]
                     ) -> list[tuple[str, CellPlan]] | None:
        """The cells of slot `k` with the choices `combo` on inputs of `shape` as [(prefix, plan)], prefix
        ``stage<k>.<family>.<genome stage in the slot>.<cell in that stage>``; None for an invalid combination.

        Expanded cell by cell as `nas.expand.expand` does; a cell reading the same shape as before (every cell
        after a stage's first, whatever the stage's input) is expanded once."""
        genome = self._slot_genome(k, combo, shape)
        if genome is None:
            return None
        family = combo.get(f"stage{k + 1}.family", next(iter(self.space.families)))
        found = []
        for s, stage in enumerate(genome.stages):
            if tuple(stage.reads) != (1,):
                raise _error(f"space {self.space.name!r}: stage {k + 1} reads other cells than the previous one; "
                             "a stage supernet runs chains of cells")
            for r in range(stage.repeats):
                memo = (k, _key(combo), s, r, shape)
                plan = self.cell_memo.get(memo)
                if plan is None:
                    try:
                        graph, tokens = stage_cell(genome, s, r, shape[0])
                        plan = infer_cell(graph, (shape,), f"stages[{s}][{r}]", tokens, (0,))
                    except NasError:
                        return None
                    if stage.out is not None and plan.out_shape[0] != stage.out:
                        return None
                    self.cell_memo[memo] = plan
                found.append((f"stage{k + 1}.{family}.{s}.{r}", plan))
                shape = tuple(plan.out_shape)
        return found

    def _slot_genome(self, k: int, combo: Mapping[str, Any], shape: tuple[int, ...]) -> "_SlotStages | None":
        """Slot `k`'s genome stages with the choices `combo` (what `nas.expand.stage_cell` reads of a genome)."""
        memo = (k, _key(combo))
        if memo not in self.genome_memo:
            try:
                self.genome_memo[memo] = _SlotStages(tuple(
                    Stage.from_dict(stage, f"stages[{s}]")
                    for s, stage in enumerate(self.space.stages(combo, k, self.strides[k]))))
            except NasError:
                self.genome_memo[memo] = None
        return self.genome_memo[memo]

    def _note(self, prefix: str, plan: CellPlan, where: tuple | None) -> None:
        """Record the shapes of one cell's tensors in the shared entries; one line for a choice that cannot share."""
        if (prefix, id(plan)) in self.noted:
            return
        self.noted.add((prefix, id(plan)))
        tensors = self._node_tensors(plan, prefix)
        norms = {holder for _, _, _, _, holder_module, holder, _ in tensors if isinstance(holder_module, BATCH_NORMS)}
        for node_of, op in {t[2]: t[3] for t in tensors}.items():  # nodes with weights: a parameter-free op
            seen = self.ops.get(node_of)                             # in another option just leaves them unused
            if seen is None:
                self.ops[node_of] = (op, where)
            elif seen[0] != op:
                self._refuse(where, seen[1], f"node {node_of} is a {seen[0]!r} in one option, a {op!r} in another")
        for tensor, key, node_of, op, holder_module, holder, buffer in tensors:
            entry = self.entries.get(key)
            shape = list(tensor.shape)
            norm = f"{key.rpartition('.')[0]}" if holder in norms else None
            if entry is None:
                self.entries[key] = _Entry(type(holder_module).__name__, shape, buffer, norm, where)
                continue
            if entry.owner != type(holder_module).__name__ or len(entry.shape) != len(shape):
                self._refuse(where, entry.first, f"{key} is a {entry.owner} tensor of rank {len(entry.shape)} in one "
                                                 f"option, a {type(holder_module).__name__} tensor of rank {len(shape)} "
                                                 "in another")
            for d in range(2, len(shape)):
                if (entry.shape[d] - shape[d]) % 2:
                    self._refuse(where, entry.first, f"{key}: a kernel of {shape[d]} is not centred in one of "
                                                     f"{entry.shape[d]}")
            entry.shape = [max(a, b) for a, b in zip(entry.shape, shape)]

    def _node_tensors(self, plan: CellPlan, prefix: str) -> list[tuple[torch.Tensor, str, str, str, nn.Module, str, bool]]:
        """As `cell_tensors`, from each node's module alone (built once per op, parameters and input shape, on
        the meta device): (tensor, shared key, node key, op, holding module, holder's name, a buffer)."""
        graph = plan.graph
        ports = cellgraph.input_nodes(graph)
        found = []
        for node in cellgraph.topological_order(graph):
            if node in ports:
                continue
            attrs = graph.nodes[node]
            memo = (attrs["op"], json.dumps(attrs["params"], sort_keys=True, default=repr), attrs["in_shape"][0])
            module = self.node_memo.get(memo)
            if module is None:
                with torch.device("meta"):
                    module = self.node_memo[memo] = get_op(attrs["op"]).build(attrs["in_shape"][0], attrs["params"])
            named = [(n, t, False) for n, t in module.named_parameters()] + [
                (n, t, True) for n, t in module.named_buffers()]
            for name, tensor, buffer in named:
                holder = name.rpartition(".")[0]
                found.append((tensor, f"{prefix}.{node}.{name}", f"{prefix}.{node}", attrs["op"],
                              module.get_submodule(holder) if holder else module, f"{node}.{holder}", buffer))
        return found

    def _refuse(self, where: tuple | None, other: tuple | None, detail: str) -> None:
        """Raise the one line naming the choice that cannot share weights (found by changing one choice)."""
        names = []
        if where is not None and other is not None and where[0] == other[0]:
            a, b = dict(where[1]), dict(other[1])
            names = [n for n in a if a.get(n) != b.get(n)] + [n for n in b if n not in a]
        if not names and where is not None:
            names = [f"stage{where[0]}.width"] if where[0] > 0 else []
        choice = names[-1] if len(names) == 1 else " / ".join(names) if names else "the stages' choices"
        raise _error(f"space {self.space.name!r}: choice {choice} cannot share weights ({detail})")

    def _make_storage(self) -> None:
        self.norms = nn.ModuleDict()
        self.weights = nn.ParameterDict()
        self.shared_buffers = nn.Module()
        norm_sizes: dict[str, tuple[str, int]] = {}
        for key, entry in self.entries.items():
            if entry.norm is not None:
                kind, size = norm_sizes.get(entry.norm, (entry.owner, 0))
                norm_sizes[entry.norm] = (kind, max(size, entry.shape[0] if entry.shape else 0))
        for norm, (kind, size) in norm_sizes.items():
            module = {"BatchNorm1d": nn.BatchNorm1d, "BatchNorm2d": nn.BatchNorm2d,
                      "BatchNorm3d": nn.BatchNorm3d}[kind](size)
            self.norms[_storage_name(norm)] = module
        for key, entry in self.entries.items():
            if entry.norm is not None:
                continue
            tensor = torch.empty(entry.shape)
            _initialise(tensor, entry.owner, key)
            if entry.buffer:
                self.shared_buffers.register_buffer(_storage_name(key), tensor)
            else:
                self.weights[_storage_name(key)] = nn.Parameter(tensor)

    def shared(self, key: str) -> torch.Tensor:
        """The shared (largest) tensor of `key`."""
        entry = self.entries[key]
        if entry.norm is not None:
            return getattr(self.norms[_storage_name(entry.norm)], key.rpartition(".")[2])
        if entry.buffer:
            return self.shared_buffers.get_buffer(_storage_name(key))
        return self.weights[_storage_name(key)]

    # ----- a path -----
    def slot_plans(self, path: Mapping[str, Any]) -> list[tuple[tuple, list[tuple[str, CellPlan]]]]:
        """Per slot of `path`: its lookup key and its cells' plans."""
        shape = self.stem_plan.out_shape
        found = []
        for k in range(len(self.space.slots)):
            combo = {n: v for n, v in path.items() if n.startswith(f"stage{k + 1}.")}
            key = (k, _key(combo), tuple(shape))
            if key not in self.plans:
                raise _error(f"space {self.space.name!r}: stage {k + 1} of the path {dict(path)} is not a valid "
                             "combination of its choices")
            cell_plans, shape = self.plans[key]
            found.append((key, cell_plans))
        return found

    def _cells(self, key: tuple, cell_plans: list[tuple[str, CellPlan]]) -> list[_Cell]:
        compiled = self.cells_.get(key)
        if compiled is None:
            compiled = [self._compile(prefix, plan) for prefix, plan in cell_plans]
            self.cells_[key] = compiled
        return compiled

    def _meta(self, plan: CellPlan) -> nn.Module:
        """The cell's module without weights (on the meta device), compiled once per plan."""
        module = self.meta.get(id(plan))
        if module is None:
            with torch.device("meta"):
                module = self.meta[id(plan)] = compile_cell(plan)
        return module

    def _compile(self, prefix: str, plan: CellPlan) -> _Cell:
        module = self._meta(plan)
        tensors, norms = [], []
        for name, key, _, _, holder_module, holder, buffer in cell_tensors(plan, module, prefix):
            local = module.get_buffer(name) if buffer else module.get_parameter(name)
            tensors.append((name, key, _slices(tuple(local.shape), self.entries[key].shape), buffer))
            entry = self.entries[key]
            if entry.norm is not None and name.endswith("running_mean"):
                norms.append((holder_module, _storage_name(entry.norm)))
        return _Cell(module, tensors, norms)

    def _run(self, cell: _Cell, x: torch.Tensor) -> torch.Tensor:
        if cell.module.training != self.training:
            cell.module.train(self.training)
        for module, norm in cell.norms:  # the shared batch norm's momentum (None while SPOS recalibrates)
            module.momentum = self.norms[norm].momentum
        # contiguous weights (a copy where sliced, through which gradients flow); statistics stay views
        tensors = {name: self.shared(key)[index] if buffer else self.shared(key)[index].contiguous()
                   for name, key, index, buffer in cell.tensors}
        return functional_call(cell.module, tensors, (x,))

    def forward(self, x: torch.Tensor, path: Mapping[str, Any] | None = None, **relaxed: Any) -> torch.Tensor:
        """The network of `path` (a sample of the space) with the shared weights' slices."""
        if path is None:
            raise _error("a stage supernet runs one path at a time (path=sample): it has no relaxed network")
        if "stem" not in self.cells_:
            self.cells_["stem"] = [self._compile("stem", self.stem_plan)]
        x = self._run(self.cells_["stem"][0], x)
        for key, cell_plans in self.slot_plans(path):
            for cell in self._cells(key, cell_plans):
                x = self._run(cell, x)
        shape = (x.shape[1], *x.shape[2:])
        head_key = ("head", shape)
        if head_key not in self.cells_:
            self.cells_[head_key] = [self._compile("head", self.heads[tuple(shape)])]
        x = self._run(self.cells_[head_key][0], x)
        return F.linear(x, self.classifier.weight[:, : x.shape[1]], self.classifier.bias)

    # ----- a path as a genome and its network -----
    def genome(self, path: Mapping[str, Any]) -> Genome:
        return self.space.realize(path)

    def extract(self, path: Mapping[str, Any]) -> tuple[Genome, Network]:
        """`(genome, nas.build(genome))` with the path's slices of the shared weights (and BN statistics)."""
        genome = self.genome(path)
        network = build(genome)
        plan = expand(genome)
        if not plan.is_chain():
            raise _error(f"space {self.space.name!r}: the path's network is not a chain of cells")
        modules = [network.stem, *(cell for stage in network.stages for cell in stage)]
        prefixes = [("stem", self.stem_plan)] + [pc for _, plans in self.slot_plans(path) for pc in plans]
        with torch.no_grad():
            for (prefix, cell_plan), module, real in zip(prefixes, modules, [plan.stem, *(
                    c for stage in plan.stages for c in stage)]):
                self._load(module, real, prefix)
            self._load(network.head, plan.head, "head")
            features = plan.head.out_shape[0]
            network.classifier.weight.copy_(self.classifier.weight[:, :features])
            network.classifier.bias.copy_(self.classifier.bias)
        return genome, network

    def _load(self, module: nn.Module, plan: CellPlan, prefix: str) -> None:
        state = {}
        for name, key, _, _, _, _, buffer in cell_tensors(plan, module, prefix):
            local = module.get_buffer(name) if buffer else module.get_parameter(name)
            state[name] = self.shared(key)[_slices(tuple(local.shape), self.entries[key].shape)].detach().clone()
        module.load_state_dict(state)


def _initialise(tensor: torch.Tensor, owner: str, key: str) -> None:
    """`nas.build`'s initialisation on a shared tensor (He for convolutions, small normal for linear layers,
    unit scale and zero shift otherwise); other modules' weights as a linear layer's, their biases zero."""
    name = key.rpartition(".")[2]
    if tensor.dim() >= 2 and owner.startswith("Conv"):
        nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu")
    elif tensor.dim() >= 2:
        nn.init.normal_(tensor, 0.0, 0.01)
    elif name == "weight":
        nn.init.ones_(tensor)
    else:
        nn.init.zeros_(tensor)


def stage_supernet(space: StageSpace, **options: Any) -> StageSupernet:
    return StageSupernet(space, **options)


def check_stage_space(space: StageSpace, strategy: str) -> None:
    """`nas search --strategy <one-shot> --space <stages>`: SPOS and RSWS only; the supernet derivable."""
    if strategy not in ("spos", "rsws"):
        raise _error(f"--strategy {strategy}: space {space.name!r} is of kind 'stages', whose supernet runs "
                     "single paths (--strategy spos or rsws); DARTS's relaxed cells need a space of kind 'cells'")
    StageSupernet(space)
