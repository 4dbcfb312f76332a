"""Writing genomes is documented where users look: `nas ops` and `nas templates` list the registries
(names, parameters, types, defaults, meaning), and errors name what the user wrote, not internal nodes."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from nas.templates.registry import TEMPLATES
from nas.cli import main
from nas.errors import GenomeError
from nas.frozen import thaw
from nas.genome import Genome
from nas.ops.registry import OPS, OpSpec
from nas.params import REQUIRED


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----- nas ops / nas templates -----
@pytest.mark.parametrize("command, registry, key", [("ops", OPS, "ops"), ("templates", TEMPLATES, "templates")])
def test_the_json_listing_is_the_registry(capsys, command, registry, key):
    code, out, err = run(capsys, command, "--json")
    assert code == 0 and err == ""
    listed = json.loads(out)[key]
    assert [entry["name"] for entry in listed] == registry.names()
    for entry in listed:
        spec = registry.get(entry["name"])
        assert entry["meaning"] and "\n" not in entry["meaning"], f"{entry['name']} has no one-line meaning"
        assert [p["name"] for p in entry["params"]] == list(spec.defaults)
        for param in entry["params"]:
            default = spec.defaults[param["name"]]
            assert param["required"] == (default is REQUIRED)
            assert param["required"] or param["default"] == thaw(default)
            assert param["type"]


def test_a_newly_registered_op_is_listed_with_its_parameters(capsys, monkeypatch):
    def shiny(c_in, p):
        """A test op: does nothing useful.

        More words that only the full description shows."""

    monkeypatch.setitem(OPS._entries, "shiny", OpSpec("shiny", shiny, {"width": REQUIRED, "gain": 1.5, "flag": True},
                                                      shiny.__doc__.strip()))
    code, out, _ = run(capsys, "ops")
    assert code == 0
    block = out.split("shiny: ")[1].split("\n\n")[0]
    assert block.splitlines()[0] == "A test op: does nothing useful."
    assert [line.split() for line in block.splitlines()[1:]] == [
        ["width", "any", "required"], ["gain", "float", "(or", "int)", "1.5"], ["flag", "bool", "true"]]
    code, out, _ = run(capsys, "ops", "shiny")
    assert "More words that only the full description shows." in out


def test_the_text_listings_show_every_op_template_and_the_fields_every_node_and_stage_take(capsys):
    code, out, _ = run(capsys, "ops")
    assert code == 0
    assert all(f"\n{name}: " in f"\n{out}" for name in OPS.names())
    assert "Every node also takes:" in out and "merge" in out and "concat" in out
    assert "conv: " in out and "    out       int >= 1, or a token" in out
    code, out, _ = run(capsys, "templates")
    assert code == 0
    assert all(f"\n{name}: " in f"\n{out}" for name in TEMPLATES.names())
    assert "scaling: width multiplies growth; depth multiplies layers" in out  # the dense block
    assert "@in, @out, @stride" in out


def test_asking_for_an_unknown_op_or_template_is_one_line(capsys):
    for command in ("ops", "templates"):
        code, out, err = run(capsys, command, "conv2000")
        assert code == 2 and out == "" and err.count("\n") == 1 and "unknown" in err and "conv2000" in err


# ----- errors name what the user wrote -----
GENOME = {
    "name": "named",
    "input": {"channels": 3, "size": 16},
    "num_classes": 4,
    "stem": [{"op": "conv", "out": 8}, {"op": "conv", "out": 8}, {"op": "conv", "out": 8}],
    "stages": [
        {"cell": "basic", "out": 8},
        {"cell": "inception_a", "out": 16},
        {"cell": "mbconv", "out": 16, "params": {"expansion": 4}},
        {"cell": "chain", "out": 16},
    ],
    "head": [{"op": "global_avgpool"}, {"op": "linear", "out": 10}],
    "cells": {
        "inception_a": {
            "nodes": {
                "b1": {"op": "conv", "out": 8, "kernel": 1},
                "b2": {"op": "conv", "out": 8, "kernel": 3},
                "out": {"op": "identity", "merge": "concat"},
            },
            "edges": [["in", "b1"], ["in", "b2"], ["b1", "out"], ["b2", "out"]],
        },
        "chain": [{"op": "conv", "out": "@out"}, {"op": "conv", "out": "@out"}],
    },
}

ERRORS = {
    # an edit of GENOME: (the field the error names, words of its message)
    "stem list, shape": (lambda g: g["stem"].__setitem__(1, {"op": "maxpool", "kernel": 32}), "stem[1]", "cannot take input"),
    "stem list, parameter": (lambda g: g["stem"][1].update(kernal=3), "stem[1].kernal", "no parameter 'kernal'"),
    "stem list, unknown op": (lambda g: g["stem"][2].update(op="warp"), "stem[2]", "unknown op 'warp'"),
    "head list, type": (lambda g: g["head"][1].update(bias="yes"), "head[1].bias", "must be bool"),
    "explicit cell node": (lambda g: g["cells"]["inception_a"]["nodes"]["b2"].update(kernel="3"),
                           "cells.inception_a.nodes.b2.kernel", "must be int"),
    "explicit cell merge": (lambda g: (g["cells"]["inception_a"]["nodes"]["out"].update(merge="add"),
                                       g["cells"]["inception_a"]["nodes"]["b2"].update(out=4)),
                            "cells.inception_a.nodes.out", "at stages[1][0].nodes.out: channel or spatial mismatch"),
    "explicit list cell": (lambda g: g["cells"]["chain"][1].update(groups=3), "cells.chain[1]", "groups=3"),
    "template parameter": (lambda g: g["stages"][2]["params"].update(expansion="big"), "stages[2].params.expansion",
                           "must be float"),
    "template unknown parameter": (lambda g: g["stages"][2]["params"].update(expanse=2), "stages[2].params.expanse",
                                   "no parameter"),
}


def test_the_genome_above_is_valid():
    assert Genome.from_dict(GENOME).name == "named"


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_the_field_as_written(case):
    edit, where, words = ERRORS[case]
    spec = copy.deepcopy(GENOME)
    edit(spec)
    with pytest.raises(GenomeError) as caught:
        Genome.from_dict(spec)
    assert caught.value.where == where and words in caught.value.message, str(caught.value)
    assert ".nodes.n0" not in str(caught.value) and ".nodes.n1" not in str(caught.value)


@pytest.mark.parametrize("case", ["stem list, parameter", "explicit cell node", "template parameter"])
def test_nas_build_names_the_field_as_written(case, tmp_path, capsys):
    edit, where, words = ERRORS[case]
    spec = copy.deepcopy(GENOME)
    edit(spec)
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code, out, err = run(capsys, "build", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"nas build: error: {path}: {where}: ") and words in err


def test_the_documented_example_builds_and_its_error_is_the_one_shown(capsys, tmp_path):
    page = (Path(__file__).resolve().parents[1] / "docs" / "genome-format.md").read_text()
    section = page.split("## Writing a genome: explicit cells, tokens, identity")[1]
    example = section.split("```yaml\n")[1].split("```")[0]
    genome = Genome.from_yaml(example)
    assert [stage.cell for stage in genome.stages] == ["mixed", "mixed"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(example.replace("kernel: 3, stride", 'kernel: "3", stride'))
    code, _, err = run(capsys, "build", str(bad))
    shown = " ".join(section.split("a bad kernel in `b3` reads\n`")[1].split("`")[0].split())
    assert code == 2 and err.strip() == f"nas build: error: {bad}: {shown}"
