"""Plug-ins: a strategy, a search-space kind and an op from another installed package (entry points),
used by name from the CLI, recorded in the run so that --resume finds them again, and clear lines for
a broken or a missing plug-in; registrations given from Python (a strategy given from Python to
`nas.run_search` runs in test_search_run.py's duplicates test).

The plug-in package is written into tmp_path with a ``.dist-info`` folder holding its entry points and
put on sys.path: importlib.metadata finds it there as it finds any installed distribution, and the
shared environment is left as it was."""
import json
import sys
import textwrap

import pytest
import torch

import nas
from nas import registry
from nas.cli import main
from nas.genome import Genome
from nas.ops.registry import OPS, op
from nas.plugins import PluginError
from nas.search.strategies import STRATEGIES, register_strategy
from nas.templates.registry import TEMPLATES
from nas.spaces import KINDS, load_space
from tests.test_search_run import HandMade

PACKAGE = "nas_demo_plugin"
DISTRIBUTION = "nas-demo-plugin"

CODE = {
    "__init__.py": '''
        """A plug-in for nas: a strategy, a search-space kind that needs no file, an op."""
        from nas.search.strategies.random_search import RandomSearcher
        from nas.spaces.fields import Fields
        from nas.spaces.stages import StageSpace

        TINY = {
            "kind": "demo_tiny", "name": "demo_tiny", "input": {"channels": 1, "size": 8}, "num_classes": 10,
            "stem": {"out": 8, "act": "relu"},
            "stages": [{"width": [8, 12], "stride": 1}, {"width": [12, 16], "stride": 2}],
            "repeats": [1],
            "families": {"residual": {"template": "basic", "params": {"se": [0.0, 0.25]}}},
            "head": [{"op": "global_avgpool"}],
        }


        class DemoSearcher(RandomSearcher):
            """Random search under another name: what a user's own strategy looks like."""
            name = "demo"


        class DemoTinySpace(StageSpace):
            def __init__(self, spec, **kwargs):
                super().__init__(Fields({**TINY, **spec.data}, spec.where), **kwargs)
    ''',
    "ops.py": '''
        from torch import nn

        from nas.ops.registry import op


        class Scale(nn.Module):
            def __init__(self, factor):
                super().__init__()
                self.factor = factor

            def forward(self, x):
                return x * self.factor


        @op("demo_scale", factor=2.0)
        def demo_scale(c_in, p):
            """Multiply by a constant factor."""
            return Scale(p["factor"])
    ''',
    "cells.py": '''
        from nas.cellgraph import chain
        from nas.templates.registry import template


        @template("demo_double", scale_widths=("width",), width=8)
        def demo_double(ctx):
            """Two 3x3 convolutions of `width` channels, the first with the cell's stride."""
            width = ctx.params["width"]
            return chain([{"op": "conv", "out": width, "kernel": 3, "stride": ctx.stride},
                          {"op": "conv", "out": width, "kernel": 3}], "demo_double")
    ''',
}
ENTRY_POINTS = f"""
[nas.strategies]
demo = {PACKAGE}:DemoSearcher
broken = {PACKAGE}.nothere:Nope

[nas.spaces]
demo_tiny = {PACKAGE}:DemoTinySpace

[nas.ops]
demo_scale = {PACKAGE}.ops

[nas.templates]
demo_double = {PACKAGE}.cells
"""
FAST = ["--epochs", "1", "--train-limit", "200", "--concurrent", "1", "--quiet"]


def rescan_all() -> None:
    for each in registry._REGISTRIES:
        each.rescan()


@pytest.fixture()
def clean_registries():
    """Every registry put back as it was after the test (plug-ins loaded by it forgotten)."""
    for each in registry._REGISTRIES:
        each.names()  # the built-in entries loaded first (on first use), so that they are among those put back
    saved = [(r, dict(r._entries), dict(r._origins)) for r in registry._REGISTRIES]
    rescan_all()
    yield
    for r, entries, origins in saved:
        r._entries, r._origins = entries, origins
    rescan_all()
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.fixture()
def plugin(tmp_path, monkeypatch, clean_registries):
    """The plug-in package 'installed' (on sys.path with its dist-info)."""
    site = tmp_path / "site"
    package = site / PACKAGE
    package.mkdir(parents=True)
    for name, code in CODE.items():
        (package / name).write_text(textwrap.dedent(code))
    info = site / f"{PACKAGE}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    rescan_all()
    return site


def forget_plugins():
    """As a fresh process would see it: the plug-in's entries gone, `site` on sys.path or not."""
    for r in registry._REGISTRIES:
        for name in list(r._origins):
            del r._entries[name], r._origins[name]
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    rescan_all()


def test_listing_finds_plugins_without_importing_them(plugin):
    assert {"demo", "broken"} <= set(STRATEGIES) and "demo_tiny" in KINDS.names() and "demo_scale" in OPS.names()
    assert PACKAGE not in sys.modules
    assert STRATEGIES.origin("demo") is None  # not loaded yet
    assert "demo" in STRATEGIES and PACKAGE in sys.modules
    origin = STRATEGIES.origin("demo")
    assert (origin.distribution, origin.version, origin.value) == (DISTRIBUTION, "0.1", f"{PACKAGE}:DemoSearcher")


def test_a_plugin_op_and_cell_template_are_used_in_a_genome(plugin):
    genome = Genome.from_dict({"name": "scaled", "input": {"channels": 1, "size": 8}, "num_classes": 10,
                               "stem": [{"op": "conv", "out": 4, "kernel": 3}, {"op": "demo_scale", "factor": 0.5}],
                               "stages": [{"cell": "basic", "out": 4},
                                          {"cell": "demo_double", "stride": 2, "params": {"width": 6}}],
                               "head": [{"op": "global_avgpool"}]})
    model = nas.build(genome).eval()
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert OPS.get("demo_scale").defaults == {"factor": 2.0}
    assert OPS.origin("demo_scale").distribution == DISTRIBUTION
    assert TEMPLATES.origin("demo_double").value == f"{PACKAGE}.cells"
    assert nas.summarize(genome).params > 0


def test_a_space_file_names_a_plugin_kind(plugin, tmp_path):
    (tmp_path / "mine.yaml").write_text("kind: demo_tiny\nname: mine\nstages: [{width: [4], stride: 1}]\n")
    space = load_space(str(tmp_path / "mine.yaml"), input_channels=1, input_size=8, num_classes=10)
    assert type(space).__name__ == "DemoTinySpace" and len(space.slots) == 1
    assert KINDS.origin("demo_tiny").distribution == DISTRIBUTION


def test_a_broken_plugin_is_one_line_naming_its_entry_point(plugin, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["search", "--strategy", "broken", "--space", "demo_tiny", "--out", str(out), *FAST])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.count("\n") == 0, error
    assert "'broken'" in error and f"{PACKAGE}.nothere:Nope" in error and DISTRIBUTION in error
    assert "ModuleNotFoundError" in error
    assert not out.exists()


def test_search_and_resume_with_a_plugin_strategy_and_space(plugin, tmp_path, monkeypatch, ray_session, capsys):
    out = tmp_path / "run"
    assert main(["search", "--strategy", "demo", "--space", "demo_tiny", "--trials", "2", "--out", str(out),
                 *FAST]) == 0
    saved = json.loads((out / "search.json").read_text())
    used = {(p["group"], p["name"]): p for p in saved["plugins"]}
    assert used[("nas.strategies", "demo")]["distribution"] == DISTRIBUTION
    assert used[("nas.strategies", "demo")]["version"] == "0.1"
    assert used[("nas.spaces", "demo_tiny")]["value"] == f"{PACKAGE}:DemoTinySpace"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["strategy"] == "demo" and summary["counts"]["completed"] == 2

    # a new session: the plug-in is found again from the run's record and the entry points
    forget_plugins()
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == 0
    assert STRATEGIES.origin("demo").distribution == DISTRIBUTION
    assert json.loads((out / "trials.json").read_text())["counts"]["completed"] == 2

    # where the plug-in is not installed, --resume says which one is missing
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(plugin)])
    forget_plugins()
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "not installed" in error and DISTRIBUTION in error and "demo" in error, error


def test_registering_from_python_and_duplicates(clean_registries):
    register_strategy("handmade", HandMade)
    assert STRATEGIES.get("handmade") is HandMade and STRATEGIES.origin("handmade") is None
    with pytest.raises(nas.NasError, match="already registered"):
        register_strategy("random", HandMade)
    with pytest.raises(TypeError, match="SpaceSearcher"):
        register_strategy("notone", dict)

    @op("py_identity")
    def py_identity(c_in, p):
        return torch.nn.Identity()

    assert "py_identity" in OPS
    with pytest.raises(nas.NasError, match="unknown strategy 'nope'"):
        STRATEGIES.get("nope")
