"""LeNet-5, the CIFAR ResNets and FractalNet checked against the figures their papers state."""
import networkx as nx
import pytest
import torch

import nas
from nas import baselines
from nas.expand import expand


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----- LeNet-5 (LeCun et al. 1998, section II.B and Table I) -----
# C3 map k reads the S2 maps listed in row k (Table I of the paper).
C3_TABLE = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return nas.build(baselines.get("lenet5")).eval()


def test_lenet5_trainable_parameters_per_layer_are_the_papers(lenet):
    layers = {
        "C1": lenet.stem[0], "S2": lenet.stem[1], "C3": lenet.stages[0], "S4": lenet.stages[1],
        "C5": lenet.head[0], "F6": lenet.head[2],
    }
    assert {name: count(module) for name, module in layers.items()} == {
        "C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164}
    # the paper's output layer is 10 RBF units with fixed weights; here it is a trainable 84 -> 10 linear layer
    assert count(lenet.classifier) == 850 and count(lenet) == 60_850


def test_lenet5_shapes_follow_the_paper():
    shapes = dict(nas.summarize(baselines.get("lenet5")).stage_shapes)
    assert shapes == {"stem": (6, 14, 14), "stage1": (16, 10, 10), "stage2": (16, 5, 5), "head": (84,)}


def test_lenet5_c3_graph_is_the_connection_table():
    graph = baselines.get("lenet5").cells["c3"]
    maps = list(graph.predecessors("out"))
    assert graph.nodes["out"]["merge"] == "concat" and len(maps) == 16
    for k, conv in enumerate(maps):  # concatenated in map order, each map a 5x5 conv of its selected S2 maps
        assert graph.nodes[conv]["op"] == "conv" and graph.nodes[conv]["params"]["out"] == 1
        (select,) = graph.predecessors(conv)
        assert graph.nodes[select]["op"] == "select" and list(graph.predecessors(select)) == ["in"]
        assert list(graph.nodes[select]["params"]["channels"]) == C3_TABLE[k]


def test_zeroing_an_s2_map_changes_exactly_the_c3_maps_that_read_it(lenet):
    torch.manual_seed(1)
    with torch.no_grad():
        s2 = lenet.stem(torch.randn(2, 1, 32, 32))
        c3 = lenet.stages[0]
        base = c3(s2)
        for k in range(6):
            cut = s2.clone()
            cut[:, k] = 0.0
            out = c3(cut)
            changed = {m for m in range(16) if not torch.allclose(out[:, m], base[:, m])}
            assert changed == {m for m, row in enumerate(C3_TABLE) if k in row}, f"S2 map {k}"


# ----- CIFAR ResNets (He et al. 2016, section 4.2 and Table 6) -----
def cifar_resnet_parameters(n: int, classes: int = 10) -> int:
    """Weights of a 6n+2-layer CIFAR ResNet with option-A shortcuts: 3x3 convs with BN (weight and bias)."""
    def conv_bn(c_in, c_out):
        return 9 * c_in * c_out + 2 * c_out

    total = conv_bn(3, 16)
    for c_in, c_out in ((16, 16), (16, 32), (32, 64)):
        total += conv_bn(c_in, c_out) + conv_bn(c_out, c_out)  # first block of the stage
        total += (n - 1) * 2 * conv_bn(c_out, c_out)
    return total + 64 * classes + classes


@pytest.mark.parametrize("name, n, exact, stated, digits", [
    ("resnet20", 3, 269_722, 0.27, 2),   # Table 6 states 0.27M
    ("resnet56", 9, 853_018, 0.85, 2),   # 0.85M
    ("resnet110", 18, 1_727_962, 1.7, 1),  # 1.7M (1.73M to two decimals)
])
def test_cifar_resnets_match_the_papers_table(name, n, exact, stated, digits):
    genome = baselines.get(name)
    summary = nas.summarize(genome)
    assert summary.params == cifar_resnet_parameters(n) == exact
    assert round(exact / 1e6, digits) == stated
    model = nas.build(genome)
    weighted = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weighted) == 6 * n + 2  # option A adds no shortcut layers
    assert summary.stage_shapes[1:4] == [("stage1", (16, 32, 32)), ("stage2", (32, 16, 16)), ("stage3", (64, 8, 8))]


# ----- FractalNet (Larsson et al. 2016) -----
# The paper's CIFAR networks have B = 5 blocks with channels 64, 128, 256, 512, 512 and a 2x2 max pool after
# each. We chose C = 3 columns: the 20-layer network (B * 2^(C-1) = 20 convs on the deepest path) is the one of
# the paper's main CIFAR rows ("FractalNet, 20 layers, 38.6M parameters" in Table 1). Built exactly as the text
# describes it (3x3 conv + BN + ReLU, joins averaging, the last block pooled to 1x1, a linear classifier) it has
# 33.7M parameters, not 38.6M; an independent PyTorch reimplementation (github.com/khanrc/pt.fractalnet) reports
# the same 33.7M. The paper gives no detail that accounts for the other 4.9M, so the test pins our exact figure
# and the size of that documented gap.
PAPER_STATED_FRACTALNET_20 = 38.6e6


def fractalnet_parameters(widths=(64, 128, 256, 512, 512), columns=3, classes=10) -> int:
    total, c_in = 0, 3
    convs = 2**columns - 1
    for width in widths:
        total += columns * 9 * c_in * width  # the first conv of every column reads the block input
        total += (convs - columns) * 9 * width * width
        total += convs * 2 * width  # BN weight and bias
        c_in = width
    return total + c_in * classes + classes


def test_fractalnet_is_the_20_layer_cifar_network_of_the_paper():
    genome = baselines.get("fractalnet")
    params = nas.summarize(genome).params
    assert params == fractalnet_parameters() == 33_724_618
    assert round(params / 1e6, 1) == 33.7
    assert 0.87 < params / PAPER_STATED_FRACTALNET_20 < 0.88  # the documented gap to the paper's 38.6M
    plan = expand(genome)
    depth = 0
    for stage in plan.stages:
        (block,) = stage
        graph = block.graph
        convs = [n for n in graph if graph.nodes[n].get("op") == "conv"]
        assert len(convs) == 7 and graph.nodes["out"]["op"] == "maxpool"
        depth += sum(graph.nodes[n].get("op") == "conv" for n in nx.dag_longest_path(graph))
    assert depth == 20
    assert [stage[-1].out_shape for stage in plan.stages] == [
        (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2), (512, 1, 1)]


def test_fractalnet_regularisation_is_the_papers():
    genome = baselines.get("fractalnet")
    model = nas.build(genome)
    assert model.global_drop == 0.5 and model.num_columns == 3
    dropout = []
    for stage in expand(genome).stages:
        graph = stage[0].graph
        joins = [n for n in graph if graph.in_degree(n) > 1]
        assert all(graph.nodes[n]["drop_path"] == 0.15 for n in joins)
        rates = {graph.nodes[n]["params"]["p"] for n in graph if graph.nodes[n].get("op") == "dropout"}
        dropout.append(rates.pop() if rates else 0.0)
    assert dropout == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_xception_cifar_is_small_and_works_from_8_to_32_pixels():
    genome = baselines.get("xception_cifar")
    for size in (8, 16, 32):
        summary = nas.summarize(genome, input_size=size)
        assert summary.params < 1_000_000 and summary.output_shape == (10,)
    model = nas.build(genome, input_size=8)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
