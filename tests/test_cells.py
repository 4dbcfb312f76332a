"""Behaviour of the xception, dwsep, fractal and se cell templates, the option-A shortcut and LeNet's subsampling."""
import importlib
import math

import networkx as nx
import pytest
import torch
from torch import nn

import nas
from nas import cellgraph
from nas.templates.registry import TEMPLATES, CellContext
from nas.templates.se import residual_branches
from nas.compiler import compile_cell
from nas.errors import GenomeError
from nas.expand import expand, infer_cell
from nas.frozen import freeze
from nas.ops.registry import get_op

timm_xception = importlib.import_module("timm.models.xception")  # the attribute is shadowed by a model function


def make_cell(name, params=None, c_in=8, out=16, stride=1, index=0):
    spec = TEMPLATES.get(name)
    graph = spec.factory(CellContext(c_in, out, stride, index, spec.resolve(freeze(params or {}), "test")))
    cellgraph.validate_structure(graph, "test")
    return graph


def compiled(graph, shape):
    return compile_cell(infer_cell(graph, shape, "test"))


def genome(stages, size=8, channels=3, stem=None, cells_=None, num_classes=10):
    spec = {"name": "t", "input": {"channels": channels, "size": size}, "num_classes": num_classes,
            "stem": stem or [{"op": "identity"}], "stages": stages, "head": [{"op": "global_avgpool"}]}
    if cells_:
        spec["cells"] = cells_
    return nas.Genome.from_dict(spec)


def randomize_batchnorm(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)


# ----- xception -----
@pytest.mark.parametrize("c_in, out, reps, stride, start_with_relu, grow_first", [
    (8, 16, 2, 2, False, True),   # entry-flow block 1
    (8, 16, 2, 2, True, True),    # entry-flow blocks 2-3
    (16, 16, 3, 1, True, True),   # middle flow: identity shortcut
    (16, 24, 2, 2, True, False),  # exit-flow block: widens in the last separable conv
])
def test_xception_cell_computes_timm_block(c_in, out, reps, stride, start_with_relu, grow_first):
    torch.manual_seed(0)
    reference = timm_xception.Block(c_in, out, reps, stride, start_with_relu=start_with_relu, grow_first=grow_first)
    randomize_batchnorm(reference)
    params = {"reps": reps, "start_with_relu": start_with_relu, "grow_first": grow_first}
    built = compiled(make_cell("xception", params, c_in, out, stride), (c_in, 9, 9))
    nas.transfer_weights(reference.eval(), built.eval(), (1, c_in, 9, 9))
    x = torch.randn(2, c_in, 9, 9)
    with torch.no_grad():
        expected, got = reference(x.clone()), built(x.clone())
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_xception_cell_structure():
    graph = make_cell("xception", {"reps": 3, "grow_first": False}, c_in=8, out=16, stride=2)
    seps = [n for n in graph if graph.nodes[n].get("op") == "sepconv"]
    assert [graph.nodes[n]["params"]["out"] for n in seps] == [8, 8, 16]
    assert all(graph.nodes[n]["params"]["preact"] for n in seps)
    assert graph.nodes["pool"]["params"] == {"kernel": 3, "stride": 2, "padding": 1}
    assert graph.nodes["skip"]["params"]["stride"] == 2
    assert list(graph.predecessors("out")) == ["pool", "skip"]
    same = make_cell("xception", {"reps": 2, "start_with_relu": False}, c_in=16, out=16)
    assert "skip" not in same and "pool" not in same and set(same.predecessors("out")) == {"sep2", "in"}
    assert same.nodes["sep1"]["params"]["act"] == "none" and same.nodes["sep2"]["params"]["act"] == "relu"


# ----- dwsep -----
def test_dwsep_is_depthwise_then_pointwise_with_norm_and_activation_after_each():
    graph = make_cell("dwsep", {"act": "relu6"}, c_in=8, out=16, stride=2)
    module = compiled(graph, (8, 10, 10))
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.groups, c.stride, c.kernel_size) for c in convs] == [
        (8, 8, 8, (2, 2), (3, 3)), (8, 16, 1, (1, 1), (1, 1))]
    kinds = [type(m) for m in module.modules() if not isinstance(m, nn.Sequential)]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU6, nn.Conv2d, nn.BatchNorm2d, nn.ReLU6]
    assert module(torch.randn(2, 8, 10, 10)).shape == (2, 16, 5, 5)


# ----- fractal -----
@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_fractal_expansion_rule(columns):
    graph = make_cell("fractal", {"columns": columns}, c_in=3, out=8)
    convs = [n for n in graph if graph.nodes[n].get("op") == "conv"]
    assert len(convs) == 2**columns - 1
    for k in range(columns):  # column k holds 2^k convs, all in one chain from the input
        assert sum(graph.nodes[n]["column"] == k for n in convs) == 2**k
    longest = nx.dag_longest_path(graph)
    assert sum(graph.nodes[n].get("op") == "conv" for n in longest) == 2 ** (columns - 1)
    joins = [n for n in graph if graph.in_degree(n) > 1]
    for join in joins:  # every join averages conv outputs of distinct columns, with drop-path on it
        attrs = graph.nodes[join]
        assert attrs["merge"] == "mean" and attrs["drop_path"] == 0.15 and attrs["global_drop"] == 0.5
        sources = [graph.nodes[s]["column"] for s in graph.predecessors(join)]
        assert len(set(sources)) == len(sources) and None not in sources
    assert graph.in_degree("out") == columns


def test_fractal_joins_of_four_columns_match_the_paper_figure():
    graph = make_cell("fractal", {"columns": 4}, c_in=3, out=8)
    fan_in = [graph.in_degree(n) for n in cellgraph.topological_order(graph) if graph.in_degree(n) > 1]
    assert fan_in == [2, 3, 2, 4]


def test_fractal_stride_pools_after_the_last_join_and_dropout_follows_each_conv():
    graph = make_cell("fractal", {"columns": 2, "dropout": 0.2}, c_in=3, out=8, stride=2)
    assert graph.nodes["out"]["op"] == "maxpool" and graph.nodes["out"]["params"]["kernel"] == 2
    drops = [n for n in graph if graph.nodes[n].get("op") == "dropout"]
    assert len(drops) == 3 and all(graph.nodes[n]["column"] is not None for n in drops)
    assert compiled(graph, (3, 8, 8))(torch.randn(2, 3, 8, 8)).shape == (2, 8, 4, 4)


def constant_join_genome(drop_path, global_drop):
    """One cell whose three 1x1 convs (columns 0, 1, 2) will output the constants 1, 2, 4 into one mean join."""
    conv = {"op": "conv", "out": 1, "kernel": 1, "bias": True, "norm": "none", "act": "none"}
    cell = {"nodes": {"a": {**conv, "column": 0}, "b": {**conv, "column": 1}, "c": {**conv, "column": 2},
                      "out": {"op": "identity", "merge": "mean", "drop_path": drop_path, "global_drop": global_drop}},
            "edges": [["in", "a"], ["in", "b"], ["in", "c"], ["a", "out"], ["b", "out"], ["c", "out"]]}
    g = genome([{"cell": "join3"}], size=1, channels=1, cells_={"join3": cell}, num_classes=1)
    net = nas.build(g)
    with torch.no_grad():
        for module, value in zip([m for m in net.modules() if isinstance(m, nn.Conv2d)], (1.0, 2.0, 4.0)):
            module.weight.zero_()
            module.bias.fill_(value)
        net.classifier.weight.fill_(1.0)
        net.classifier.bias.zero_()
    return net


SUBSET_MEANS = {1.0: {0}, 2.0: {1}, 4.0: {2}, 1.5: {0, 1}, 2.5: {0, 2}, 3.0: {1, 2}, 7 / 3: {0, 1, 2}}


def kept_columns(value):
    matches = [kept for mean, kept in SUBSET_MEANS.items() if abs(mean - value) < 1e-5]
    assert len(matches) == 1, f"{value} is not the mean of a non-empty subset of 1, 2, 4"
    return matches[0]


def test_local_drop_path_drops_inputs_in_training_but_keeps_one_and_eval_is_the_plain_mean():
    torch.manual_seed(0)
    net = constant_join_genome(drop_path=0.5, global_drop=0.0)
    x = torch.zeros(1, 1, 1, 1)
    net.eval()
    assert net(x).item() == pytest.approx(7 / 3)
    net.train()
    kept = [kept_columns(net(x).item()) for _ in range(400)]
    sizes = [len(k) for k in kept]
    assert min(sizes) >= 1 and 1 in sizes and 3 in sizes
    for column in range(3):  # each input survives about half the time (a bit more: one always survives)
        rate = sum(column in k for k in kept) / len(kept)
        assert 0.45 < rate < 0.72
    net.eval()
    assert net(x).item() == pytest.approx(7 / 3)


def test_global_drop_path_keeps_only_the_chosen_column():
    torch.manual_seed(1)
    net = constant_join_genome(drop_path=0.5, global_drop=0.9)
    assert net.num_columns == 3 and net.global_drop == 0.9
    x = torch.zeros(1, 1, 1, 1)
    cell = [m for m in net.modules() if isinstance(m, nas.modules.DagCell)][0]
    chosen = []
    net.train()
    for _ in range(200):
        value = net(x).item()
        if cell.global_column >= 0:
            assert kept_columns(value) == {cell.global_column}
            chosen.append(cell.global_column)
    assert 150 < len(chosen) < 200 and set(chosen) == {0, 1, 2}
    net.eval()
    assert net(x).item() == pytest.approx(7 / 3) and cell.global_column == -1


def test_global_column_batch_trains_only_that_column_of_every_block():
    torch.manual_seed(2)
    g = genome([{"cell": "fractal", "out": 4, "stride": 2, "params": {"columns": 3, "global_drop": 0.99}}] * 2)
    plans = expand(g).stages
    net = nas.build(g).train()
    assert net.num_columns == 3
    checked = 0
    for _ in range(3):
        net.zero_grad()
        net(torch.randn(4, 3, 8, 8)).sum().backward()
        column = net.stages[0][0].global_column
        if column < 0:
            continue
        checked += 1
        for stage, plan in zip(net.stages, plans):
            order = [n for n in cellgraph.topological_order(plan[0].graph) if n != "in"]
            for name, module in zip(order, stage[0].ops):
                if plan[0].graph.nodes[name]["op"] != "conv":
                    continue
                grad = module[0].weight.grad
                trained = grad is not None and grad.abs().sum() > 0
                assert trained == (plan[0].graph.nodes[name]["column"] == column), (name, column)
    assert checked >= 2


def test_fractal_in_eval_ignores_drop_path():
    torch.manual_seed(3)
    stage = {"cell": "fractal", "out": 4, "stride": 2, "params": {"columns": 3, "drop_path": 0.5, "global_drop": 0.5}}
    plain = {**stage, "params": {"columns": 3, "drop_path": 0.0, "global_drop": 0.0}}
    dropping, reference = nas.build(genome([stage])), nas.build(genome([plain]))
    reference.load_state_dict(dropping.state_dict())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(dropping.eval()(x), reference.eval()(x))
        assert torch.equal(reference.train()(x), reference(x))  # no drop-path: deterministic in training
        outputs = [dropping.train()(x) for _ in range(8)]
    assert any(not torch.allclose(outputs[0], o) for o in outputs[1:])


# ----- se -----
def test_se_goes_on_the_residual_branch_before_the_add():
    graph = make_cell("se", {"cell": "basic", "ratio": 0.25}, c_in=8, out=16, stride=2)
    assert list(graph.predecessors("out")) == ["se", "shortcut"]
    assert list(graph.predecessors("se")) == ["conv2"] and graph.nodes["se"]["params"]["ratio"] == 0.25
    assert residual_branches(graph)[0] == "shortcut"
    identity = make_cell("se", {"cell": "basic"}, c_in=16, out=16)
    assert list(identity.predecessors("out")) == ["se", "in"]


def test_se_goes_before_the_branch_drop_path():
    graph = make_cell("se", {"cell": "basic", "params": {"drop_path": 0.1}}, c_in=16, out=16)
    assert list(graph.predecessors("drop_path")) == ["se"] and list(graph.predecessors("se")) == ["conv2"]


def test_se_on_the_output_of_a_cell_that_is_not_residual():
    graph = make_cell("se", {"cell": "dwsep"}, c_in=8, out=16, stride=2)
    assert graph.nodes["out"]["op"] == "se" and list(graph.predecessors("out")) == ["body"]
    assert graph.nodes["body"]["op"] == "pwconv"
    fractal = make_cell("se", {"cell": "fractal", "params": {"columns": 2}}, c_in=8, out=16)
    assert fractal.nodes["out"]["op"] == "se" and fractal.in_degree("body") == 2  # the join is not a residual add


def test_se_wrapper_around_bottleneck_computes_the_bottleneck_se_option():
    torch.manual_seed(4)
    inner = {"stride_on": "1x1"}
    wrapped = genome([{"cell": "se", "out": 32, "stride": 2, "params": {"cell": "bottleneck", "params": inner}}])
    direct = genome([{"cell": "bottleneck", "out": 32, "stride": 2, "params": {**inner, "se": 0.0625}}])
    a, b = nas.build(wrapped).eval(), nas.build(direct).eval()
    randomize_batchnorm(a)
    nas.transfer_weights(a, b, (1, 3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


def test_se_genome_round_trips_and_reports_bad_inner_cells():
    g = genome([{"cell": "se", "out": 8, "params": {"cell": "xception", "params": {"reps": 2}}}])
    assert nas.Genome.from_yaml(g.to_yaml()) == g
    with pytest.raises(GenomeError, match="unknown cell 'nonesuch'"):
        genome([{"cell": "se", "out": 8, "params": {"cell": "nonesuch"}}])
    with pytest.raises(GenomeError, match="no parameter 'depth'"):
        genome([{"cell": "se", "out": 8, "params": {"cell": "basic", "params": {"depth": 3}}}])


# ----- option-A shortcut, LeNet subsampling -----
def test_pad_shortcut_subsamples_and_appends_zero_channels():
    module = get_op("pad_shortcut").build(3, {"out": 8, "stride": 2})
    x = torch.randn(2, 3, 7, 7)
    y = module(x)
    assert y.shape == (2, 8, 4, 4) and not list(module.parameters())
    torch.testing.assert_close(y[:, :3], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 3:]) == 0
    with pytest.raises(ValueError):
        get_op("pad_shortcut").build(8, {"out": 4, "stride": 1})


def test_basic_block_with_option_a_shortcut_has_no_shortcut_weights():
    pad = make_cell("basic", {"shortcut": "pad"}, c_in=16, out=32, stride=2)
    projection = make_cell("basic", {}, c_in=16, out=32, stride=2)
    assert pad.nodes["shortcut"]["op"] == "pad_shortcut"
    count = [sum(p.numel() for p in compiled(g, (16, 8, 8)).parameters()) for g in (pad, projection)]
    assert count[1] - count[0] == 16 * 32 + 2 * 32  # the 1x1 projection and its BN
    with pytest.raises(GenomeError, match="shortcut must be"):
        genome([{"cell": "basic", "out": 8, "stride": 2, "params": {"shortcut": "dense"}}])


def test_subsample_sums_each_window_times_a_coefficient_plus_a_bias_then_squashes():
    module = get_op("subsample").build(2, {"kernel": 2, "act": "tanh"})
    layer = module[0]
    assert sum(p.numel() for p in module.parameters()) == 4
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -1.0]))
        layer.bias.copy_(torch.tensor([0.1, 0.2]))
    x = torch.arange(32, dtype=torch.float32).reshape(1, 2, 4, 4) / 32
    expected = torch.empty(1, 2, 2, 2)
    for c, (w, b) in enumerate([(0.5, 0.1), (-1.0, 0.2)]):
        for i in range(2):
            for j in range(2):
                expected[0, c, i, j] = math.tanh(w * x[0, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].sum().item() + b)
    torch.testing.assert_close(module(x), expected)
