"""The genome as data: round trips, identity, immutability and validation errors."""
import copy

import pytest

import nas
from nas import baselines
from nas.errors import GenomeError

SMALL = {
    "name": "tiny",
    "input": {"channels": 3, "size": 16},
    "num_classes": 10,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [
        {"cell": "basic", "out": 8, "repeats": 2},
        {"cell": "mine", "out": 16, "stride": 2},
    ],
    "head": [{"op": "global_avgpool"}],
    "cells": {
        "mine": {
            "nodes": {
                "a": {"op": "conv", "out": "@out", "kernel": 3, "stride": "@stride"},
                "b": {"op": "conv", "out": "@out", "kernel": 1, "stride": "@stride"},
                "out": {"op": "identity", "merge": "add"},
            },
            "edges": [["in", "a"], ["in", "b"], ["a", "out"], ["b", "out"]],
        }
    },
}


def small(**changes):
    spec = copy.deepcopy(SMALL)
    spec.update(changes)
    return spec


def test_yaml_json_and_dict_round_trips_are_exact():
    genome = nas.Genome.from_dict(small())
    assert nas.Genome.from_yaml(genome.to_yaml()).to_dict() == genome.to_dict()
    assert nas.Genome.from_json(genome.to_json()).to_dict() == genome.to_dict()
    assert nas.Genome.from_dict(genome.to_dict()) == genome


def test_equal_genomes_hash_equal_and_node_names_do_not_matter():
    a = nas.Genome.from_dict(small())
    renamed = small()
    cell = renamed["cells"]["mine"]
    cell["nodes"] = {"x" if k == "a" else k: v for k, v in cell["nodes"].items()}
    cell["edges"] = [["in", "x"], ["in", "b"], ["x", "out"], ["b", "out"]]
    b = nas.Genome.from_dict(renamed)
    assert a == b and hash(a) == hash(b) and a.fingerprint() == b.fingerprint()
    different = small(stages=[{"cell": "basic", "out": 8, "repeats": 3}, SMALL["stages"][1]])
    assert nas.Genome.from_dict(different).fingerprint() != a.fingerprint()


def test_genome_is_immutable_and_build_does_not_change_it():
    genome = nas.Genome.from_dict(small())
    before = genome.to_dict()
    nas.build(genome)
    assert genome.to_dict() == before
    with pytest.raises(Exception):
        genome.name = "other"
    with pytest.raises(Exception):
        genome.cells["mine"].add_node("z")


@pytest.mark.parametrize(
    "edit, where, words",
    [
        (lambda s: s["cells"]["mine"]["edges"].append(["out", "a"]), "cells.mine.nodes.out", "output node cannot have outgoing"),
        (lambda s: s["cells"]["mine"]["edges"].extend([["a", "b"], ["b", "a"]]), "cells.mine", "cycle"),
        (lambda s: s["cells"]["mine"]["nodes"].update(c={"op": "identity"}), "cells.mine.nodes.c", "dangling"),
        (lambda s: s["cells"]["mine"]["nodes"]["a"].update(op="warp"), "nodes.a", "unknown op 'warp'"),
        (lambda s: s["cells"]["mine"]["nodes"]["a"].update(kernal=3), "nodes.a", "no parameter 'kernal'"),
        (lambda s: s["cells"]["mine"]["nodes"]["a"].update(kernel="big"), "nodes.a", "must be int"),
        (lambda s: s["cells"]["mine"]["nodes"]["b"].update(stride=1), "stages[1][0].nodes.out", "mismatch"),
        (lambda s: s["cells"]["mine"]["nodes"]["b"].update(out=4), "stages[1][0].nodes.out", "mismatch"),
        (lambda s: s["stages"][0].update(cell="nonesuch"), "stages[0].cell", "unknown cell"),
        (lambda s: s["stages"][0].update(repeats=0), "stages[0].repeats", "integer >= 1"),
        (lambda s: s.update(head=[{"op": "identity"}]), "head", "flat features"),
    ],
)
def test_invalid_genomes_are_rejected_naming_the_field_or_node(edit, where, words):
    spec = small()
    edit(spec)
    with pytest.raises(GenomeError) as caught:
        nas.Genome.from_dict(spec)
    assert where in str(caught.value) and words in str(caught.value)


def test_malformed_yaml_is_a_genome_error():
    with pytest.raises(GenomeError, match="malformed YAML"):
        nas.Genome.from_yaml("name: [unclosed")


def test_resnet50_matches_torchvision_parameter_count():
    assert nas.summarize(baselines.get("resnet50")).params == 25_557_032
