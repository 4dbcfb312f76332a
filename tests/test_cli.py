"""The genome commands: `nas baselines`, `nas build`, `nas scale`, `nas draw`, their output and their errors."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

import nas
from nas import baselines
from nas.cli import main
from nas.draw import distinct_cells, figure, layout_cell, node_lines, op_text
from nas.expand import expand

TINY = {
    "name": "tiny",
    "input": {"channels": 3, "size": 16},
    "num_classes": 4,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [
        {"cell": "basic", "out": 8, "repeats": 2},
        {"cell": "dense", "params": {"layers": 3, "growth": 4}},
        {"cell": "mine", "out": 16, "stride": 2},
    ],
    "head": [{"op": "global_avgpool"}],
    "cells": {
        "mine": {
            "nodes": {
                "a": {"op": "conv", "out": "@out", "kernel": 3, "stride": "@stride"},
                "b": {"op": "conv", "out": "@out", "kernel": 1, "stride": "@stride"},
                "out": {"op": "conv", "out": "@out", "kernel": 1, "merge": "concat"},
            },
            "edges": [["in", "a"], ["in", "b"], ["a", "out"], ["b", "out"]],
        }
    },
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    return path


# ----- nas build -----
def test_build_resnet50_json_has_torchvision_params_and_stage_shapes(capsys):
    code, out, err = run(capsys, "build", "resnet50", "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["name"] == "resnet50"
    assert report["params"] == 25_557_032
    assert 8.17e9 < report["flops"] < 8.19e9  # 2 FLOPs per multiply-add: torchvision's 4.09 GMACs
    assert report["output_shape"] == [1000]
    shapes = {s["name"]: s["shape"] for s in report["stages"]}
    assert shapes["stem"] == [64, 56, 56] and shapes["stage1"] == [256, 56, 56] and shapes["stage4"] == [2048, 7, 7]
    assert shapes["head"] == [2048]


def test_build_overrides_input_and_classes(capsys):
    code, out, _ = run(capsys, "build", "resnet50", "--input", "1x64x96", "--classes", "10", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["input_shape"] == [1, 64, 96] and report["output_shape"] == [10]
    assert {s["name"]: s["shape"] for s in report["stages"]}["stage4"] == [2048, 2, 3]
    # only the first conv (3 -> 1 input channel) and the classifier (1000 -> 10) change
    assert report["params"] == 25_557_032 - 2 * 64 * 7 * 7 - 990 * 2049
    assert report["flops"] < 8.18e9 / 5


def test_build_prints_a_readable_table(capsys):
    code, out, _ = run(capsys, "build", "resnet50")
    assert code == 0
    assert "25,557,032" in out and "8.18 GFLOPs" in out
    stage4 = next(line for line in out.splitlines() if line.startswith("stage4"))
    assert stage4.split() == ["stage4", "bottleneck", "3", "2", "2048x7x7"]


def test_build_reads_yaml_and_json_genome_files(capsys, tmp_path, tiny_file):
    genome = nas.Genome.from_dict(TINY)
    json_file = genome.save(tmp_path / "tiny.json")
    reports = []
    for path in (tiny_file, json_file):
        code, out, _ = run(capsys, "build", path, "--json")
        assert code == 0
        reports.append(json.loads(out))
    assert reports[0] == reports[1]
    assert reports[0]["params"] == nas.summarize(genome).params
    assert reports[0]["params"] == sum(p.numel() for p in nas.build(genome).parameters())
    assert reports[0]["fingerprint"] == genome.fingerprint()
    assert [s["shape"] for s in reports[0]["stages"]][1:4] == [[8, 16, 16], [20, 16, 16], [16, 8, 8]]


# ----- nas baselines -----
def test_baselines_json_lists_every_baseline_with_its_summary(capsys, monkeypatch):
    # a few baselines keep this fast; the command itself walks `names()`, whatever is registered
    subset = [n for n in ("lenet5", "resnet20", "resnet50") if n in baselines.names()]
    monkeypatch.setattr(baselines, "names", lambda: subset)
    code, out, _ = run(capsys, "baselines", "--json")
    records = json.loads(out)
    assert code == 0 and [r["name"] for r in records] == subset
    assert out == json.dumps(records, indent=2) + "\n"  # written record by record, the same text as one dump
    for record in records:
        cost = nas.summarize(baselines.get(record["name"]))
        assert (record["params"], record["flops"]) == (cost.params, cost.flops)
        assert record["input_shape"] == list(cost.input_shape)
    assert next(r for r in records if r["name"] == "resnet50")["params"] == 25_557_032


def test_baselines_table_has_a_row_per_baseline(capsys, monkeypatch):
    monkeypatch.setattr(baselines, "names", lambda: ["resnet50", "resnet20"] if "resnet20" in baselines._files() else ["resnet50"])
    code, out, _ = run(capsys, "baselines")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["baseline", "params"]
    row = next(line for line in lines if line.startswith("resnet50 "))
    assert "25,557,032" in row and "8.18 G" in row and "3x224x224" in row
    assert len(lines) == 2 + len(baselines.names())


def test_a_broken_baseline_is_reported_and_the_rest_still_listed(capsys, monkeypatch):
    real_get = baselines.get

    def get(name):
        if name == "broken":
            raise nas.GenomeError("stages[0].cell", "unknown cell 'nonesuch'")
        return real_get(name)

    monkeypatch.setattr(baselines, "names", lambda: ["broken", "resnet50"])
    monkeypatch.setattr(baselines, "get", get)
    code, out, err = run(capsys, "baselines", "--json")
    assert code == 1
    assert [r["name"] for r in json.loads(out)] == ["resnet50"]
    assert err.strip().splitlines() == ["nas baselines: error: baseline 'broken': stages[0].cell: unknown cell 'nonesuch'"]


# ----- nas scale -----
def test_scale_writes_the_scaled_genome(capsys, tmp_path):
    path = tmp_path / "wide.yaml"
    code, out, _ = run(capsys, "scale", "resnet50", "--width", "0.5", "--depth", "1.5", "--resolution", "160", "-o", path)
    assert code == 0 and str(path) in out
    scaled = nas.Genome.load(path)
    base = baselines.get("resnet50")
    assert scaled == nas.scale(base, width=0.5, depth=1.5, resolution=160)
    assert [s.repeats for s in scaled.stages] == [math.ceil(s.repeats * 1.5) for s in base.stages]
    assert [s.out for s in scaled.stages] == [s.out // 2 for s in base.stages]
    assert scaled.input.size == (160, 160)


def test_scale_prints_yaml_without_output_file(capsys, tiny_file):
    code, out, _ = run(capsys, "scale", tiny_file, "--depth", "2", "--name", "deeper")
    assert code == 0
    genome = nas.Genome.from_yaml(out)
    assert genome.name == "deeper"
    assert [s.repeats for s in genome.stages] == [4, 1, 2]  # the dense block deepens by its layers instead
    assert genome.stages[1].params["layers"] == 6


# ----- nas draw -----
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_draw_writes_one_figure(capsys, tmp_path, tiny_file, suffix):
    path = tmp_path / f"tiny{suffix}"
    code, out, _ = run(capsys, "draw", tiny_file, "-o", path)
    assert code == 0 and str(path) in out
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG") and len(data) > 20_000
    else:
        text = data.decode()
        for label in ("conv 3x3 /2 16", "concat of 2", "add (+) of 2", "act relu  [output]", "tiny:", "stage3: mine"):
            assert label in text, label


def test_drawing_dedupes_cells_and_labels_nodes():
    genome = baselines.get("resnet50")
    plan = expand(genome)
    groups = distinct_cells(genome, plan)
    # stem, stage 1's first (projection, stride 1) cell, the identity cell of every stage (at four
    # widths), the strided projection cell of stages 2-4 (at three widths), head: each drawn once
    assert len(groups) == 5
    assert [g.places for g in groups[2:4]] == [
        ["stage1.2", "stage1.3", "stage2.2", "stage2.3", "stage2.4"] + [f"stage3.{i}" for i in range(2, 7)]
        + ["stage4.2", "stage4.3"], ["stage2.1", "stage3.1", "stage4.1"]]
    assert "stage1.2-3" in groups[2].title() and "also at 512, 1024, 2048 input channels" in groups[2].title()
    conv = groups[3].plan.graph
    labels = {n: node_lines(conv, n) for n in conv}
    assert labels["conv2"] == ["conv 3x3 /2 128"]
    assert labels["out"] == ["add (+) of 2", "act relu  [output]"]
    assert labels["conv3"] == ["conv 1x1 512", "act=none"]
    fig = figure(genome)
    assert len(fig.axes) == 1 + len(groups)


def test_op_labels_show_kernel_stride_width_and_non_defaults():
    assert op_text("conv", {"out": 64, "kernel": 3, "stride": 2, "groups": 32}) == ("conv 3x3 /2 64 g32", [])
    assert op_text("maxpool", {"kernel": 3, "stride": 2, "padding": 1}) == ("maxpool 3x3 /2", ["padding=1"])
    assert op_text("act", {"kind": "relu"}) == ("act relu", [])
    assert op_text("conv", {"out": 8, "kernel": 1, "preact": True, "act": "none"}) == ("conv 1x1 8", ["preact", "act=none"])


def test_layout_gives_long_edges_lanes_and_dense_blocks_a_bus():
    genome = nas.Genome.from_dict(TINY)
    plan = expand(genome)
    basic = plan.stages[0][1].graph  # identity shortcut: in -> out skips two layers
    layout = layout_cell(basic)
    assert layout.bus == [] and len(layout.routes[("in", "out")]) == 4
    assert layout.routes[("in", "out")][1][0] != layout.position["conv1"][0]  # its own lane, beside the convs
    small_dense = plan.stages[1][0].graph  # 3 layers: few long edges, so lanes
    assert layout_cell(small_dense).bus == []
    as_bus = layout_cell(small_dense, max_dummies=0)
    assert as_bus.bus and all(as_bus.position[v][1] - as_bus.position[u][1] > 1 for u, v in as_bus.bus)
    assert set(as_bus.routes) | set(as_bus.bus) == set(small_dense.edges)
    spec = json.loads(json.dumps(TINY))
    spec["stages"][1]["params"]["layers"] = 8  # 8 layers: 2 nodes each, every one reading all before it
    big_dense = expand(nas.Genome.from_dict(spec)).stages[1][0].graph
    assert len(layout_cell(big_dense).bus) > 20


# baselines with big or unusual cells: dense blocks, fractals, LeNet's C3, inception, xception, SE
BIG_CELLS = ["densenet_40_12", "fractalnet", "lenet5", "googlenet", "xception_cifar", "se_resnet50"]


@pytest.mark.parametrize("name", BIG_CELLS)
def test_big_cells_lay_out_with_every_node_placed_and_every_edge_drawn_once(name):
    if name not in baselines.names():
        pytest.skip(f"no baseline {name!r} yet")
    genome = baselines.get(name)
    for group in distinct_cells(genome, expand(genome)):
        graph = group.plan.graph
        layout = layout_cell(graph)
        assert set(layout.position) == set(graph)
        assert set(layout.routes).isdisjoint(layout.bus)
        assert set(layout.routes) | set(layout.bus) == set(graph.edges)
        spots = [(round(x, 6), y) for x, y in layout.position.values()]
        assert len(spots) == len(set(spots)), "two nodes on one spot"
        for (u, v), route in layout.routes.items():  # routes go down one layer per step
            assert [y for _, y in route] == list(range(layout.position[u][1], layout.position[v][1] + 1))


# ----- bad input: one line, exit 2, no traceback -----
@pytest.fixture
def bad_files(tmp_path):
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("name: [unclosed\n")
    cyclic = tmp_path / "cyclic.yaml"
    spec = json.loads(json.dumps(TINY))
    spec["cells"]["mine"]["edges"] += [["a", "b"], ["b", "a"]]
    cyclic.write_text(yaml.safe_dump(spec))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "empty.yaml").write_text("")
    number_as_text = tmp_path / "number_as_text.yaml"  # YAML 1.1 reads 1.0e308 (no sign) as a string
    number_as_text.write_text(yaml.safe_dump({**TINY, "stem": [{"op": "conv", "out": {"mul": [8, "X"]}, "kernel": 3}]})
                              .replace("X", "1.0e308"))
    token_in_stem = tmp_path / "token_in_stem.yaml"
    token_in_stem.write_text(yaml.safe_dump({**TINY, "stem": [{"op": "conv", "out": {"mul": ["@out", 2]}, "kernel": 3}]}))
    return {"malformed": malformed, "cyclic": cyclic, "text": text, "binary": binary, "folder": tmp_path,
            "number_as_text": number_as_text, "token_in_stem": token_in_stem}


@pytest.mark.parametrize("argv, words", [
    (["build", "{folder}/missing.yaml"], "no such genome file"),
    (["build", "{malformed}"], "malformed YAML at line 2"),
    (["build", "{cyclic}"], "cells.mine: cell has a cycle"),
    (["build", "nonesuch"], "unknown baseline 'nonesuch'"),
    (["build", "{folder}"], "is a folder"),
    (["build", "{folder}/folder.yaml"], "folder.yaml: is a folder, not a genome file"),
    (["build", "{folder}/empty.yaml"], "empty.yaml: empty: no genome in it"),
    (["build", "{number_as_text}"], "got '1.0e308' (text: YAML reads a number in this form as a string"),
    (["build", "{token_in_stem}"], "unknown token '@out' in parameter 'out' (no tokens here: write a number)"),
    (["build", "{text}"], "not a genome file"),
    (["build", "{binary}"], "not a text file"),
    (["build", "resnet50", "--input", "3x32"], "--input: expected CxHxW"),
    (["build", "resnet50", "--input", "0x32x32"], "--input: expected CxHxW"),
    (["build", "resnet50", "--input", "threexbyx"], "--input: expected CxHxW"),
    (["build", "resnet50", "--classes", "0"], "--classes: must be a positive integer"),
    (["scale", "resnet50", "--width", "-1"], "--width: must be a finite positive number"),
    (["scale", "{malformed}", "--width", "2"], "malformed YAML"),
    (["draw", "resnet50", "-o", "{folder}/x.pdf"], "suffix must be one of .png, .svg"),
    (["draw", "nonesuch", "-o", "{folder}/x.png"], "unknown baseline"),
    (["draw", "{cyclic}", "-o", "{folder}/x.png"], "cycle"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, bad_files, argv, words):
    code, out, err = run(capsys, *(a.format(**bad_files) for a in argv))
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith(f"nas {argv[0]}: error: ") and words in lines[0], err
    assert not (bad_files["folder"] / "x.png").exists()


def test_the_console_command_reports_errors_without_a_traceback():
    command = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())"]
    bad = subprocess.run([*command, "build", "resnet50", "--input", "3x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["nas build: error: --input: expected CxHxW with positive integers, "
                                               "e.g. 3x224x224; got '3x'"]


def test_a_reader_that_went_away_ends_the_listing_quietly():
    """`nas baselines --json | head -c 10`: once the pipe's reader is gone, exit 0 with nothing on stderr.
    (One listing: every command's output goes through `nas.cli.main`, which ends a broken pipe quietly.)"""
    command = ["baselines", "--json"]
    import os

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write meets a broken pipe
    try:
        done = subprocess.run([sys.executable, "-m", "nas", *command], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")
