"""Cells with several input ports: format, wiring by `reads`, runtime, identity, errors, and random genomes."""
from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas
from nas.errors import GenomeError
from nas.expand import expand
from nas.modules import Network, _release_after

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every cell concatenates the two previous outputs: widths 4, 8 (stem twice), 12, 20, 32 (Fibonacci).
FIBONACCI = {
    "name": "fibonacci",
    "input": {"channels": 3, "size": 8},
    "num_classes": 3,
    "stem": [{"op": "conv", "out": 4, "kernel": 3}],
    "stages": [{"cell": "cat", "repeats": 4, "reads": [2, 1]}],
    "head": [{"op": "global_avgpool"}],
    "cells": {"cat": {"inputs": ["older", "newer"], "nodes": {"out": {"op": "identity", "merge": "concat"}},
                      "edges": [["older", "out"], ["newer", "out"]]}},
}


def fibonacci(**changes) -> dict:
    spec = copy.deepcopy(FIBONACCI)
    spec.update(changes)
    return spec


def test_ports_read_earlier_outputs_counting_back_and_clamping_at_the_stem():
    plan = expand(nas.Genome.from_dict(FIBONACCI))
    cells = plan.stages[0]
    assert [c.sources for c in cells] == [(0, 0), (0, 1), (1, 2), (2, 3)]
    assert [c.out_shape[0] for c in cells] == [8, 12, 20, 32]
    assert cells[1].in_shapes == ((4, 8, 8), (8, 8, 8)) and not plan.is_chain()


def test_the_network_computes_what_the_wiring_says():
    genome = nas.Genome.from_dict(FIBONACCI)
    model = nas.build(genome).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        outputs = [model.stem(x)]
        for _ in range(4):
            outputs.append(torch.cat([outputs[max(0, len(outputs) - 2)], outputs[-1]], 1))
        expected = model.classifier(model.head(outputs[-1]))
        assert torch.equal(model(x), expected)


def test_a_chain_keeps_the_sequential_fast_path():
    genome = nas.Genome.from_dict(fibonacci(stages=[{"cell": "basic", "out": 4, "repeats": 2}], cells={}))
    assert expand(genome).is_chain() and nas.build(genome).wiring == []


def test_outputs_are_released_after_their_last_reader():
    assert _release_after([[0, 0], [0, 1], [1, 2], [2, 3]]) == [[], [0], [1], [2, 3]]
    assert _release_after([[0], [0], [2]]) == [[1], [0], [2]]  # output 1 (cell 0's) is read by nobody
    # the DARTS networks keep at most three outputs alive: the two read and the one being made
    wiring = nas.build(nas.Genome.from_dict(fibonacci(stages=[{"cell": "cat", "repeats": 9, "reads": [2, 1]}])),
                       device="meta").wiring
    live, most = {0}, 1
    for k, released in enumerate(_release_after(wiring)):
        live.add(k + 1)
        most = max(most, len(live))
        live -= set(released)
    assert most == 3


def test_summary_and_transfer_understand_ports():
    genome = nas.Genome.from_dict(FIBONACCI)
    assert nas.summarize(genome).stage_shapes[1] == ("stage1", (32, 8, 8))
    torch.manual_seed(0)
    a, b = nas.build(genome).eval(), nas.build(genome).eval()
    nas.transfer_weights(a, b, (1, 3, 8, 8))
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_draw_shows_every_port(tmp_path):
    from nas.draw import distinct_cells, draw, node_lines

    genome = nas.Genome.from_dict(FIBONACCI)
    groups = distinct_cells(genome, expand(genome))
    cell = groups[1].plan
    assert node_lines(cell.graph, "older")[0] == "input older" and "+" in groups[1].title()
    draw(genome, tmp_path / "fibonacci.png")
    assert (tmp_path / "fibonacci.png").stat().st_size > 0


def test_ports_round_trip_through_yaml():
    genome = nas.Genome.from_dict(FIBONACCI)
    again = nas.Genome.from_yaml(genome.to_yaml())
    assert again == genome and again.to_dict() == genome.to_dict()
    assert again.to_dict()["cells"]["cat"]["inputs"] == ["older", "newer"]
    assert again.to_dict()["stages"][0]["reads"] == [2, 1]


def test_port_order_reads_and_concat_order_are_part_of_the_identity():
    genome = nas.Genome.from_dict(FIBONACCI)
    renamed = copy.deepcopy(FIBONACCI)
    renamed["cells"]["cat"] = {"inputs": ["p", "q"], "nodes": {"out": {"op": "identity", "merge": "concat"}},
                               "edges": [["p", "out"], ["q", "out"]]}
    assert nas.Genome.from_dict(renamed) == genome
    swapped_ports = copy.deepcopy(FIBONACCI)
    swapped_ports["cells"]["cat"]["inputs"] = ["newer", "older"]
    swapped_reads = fibonacci(stages=[{"cell": "cat", "repeats": 4, "reads": [1, 2]}])
    swapped_concat = copy.deepcopy(FIBONACCI)
    swapped_concat["cells"]["cat"]["edges"] = [["newer", "out"], ["older", "out"]]
    for other in (swapped_ports, swapped_reads, swapped_concat):
        assert nas.Genome.from_dict(other).fingerprint() != genome.fingerprint()
        assert nas.Genome.from_dict(other) != genome


@pytest.mark.parametrize("change, where, message", [
    ({"stages": [{"cell": "cat", "reads": [1]}]}, "stages[0].reads", "has 2 input"),
    ({"stages": [{"cell": "basic", "out": 4, "reads": [2, 1]}]}, "stages[0].reads", "has 1 input"),
    ({"stages": [{"cell": "cat", "reads": [2, 0]}]}, "stages[0].reads[1]", "integer >= 1"),
    ({"stages": [{"cell": "cat", "reads": []}]}, "stages[0].reads", "non-empty list"),
    ({"cells": {"cat": {"inputs": ["a", "b"], "nodes": {"out": {"op": "identity"}}, "edges": [["b", "out"]]}}},
     "cells.cat.nodes.a", "read by no node"),
    ({"cells": {"cat": {"inputs": ["a", "a"], "nodes": {"out": {"op": "identity"}}, "edges": [["a", "out"]]}}},
     "cells.cat.inputs", "listed twice"),
    ({"cells": {"cat": {"inputs": ["a"], "nodes": {"a": {"op": "identity"}, "out": {"op": "identity"}},
                        "edges": [["a", "out"]]}}}, "cells.cat.nodes.a", "takes no op"),
    ({"stem": {"inputs": ["x", "y"], "nodes": {"out": {"op": "conv", "out": 4, "merge": "concat"}},
               "edges": [["x", "out"], ["y", "out"]]}}, "stem", "2 inputs"),
])
def test_bad_ports_fail_naming_the_field(change, where, message):
    with pytest.raises(GenomeError, match=message) as error:
        nas.Genome.from_dict(fibonacci(**change))
    assert error.value.where == where


# ----- random multi-input genomes -----
OPS = [{"op": "conv", "out": 4, "kernel": 1}, {"op": "identity"}, {"op": "maxpool", "kernel": 3, "stride": 1, "padding": 1},
       {"op": "sepconv", "out": 4}, {"op": "bn", "act": "relu"}]


@st.composite
def multi_input_genomes(draw) -> dict:
    """A genome whose explicit cell has 1-3 ports; every node reads 1-2 earlier nodes or ports (4 channels
    everywhere, add merges), every port is read, and the output concatenates every node no one reads
    (then a 1x1 conv back to 4 channels)."""
    ports = [f"p{k}" for k in range(draw(st.integers(1, 3)))]
    nodes, edges = {}, []
    names = list(ports)
    for i in range(draw(st.integers(len(ports), 5))):
        name = f"n{i}"
        unread_ports = [p for p in ports if all(e[0] != p for e in edges)]
        first = unread_ports[0] if unread_ports else draw(st.sampled_from(names))
        sources = [first] + draw(st.lists(st.sampled_from(names), max_size=1))
        sources = list(dict.fromkeys(sources))
        nodes[name] = {**draw(st.sampled_from(OPS)), "merge": "add"}
        edges += [[s, name] for s in sources]
        names.append(name)
    ends = [n for n in nodes if all(e[0] != n for e in edges)]
    nodes["out"] = {"op": "conv", "out": 4, "kernel": 1, "merge": "concat"}
    edges += [[n, "out"] for n in ends]
    reads = draw(st.lists(st.integers(1, 4), min_size=len(ports), max_size=len(ports)))
    return {
        "name": "random_ports", "input": {"channels": 3, "size": 8}, "num_classes": 3,
        "stem": [{"op": "conv", "out": 4, "kernel": 3}],
        "stages": [{"cell": "c", "repeats": draw(st.integers(1, 3)), "reads": reads},
                   {"cell": "layers", "params": {"layers": [{"op": "conv", "out": 4, "kernel": 1}]}},
                   {"cell": "c", "reads": reads}],
        "head": [{"op": "global_avgpool"}],
        "cells": {"c": {"inputs": ports, "nodes": nodes, "edges": edges}},
    }


def _rename(spec: dict, prefix: str) -> dict:
    """The same genome with every node and port of the explicit cell renamed (and nodes listed in reverse)."""
    spec = copy.deepcopy(spec)
    cell = spec["cells"]["c"]
    new = {n: n if n == "out" else prefix + n for n in [*cell["inputs"], *cell["nodes"]]}
    cell["inputs"] = [new[p] for p in cell["inputs"]]
    cell["nodes"] = {new[n]: node for n, node in reversed(list(cell["nodes"].items()))}
    cell["edges"] = [[new[a], new[b]] for a, b in cell["edges"]]
    return spec


@SETTINGS
@given(multi_input_genomes())
def test_random_multi_input_genomes_build_run_and_hash_stably(spec):
    genome = nas.Genome.from_dict(spec)
    model = nas.build(genome).eval()
    assert isinstance(model, Network)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    renamed = nas.Genome.from_dict(_rename(spec, "x_"))
    assert renamed.fingerprint() == genome.fingerprint() and renamed == genome


@SETTINGS
@given(multi_input_genomes(), st.data())
def test_changing_a_port_or_a_concat_order_changes_the_hash(spec, data):
    genome = nas.Genome.from_dict(spec)
    cell = spec["cells"]["c"]
    changed = copy.deepcopy(spec)
    if data.draw(st.booleans()):  # a port reads another output
        reads = changed["stages"][-1]["reads"]
        reads[-1] = reads[-1] % 4 + 1
    else:
        # a concat of two distinct branches: out = concat(conv(port 0), identity(port 0)) -> reversed
        port = cell["inputs"][0]
        changed["cells"]["c"]["nodes"].update({"u": {"op": "conv", "out": 4, "kernel": 1}, "v": {"op": "identity"}})
        changed["cells"]["c"]["edges"] += [[port, "u"], [port, "v"], ["u", "out"], ["v", "out"]]
        genome = nas.Genome.from_dict(changed)
        changed = copy.deepcopy(changed)
        edges = changed["cells"]["c"]["edges"]
        i, j = edges.index(["u", "out"]), edges.index(["v", "out"])
        edges[i], edges[j] = edges[j], edges[i]
    other = nas.Genome.from_dict(changed)
    assert other.fingerprint() != genome.fingerprint() and other != genome


def test_scale_keeps_ports_and_repeats_only_the_repeated_two_input_cells():
    from nas import baselines
    from nas.scale_genome import round_channels

    scaled = nas.scale(baselines.get("darts_v2"), width=0.5, depth=2.0)
    assert [(s.repeats, s.reads) for s in scaled.stages] == [(12, (2, 1)), (1, (2, 1)), (1, (2, 1)), (10, (2, 1)),
                                                              (1, (2, 1)), (1, (2, 1)), (10, (2, 1))]
    assert all(cell.graph["inputs"] == ("prev_prev", "prev") for cell in scaled.cells.values())
    assert scaled.cells["normal36"].nodes["pre1"]["params"]["out"] == round_channels(36 * 0.5)  # width halved


def test_templates_see_every_ports_channels():
    from nas.templates.registry import CellContext
    from nas.frozen import FrozenDict

    assert CellContext(c_in=8, out=None, stride=1, index=0, params=FrozenDict()).c_ins == (8,)
    assert CellContext(c_in=8, out=None, stride=1, index=0, params=FrozenDict(), c_ins=(8, 16)).c_ins == (8, 16)
