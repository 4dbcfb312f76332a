"""Genome identity: the fingerprint of the resolved, canonical form, the exact equality behind it,
dedupe that confirms a fingerprint hit, immutability all the way down, and the layering of modules."""
from __future__ import annotations

import ast
import copy
import pickle
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas
from nas import baselines
from nas import cellgraph
from nas.genome import Genome, Stage
from nas.search.strategies import make_searcher
from nas.search.strategies.base import FINISHED
from nas.spaces import Choice, SearchSpace

ROOT = Path(__file__).resolve().parents[1]


def spec(**cells_):
    """A small genome whose stage 1 uses the explicit cell `mine` (given as `cells_`, or a two-branch concat)."""
    mine = cells_.get("mine", {
        "nodes": {
            "a": {"op": "conv", "out": 8, "kernel": 3},
            "b": {"op": "conv", "out": 8, "kernel": 1},
            "out": {"op": "identity", "merge": "concat"},
        },
        "edges": [["in", "a"], ["in", "b"], ["a", "out"], ["b", "out"]],
    })
    return {
        "name": "small", "input": {"channels": 3, "size": 16}, "num_classes": 10,
        "stem": [{"op": "conv", "out": 16, "kernel": 3}],
        "stages": [{"cell": "mbconv", "out": 16, "params": {"expansion": 6}}, {"cell": "mine", "out": 16}],
        "head": [{"op": "global_avgpool"}, {"op": "linear", "out": 32}],
        "cells": {"mine": mine},
    }


def same(a: dict, b: dict) -> bool:
    ga, gb = Genome.from_dict(a), Genome.from_dict(b)
    assert (ga.fingerprint() == gb.fingerprint()) == (ga == gb), "hash and equality disagree"
    if ga == gb:
        assert hash(ga) == hash(gb)
    return ga == gb


# ----- the canonical form: how a value is written does not matter -----
def test_defaults_written_out_or_left_out_and_number_forms_give_one_identity():
    written = spec()
    written["stem"][0].update(stride=1, padding=None, dilation=1, groups=1, bias=False, act="relu")
    written["stem"][0]["merge"] = "add"
    written["stages"][0]["params"].update(expansion=6.0, kernel=3, se=0)
    written["stages"][0]["stride"] = 1
    written["stages"][0]["repeats"] = 1
    written["head"][1]["bias"] = True
    assert same(spec(), written)


def test_names_of_the_genome_its_nodes_and_its_explicit_cells_do_not_matter():
    renamed = spec()
    renamed["name"] = "other"
    mine = renamed["cells"].pop("mine")
    mine["nodes"] = {{"a": "left", "b": "right"}.get(k, k): v for k, v in reversed(list(mine["nodes"].items()))}
    mine["edges"] = [[{"a": "left", "b": "right"}.get(x, x) for x in edge] for edge in mine["edges"]]
    renamed["cells"]["theirs"] = mine
    renamed["stages"][1]["cell"] = "theirs"
    assert same(spec(), renamed)


def test_an_explicit_cell_used_by_no_stage_is_not_part_of_the_identity():
    extra = spec()
    extra["cells"]["unused"] = [{"op": "identity"}]
    assert same(spec(), extra)


# ----- ... but everything that changes the function does -----
def test_concat_order_is_part_of_the_identity_and_add_order_is_not():
    swapped = spec()
    swapped["cells"]["mine"]["edges"] = [["in", "a"], ["in", "b"], ["b", "out"], ["a", "out"]]
    assert not same(spec(), swapped)
    added = copy.deepcopy(spec())
    added["cells"]["mine"]["nodes"]["out"]["merge"] = "add"
    added["cells"]["mine"]["nodes"]["out"]["op"] = "conv"
    added["cells"]["mine"]["nodes"]["out"].update(out=16, kernel=1)
    swapped_add = copy.deepcopy(added)
    swapped_add["cells"]["mine"]["edges"] = [["in", "a"], ["in", "b"], ["b", "out"], ["a", "out"]]
    assert same(added, swapped_add)


def test_multiply_order_is_part_of_the_identity():
    def gated(order):
        return spec(mine={
            "nodes": {"a": {"op": "conv", "out": 16, "kernel": 3}, "g": {"op": "adaptive_avgpool", "size": 1},
                      "out": {"op": "identity", "merge": "multiply"}},
            "edges": [["in", "a"], ["a", "g"], *([x, "out"] for x in order)],
        })

    assert not same(gated(["a", "g"]), gated(["g", "a"]))
    assert same(gated(["a", "g"]), gated(["a", "g"]))


def test_a_shared_op_differs_from_two_copies_of_it():
    shared = spec(mine={
        "nodes": {"c": {"op": "conv", "out": 8}, "x": {"op": "act", "kind": "relu"}, "y": {"op": "act", "kind": "relu"},
                  "out": {"op": "identity", "merge": "concat"}},
        "edges": [["in", "c"], ["c", "x"], ["c", "y"], ["x", "out"], ["y", "out"]],
    })
    copies = spec(mine={
        "nodes": {"c": {"op": "conv", "out": 8}, "d": {"op": "conv", "out": 8}, "x": {"op": "act", "kind": "relu"},
                  "y": {"op": "act", "kind": "relu"}, "out": {"op": "identity", "merge": "concat"}},
        "edges": [["in", "c"], ["in", "d"], ["c", "x"], ["d", "y"], ["x", "out"], ["y", "out"]],
    })
    assert not same(shared, copies)
    assert nas.summarize(Genome.from_dict(shared)).params < nas.summarize(Genome.from_dict(copies)).params


@pytest.mark.parametrize("edit", [
    lambda s: s["stem"][0].update(kernel=5),
    lambda s: s["stages"][0]["params"].update(expansion=4),
    lambda s: s["stages"][0].update(stride=2),
    lambda s: s["head"][1].update(bias=False),
    lambda s: s.update(num_classes=11),
    lambda s: s["input"].update(size=32),
    lambda s: s["cells"]["mine"]["nodes"]["a"].update(dilation=2),
])
def test_any_change_to_the_function_changes_the_identity(edit):
    changed = spec()
    edit(changed)
    assert not same(spec(), changed)


def test_the_fingerprint_does_not_rest_on_networkx_hashes_and_is_stable():
    """A frozen value: fingerprints are stored in run folders, so a change here must be deliberate."""
    graph = Genome.from_dict(spec()).cells["mine"]
    assert cellgraph.fingerprint(graph) == cellgraph.fingerprint(cellgraph.freeze_graph(nx.DiGraph(graph)))
    assert len(Genome.from_dict(spec()).fingerprint()) == 64


def test_colour_refinement_is_not_an_identity_but_the_equality_check_is():
    """A directed 6-cycle and two 3-cycles look alike to colour refinement: the hash cannot tell them apart,
    the isomorphism check behind ``==`` (and behind dedupe) can."""
    six, threes = nx.DiGraph(), nx.DiGraph()
    nx.add_cycle(six, range(6))
    nx.add_cycle(threes, range(3))
    nx.add_cycle(threes, range(3, 6))
    for graph in (six, threes):
        nx.set_node_attributes(graph, "op", "label")
        nx.set_edge_attributes(graph, -1, "pos")
    assert cellgraph.labelled_hash(six) == cellgraph.labelled_hash(threes)
    assert not cellgraph.same_labelled(six, threes) and cellgraph.same_labelled(six, six.copy())


# ----- dedupe confirms a fingerprint hit -----
class Widths(SearchSpace):
    def __init__(self):
        super().__init__("widths", [Choice("width", (4, 8, 12))], input_channels=1, input_size=8, num_classes=3)

    def genome_of(self, s):
        return Genome.from_dict({
            "name": self.genome_name(s), "input": {"channels": 1, "size": 8}, "num_classes": 3,
            "stem": [{"op": "conv", "out": s["width"], "kernel": 1}],
            "stages": [{"cell": "layers", "params": {"layers": [{"op": "identity"}]}}],
            "head": [{"op": "global_avgpool"}],
        })


def _drive(searcher, trials):
    configs = []
    for i in range(trials):
        config = searcher.suggest(f"t{i}")
        if config in (None, FINISHED):
            break
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"val_accuracy": config["sample"]["width"] / 12})
    return configs


def test_dedupe_confirms_a_fingerprint_hit_with_equality(monkeypatch):
    monkeypatch.setattr(Genome, "fingerprint", lambda self: "f" * 64)  # every genome collides
    searcher = make_searcher("random", Widths(), seed=0, max_trials=3)
    configs = _drive(searcher, 3)
    assert sorted(c["sample"]["width"] for c in configs) == [4, 8, 12]  # different genomes all evaluated
    assert sorted(searcher.results) == ["f" * 64, "f" * 64 + "#1", "f" * 64 + "#2"]
    restored = make_searcher("random", Widths(), seed=0, max_trials=4)
    restored.set_state(pickle.loads(pickle.dumps(searcher.get_state())))
    genome = Widths().realize({"width": 8})
    assert restored._key(genome) in restored.results  # a real duplicate is still one after a restore
    assert restored.suggest("t9") in (None, FINISHED)  # the space is exhausted: nothing new to try


# ----- immutable all the way down -----
MUTATIONS = {
    "genome field": lambda g: setattr(g, "name", "x"),
    "stage field": lambda g: setattr(g.stages[0], "out", 1),
    "stage params": lambda g: g.stages[0].params.__setitem__("expansion", 1),
    "params internals": lambda g: g.stages[0].params._data.__setitem__("expansion", 1),
    "params attribute": lambda g: setattr(g.stages[0].params, "_data", {}),
    "stages tuple": lambda g: g.stages.__setitem__(0, None),
    "input size": lambda g: setattr(g.input, "size", (1, 1)),
    "add node": lambda g: g.stem.add_node("x"),
    "remove node": lambda g: g.head.remove_node("out"),
    "add edge": lambda g: g.stem.add_edge("in", "out"),
    "node attribute": lambda g: g.stem.nodes["out"].__setitem__("op", "identity"),
    "node attribute update": lambda g: g.stem.nodes["out"].update(op="identity"),
    "node params": lambda g: g.stem.nodes["out"]["params"].__setitem__("out", 1),
    "node data view": lambda g: dict(g.stem.nodes(data=True))["out"].__setitem__("op", "identity"),
    "edge attribute": lambda g: g.head.edges["n0", "out"].__setitem__("x", 1),
    "graph attribute": lambda g: g.stem.graph.__setitem__("x", 1),
    "graph name": lambda g: setattr(g.stem, "name", "x"),
    "adjacency": lambda g: g.stem.adj["in"].__setitem__("out", {}),
    "explicit cells": lambda g: g.cells.__setitem__("x", nx.DiGraph()),
    "explicit cell node": lambda g: g.cells["mine"].nodes["a"].__setitem__("op", "identity"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_no_public_part_of_a_genome_can_be_changed_in_place(name):
    genome = Genome.from_dict(spec())
    before = genome.to_dict()
    with pytest.raises((TypeError, AttributeError, nx.NetworkXError)):
        MUTATIONS[name](genome)
    assert genome.to_dict() == before


def test_baselines_get_hands_out_what_the_file_says_whatever_earlier_callers_tried():
    first = baselines.get("efficientnet_b0")
    for mutate in MUTATIONS.values():
        try:
            mutate(first)
        except (TypeError, AttributeError, KeyError, IndexError, nx.NetworkXError):
            pass
    fresh = Genome.load(ROOT / "baselines" / "efficientnet_b0.yaml")
    again = baselines.get("efficientnet_b0")
    assert again.to_dict() == fresh.to_dict() and again == fresh


def test_a_genome_copies_the_graphs_it_is_given_and_keeps_their_concat_order():
    stem = cellgraph.chain([{"op": "conv", "out": 8}], "stem")
    mine = cellgraph.new_cell()
    cellgraph.add_node(mine, "b", ["in"], "conv", out=4, kernel=1)
    cellgraph.add_node(mine, "a", ["in"], "conv", out=4, kernel=3)
    cellgraph.add_node(mine, "out", ["a", "b"], "identity", merge="concat")  # a before b, though b was added first
    genome = Genome("g", stem=stem, stages=[Stage("mine", out=8)], head=cellgraph.chain([{"op": "global_avgpool"}], "head"),
                    cells={"mine": mine}, input=nas.genome.InputSpec(3, (8, 8)), num_classes=2)
    assert list(genome.cells["mine"].predecessors("out")) == ["a", "b"]
    mine.nodes["a"]["op"] = "identity"  # the caller's graph stays theirs
    assert genome.cells["mine"].nodes["a"]["op"] == "conv"
    assert isinstance(genome.stages, tuple) and Genome.from_dict(genome.to_dict()) == genome


def test_genomes_survive_pickle_and_deepcopy():
    genome = Genome.from_dict(spec())
    for other in (pickle.loads(pickle.dumps(genome)), copy.deepcopy(genome)):
        assert other == genome and other.fingerprint() == genome.fingerprint()
        with pytest.raises(TypeError):
            other.stem.nodes["out"]["op"] = "identity"


# ----- layering -----
def _imports(path: Path) -> set[str]:
    """Every `nas` module `path` imports, at module level or inside functions (TYPE_CHECKING blocks excepted)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
               for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return {name for name in found if name.startswith("nas.")}


def test_the_genome_layers_point_one_way():
    """data (genome, cell, frozen, limits, rounding) -> registries -> shape inference -> validation, identity."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "nas").rglob("*.py")}
    graph = nx.DiGraph()
    core = ["nas.genome", "nas.cellgraph", "nas.frozen", "nas.limits", "nas.rounding", "nas.params", "nas.registry",
            "nas.errors", "nas.expand", "nas.identity", "nas.validation", "nas.scale_genome"]
    core += [m for m in modules if m.startswith(("nas.templates", "nas.ops"))]
    for module in core:
        for target in _imports(modules[module]):
            if target in modules and target != module:
                graph.add_edge(module, target)
    assert nx.is_directed_acyclic_graph(graph), nx.find_cycle(graph)
    data = ["nas.genome", "nas.cellgraph", "nas.frozen", "nas.limits", "nas.rounding"]
    above = {"nas.expand", "nas.identity", "nas.scale_genome", "nas.ops.registry", "nas.templates.registry"}
    for module in data:
        reached = nx.descendants(graph, module) if module in graph else set()
        assert not (reached & above) or module == "nas.genome", (module, reached & above)
    # the genome reaches the layers above only through the one documented call to nas.validation
    direct = _imports(modules["nas.genome"])
    assert direct & above == set() and "nas.validation" in direct
    for template in (m for m in modules if m.startswith("nas.templates")):
        assert not _imports(modules[template]) & {"nas.scale_genome", "nas.genome"}, template


# ----- random cells: renaming and reordering keep the identity, a concat's order does not -----
@st.composite
def concat_cells(draw):
    """A random explicit cell: convs reading earlier nodes, the output concatenating at least two of them."""
    size = draw(st.integers(2, 6))
    nodes, edges = {}, []
    for i in range(size):
        name = f"c{i}"
        nodes[name] = {"op": "conv", "out": 4, "kernel": draw(st.sampled_from([1, 3, 5])),
                       "merge": draw(st.sampled_from(["add", "concat"]))}
        sources = draw(st.lists(st.sampled_from(["in", *list(nodes)[:i]]), min_size=1, max_size=3, unique=True))
        edges += [[s, name] for s in sources]
    read = {a for a, _ in edges}
    sinks = [n for n in nodes if n not in read]
    joined = sinks + [n for n in nodes if n in read][: max(0, 2 - len(sinks))]
    order = draw(st.permutations(joined))
    nodes["out"] = {"op": "conv", "out": "@out", "kernel": 1, "merge": "concat"}
    edges += [[n, "out"] for n in order]
    return {"nodes": nodes, "edges": edges}


def _with_cell(cell):
    genome = spec(mine=cell)
    genome["stages"] = genome["stages"][1:]
    genome["stem"][0]["out"] = 4  # the cell's input has the convs' width: any of them may be added to it
    return genome


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(concat_cells(), st.randoms(use_true_random=False))
def test_random_cells_keep_their_identity_renamed_and_reordered_and_lose_it_with_the_concat_order(cell, rng):
    genome = Genome.from_dict(_with_cell(cell))
    names = [n for n in cell["nodes"] if n != "out"]
    fresh = [f"r{i}" for i in range(len(names))]
    rng.shuffle(fresh)
    rename = {**dict(zip(names, fresh)), "in": "in", "out": "out"}
    items = list(cell["nodes"].items())
    rng.shuffle(items)  # the order nodes are listed in is free
    groups = {}  # target -> its incoming edges, in order
    for a, b in cell["edges"]:
        groups.setdefault(b, []).append([rename[a], rename[b]])
    targets = list(groups)
    rng.shuffle(targets)  # so is the order of edges into different nodes, and into an add
    for target in targets:
        if cell["nodes"][target]["merge"] == "add":
            rng.shuffle(groups[target])
    renamed = {"nodes": {rename[n]: node for n, node in items}, "edges": [e for t in targets for e in groups[t]]}
    again = Genome.from_dict(_with_cell(renamed))
    assert again == genome and again.fingerprint() == genome.fingerprint()
    into_out = groups["out"]
    kernel = {rename[n]: node["kernel"] for n, node in cell["nodes"].items()}
    if kernel[into_out[0][0]] != kernel[into_out[-1][0]]:  # no isomorphism swaps them: another network
        groups["out"] = into_out[::-1]
        reversed_cell = {"nodes": renamed["nodes"], "edges": [e for t in targets for e in groups[t]]}
        other = Genome.from_dict(_with_cell(reversed_cell))
        assert other != genome and other.fingerprint() != genome.fingerprint()


def test_an_input_spec_given_a_list_keeps_a_tuple():
    spec_ = nas.genome.InputSpec(3, [8, 8])
    assert spec_.size == (8, 8) and isinstance(spec_.size, tuple)
    with pytest.raises(nas.GenomeError, match="input.channels"):
        nas.genome.InputSpec(0, (8, 8))


def test_the_nodes_of_a_layers_stage_are_resolved_too():
    def plain(**extra):
        layers = [{"op": "conv", "out": 8, **extra}, {"op": "maxpool", "kernel": 2}]
        return {"name": "plain", "input": {"channels": 3, "size": 16}, "stem": [{"op": "conv", "out": 8}],
                "stages": [{"cell": "layers", "params": {"layers": layers}}], "head": [{"op": "global_avgpool"}]}

    assert same(plain(), plain(stride=1, merge="add", dilation=1))
    assert not same(plain(), plain(stride=2))


def test_a_genome_built_in_python_is_held_to_the_same_bounds():
    bomb: list = ["x"] * 10
    for _ in range(8):
        bomb = [bomb] * 10  # 10**9 leaves, shared: small in memory, huge to walk
    genome = Genome.from_dict(spec())
    with pytest.raises(nas.GenomeError, match=r"params\.kernel\[0\].*more than 200,000 values"):
        Stage("mbconv", out=16, params={"expansion": 6, "kernel": bomb})
    with pytest.raises(nas.GenomeError, match=r"stages\[0\]\.repeats: must be at most 1,000"):
        genome.replace(stages=(Stage("mbconv", out=16, repeats=10**12),))
