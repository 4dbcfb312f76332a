"""Search spaces: samples and mutations realize valid genomes that build and run; isomorphic samples
share a fingerprint; every family and motif is reachable; input sizes are respected; bad files fail clearly."""
import json
import random
from pathlib import Path

import networkx as nx
import pytest
import torch

import nas
from nas import baselines
from nas.cellgraph import input_nodes, to_dict
from nas.templates import TEMPLATES
from nas.errors import NasError
from nas.genome import Genome
from nas.ops.registry import get_op
from nas.spaces import SearchSpace, SpaceError, load_space, space_names
from nas.spaces.layout import MIN_REDUCE_SIZE, clip_strides, fit_genome, stem_layers
from nas.spaces.scaling_space import ScalingSpace, compound_grid, flops_factor

SPACES = ("cells", "macro", "mobile")


@pytest.fixture(scope="module")
def spaces():
    return {name: load_space(name) for name in SPACES}


def run_forward(genome, channels=1, size=8, classes=10):
    model = nas.build(genome).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, classes) and torch.isfinite(out).all()


def test_shipped_spaces_are_listed():
    assert set(SPACES) <= set(space_names())


@pytest.mark.parametrize("name", SPACES)
def test_samples_realize_genomes_that_build_and_run_on_digits(spaces, name):
    space = spaces[name]
    for seed in range(3):
        sample = space.sample(random.Random(seed))
        assert json.loads(json.dumps(sample)) == sample  # plain JSON data
        space.validate(sample)
        genome = space.realize(sample)
        assert genome.input.channels == 1 and genome.input.size == (8, 8) and genome.num_classes == 10
        run_forward(genome)


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_seeded_and_varied(spaces, name):
    space = spaces[name]
    first = [space.sample(random.Random(seed)) for seed in range(6)]
    again = [space.sample(random.Random(seed)) for seed in range(6)]
    assert first == again
    assert len({space.realize(s).fingerprint() for s in first}) == 6


@pytest.mark.parametrize("name", SPACES)
def test_mutate_changes_exactly_one_choice_and_stays_valid(spaces, name):
    space = spaces[name]
    rng = random.Random(7)
    sample = space.sample(rng)
    for _ in range(8):
        child = space.mutate(sample, rng)
        common = set(sample) & set(child)
        assert sum(sample[k] != child[k] for k in common) == 1
        space.check_choices(child)  # exactly the active choices, each a valid option
        assert space.realize(child).fingerprint() != space.realize(sample).fingerprint()
        sample = child
    run_forward(space.realize(sample))


def test_mutating_a_family_redraws_its_conditional_choices(spaces):
    space = spaces["macro"]
    rng = random.Random(0)
    sample = space.complete({"stage1.family": "bottleneck"}, rng)
    assert "stage1.bottleneck.expansion" in sample and "stage1.dense.growth" not in sample
    for _ in range(40):
        child = space.mutate(sample, rng)
        if child["stage1.family"] != "bottleneck":
            family = child["stage1.family"]
            assert not any(k.startswith("stage1.bottleneck.") for k in child)
            assert all(k in child for k in (c.name for c in space.active_choices(child)))
            assert any(k.startswith(f"stage1.{family}.") for k in child) or family == "residual"
            return
    pytest.fail("40 mutations never changed stage1.family")


def test_macro_space_offers_every_family_and_each_builds(spaces):
    space = spaces["macro"]
    families = space.choices[0].options
    assert space.choices[0].name == "stage1.family"
    assert {space.families[f].template for f in families} == {
        "basic", "bottleneck", "inception", "dense", "fractal", "xception", "mbconv"}
    for family in families:
        sample = space.complete({f"stage{k}.family": family for k in (1, 2, 3)}, random.Random(1))
        genome = space.realize(sample)
        assert {s.cell for s in genome.stages} - {"transition"} == {space.families[family].template}
        run_forward(genome)


def test_family_parameters_are_the_templates_declared_ones(spaces):
    for name in ("macro", "mobile"):
        for family in spaces[name].families.values():
            declared = set(TEMPLATES.get(family.template).defaults)
            assert set(family.params) | set(family.widths) <= declared


def test_mobile_space_is_mbconv_with_kernel_expansion_se_and_repeats(spaces):
    space = spaces["mobile"]
    names = {c.name for c in space.choices}
    assert {"stage2.kernel", "stage2.expansion", "stage2.se", "stage2.repeats"} <= names
    assert space.choices[[c.name for c in space.choices].index("stage2.kernel")].options == (3, 5)
    genome = space.realize(space.sample(random.Random(3)))
    assert {s.cell for s in genome.stages} == {"mbconv"}


# ----- input sizes -----

@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("channels,size", [(3, 32), (1, 28), (3, 5), (1, 2)])
def test_input_overrides_are_respected_and_maps_never_vanish(name, channels, size):
    space = load_space(name, input_channels=channels, input_size=size, num_classes=7)
    genome = space.realize(space.sample(random.Random(size)))
    assert genome.input.channels == channels and genome.input.size == (size, size) and genome.num_classes == 7
    summary = nas.summarize(genome)
    spatial = [shape[1:] for _, shape in summary.stage_shapes if len(shape) == 3]
    assert min(min(s) for s in spatial) >= min(2, size)
    if size >= 8:  # room for reductions: they happen
        assert min(min(s) for s in spatial) < size


def test_layout_rules():
    assert clip_strides([1, 2, 2, 2], 8) == [1, 2, 2, 1]
    assert clip_strides([2, 2], 3) == [1, 1]
    layers, size = stem_layers(16, 224)
    assert size <= 32 and layers[0]["stride"] == 2 and [l["op"] for l in layers[1:]] == ["maxpool", "maxpool"]
    assert stem_layers(16, 32)[1] == 32 and MIN_REDUCE_SIZE == 4


def test_fit_genome_clips_stage_reductions_for_tiny_inputs():
    fitted = fit_genome(baselines.get("resnet50"), channels=1, size=8, num_classes=10)
    assert fitted.input.size == (8, 8) and fitted.num_classes == 10
    shapes = [shape for _, shape in nas.summarize(fitted).stage_shapes if len(shape) == 3]
    assert min(min(s[1:]) for s in shapes) >= 1
    assert [s.stride for s in fitted.stages] == [1, 1, 1, 1]  # the stem already took 8x8 down to 2x2


# ----- the cell space -----

def _blocks(kind, blocks):
    sample = {}
    for i, (input_a, op_a, input_b, op_b) in enumerate(blocks):
        sample.update({f"{kind}.b{i}.input_a": input_a, f"{kind}.b{i}.op_a": op_a, f"{kind}.b{i}.input_b": input_b,
                       f"{kind}.b{i}.op_b": op_b})
    return sample


REDUCE = [("prev_prev", "sep_conv_3x3", "prev", "skip_connect"), ("prev", "max_pool_3x3", "b0", "sep_conv_3x3"),
          ("b1", "dil_conv_3x3", "prev_prev", "avg_pool_3x3"), ("b0", "se", "prev", "sep_conv_5x5"),
          ("b2", "skip_connect", "b3", "max_pool_3x3")]


def cell_sample(normal, reduce=REDUCE):
    return {"channels": 4, "normal_cells": 1, **_blocks("normal", normal), **_blocks("reduce", reduce)}


ORIGINAL = [("prev_prev", "sep_conv_3x3", "prev", "max_pool_3x3"), ("prev", "skip_connect", "prev_prev", "avg_pool_3x3"),
            ("b0", "sep_conv_5x5", "b1", "dil_conv_3x3"), ("prev", "sep_conv_3x3", "b2", "skip_connect"),
            ("b3", "max_pool_3x3", "prev_prev", "sep_conv_3x3")]


def test_isomorphic_cell_samples_share_a_fingerprint(spaces):
    space = spaces["cells"]
    # blocks 0 and 1 swapped (both read only the cell inputs, and only block 2 reads them), and the two sides of
    # every block swapped (a block adds them)
    permuted = [("prev_prev", "avg_pool_3x3", "prev", "skip_connect"), ("prev", "max_pool_3x3", "prev_prev", "sep_conv_3x3"),
                ("b0", "dil_conv_3x3", "b1", "sep_conv_5x5"), ("b2", "skip_connect", "prev", "sep_conv_3x3"),
                ("prev_prev", "sep_conv_3x3", "b3", "max_pool_3x3")]
    a, b = space.realize(cell_sample(ORIGINAL)), space.realize(cell_sample(permuted))
    assert cell_sample(ORIGINAL) != cell_sample(permuted)
    assert a.fingerprint() == b.fingerprint() and a == b
    changed = list(permuted)
    changed[2] = ("b0", "dil_conv_3x3", "b1", "sep_conv_3x3")
    assert space.realize(cell_sample(changed)).fingerprint() != a.fingerprint()
    rewired = list(permuted)  # block 4 reads the previous cell instead of the one before it
    rewired[4] = ("prev", "sep_conv_3x3", "b3", "max_pool_3x3")
    assert space.realize(cell_sample(rewired)).fingerprint() != a.fingerprint()


def test_node_names_do_not_leak_into_the_fingerprint(spaces):
    space = spaces["cells"]
    genome = space.realize(space.sample(random.Random(11)))
    spec = genome.to_dict()
    for name, cell in spec["cells"].items():
        graph = genome.cells[name]
        shuffled = [n for n in graph if n not in ("out", *input_nodes(graph))]
        random.Random(0).shuffle(shuffled)
        mapping = {old: f"x{i}" for i, old in enumerate(shuffled)}
        renamed = nx.relabel_nodes(nx.DiGraph(graph), mapping)
        spec["cells"][name] = to_dict(renamed)
    spec["name"] = "renamed"
    other = Genome.from_dict(spec)
    assert other.fingerprint() == genome.fingerprint()


def test_cells_read_the_two_previous_cells_and_concatenate_the_unread_blocks(spaces):
    space = spaces["cells"]
    genome = space.realize(cell_sample(ORIGINAL))
    plan = nas.expand.expand(genome)
    assert [c.sources for stage in plan.stages for c in stage] == [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4)]
    normal = genome.cells["normal4"]
    assert input_nodes(normal) == ("prev_prev", "prev") and list(normal.predecessors("out")) == ["s6"]
    assert plan.stages[0][0].out_shape == (4, 8, 8)  # one unread block of 4 channels
    run_forward(genome)


def test_darts_v2_is_a_sample_whose_genome_is_the_baseline(tmp_path):
    path = tmp_path / "darts.yaml"
    path.write_text((Path(nas.__file__).parent.parent / "search_spaces" / "cells.yaml").read_text()
                    .replace("blocks: 5", "blocks: 4").replace("concat: unread", "concat: all")
                    .replace("channels: [4, 8]", "channels: [36]").replace("normal_cells: [1, 2]", "normal_cells: [6]"))
    space = load_space(path, input_channels=3, input_size=32, num_classes=10)
    v2 = {"normal": [("prev_prev", "sep_conv_3x3", "prev", "sep_conv_3x3"), ("prev_prev", "sep_conv_3x3", "prev", "sep_conv_3x3"),
                     ("prev", "sep_conv_3x3", "prev_prev", "skip_connect"), ("prev_prev", "skip_connect", "b0", "dil_conv_3x3")],
          "reduce": [("prev_prev", "max_pool_3x3", "prev", "max_pool_3x3"), ("b0", "skip_connect", "prev", "max_pool_3x3"),
                     ("prev_prev", "max_pool_3x3", "b0", "skip_connect"), ("b0", "skip_connect", "prev", "max_pool_3x3")]}
    sample = {**_blocks("normal", v2["normal"]), **_blocks("reduce", v2["reduce"])}
    space.check_choices(sample)
    genome = space.realize(sample)
    assert genome == baselines.get("darts_v2") and genome.fingerprint() == baselines.get("darts_v2").fingerprint()


def test_reduction_cell_strides_only_ops_on_the_cell_inputs(spaces):
    space = spaces["cells"]
    reduce = space.cell(cell_sample(ORIGINAL), "reduce")
    for node in reduce:
        if reduce.nodes[node].get("params", {}).get("stride") == "@stride":
            assert list(reduce.predecessors(node))[0] in ("pre0", "pre1")
    assert reduce.nodes["s3_b0"]["params"]["stride"] == 1  # sep_conv_3x3 reading b0


def test_a_cell_that_ignores_an_input_leaves_that_port_out(spaces):
    space = spaces["cells"]
    only_prev = [("prev", "sep_conv_3x3", "prev", "max_pool_3x3")] + [(f"b{i}", "skip_connect", "prev", "avg_pool_3x3")
                                                                     for i in range(4)]
    genome = space.realize(cell_sample(only_prev))
    assert input_nodes(genome.cells["normal4"]) == ("prev",) and genome.stages[0].reads == (1,)
    run_forward(genome)


def test_grown_cells_keep_block_names(spaces):
    space = spaces["cells"]
    small = space.grown(2)
    assert small.blocks == 2 and space.blocks == 5
    assert {c.name for c in small.choices} < {c.name for c in space.choices}
    sample = small.sample(random.Random(0))
    extended = space.complete(sample, random.Random(1))
    assert {k: extended[k] for k in sample} == sample
    space.realize(extended)
    with pytest.raises(SpaceError, match="positive integer"):
        space.grown(0)


def test_skip_connect_is_identity_or_a_factorized_reduce():
    spec = get_op("skip_connect")
    assert isinstance(spec.build(8, spec.resolve({"out": 8}, "")), torch.nn.Identity)
    reduce = spec.build(8, spec.resolve({"out": 16, "stride": 2}, "")).eval()
    for size in (7, 8, 1):
        assert reduce(torch.randn(2, 8, size, size)).shape == (2, 16, (size + 1) // 2, (size + 1) // 2)


# ----- samples that are not valid -----

def test_validate_rejects_bad_samples(spaces):
    space = spaces["macro"]
    sample = space.sample(random.Random(0))
    with pytest.raises(SpaceError, match="lacks choice"):
        space.validate({k: v for k, v in sample.items() if k != "stage2.width"})
    with pytest.raises(SpaceError, match="not an option"):
        space.validate({**sample, "stage2.width": 33})
    with pytest.raises(SpaceError, match="not an active choice"):
        space.validate({**sample, "stage1.nonsense": 1})


# ----- space files -----

def write(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


STAGES = """
kind: stages
stem: {out: 8}
stages: [{width: [8, 16]}]
families:
  residual: {template: basic, params: %s}
"""


def test_space_files_are_checked_against_the_template_registry(tmp_path):
    space = load_space(write(tmp_path, STAGES % "{se: [0.0, 0.25]}"))
    assert [c.name for c in space.choices] == ["stage1.width", "stage1.se"]
    with pytest.raises(SpaceError, match="unknown field 'kernel'"):
        load_space(write(tmp_path, STAGES % "{kernel: [3, 5]}"))
    with pytest.raises(SpaceError, match="no cell template 'nope'"):
        load_space(write(tmp_path, STAGES.replace("template: basic", "template: nope") % "{}"))
    with pytest.raises(SpaceError, match="unknown kind"):
        load_space(write(tmp_path, "kind: galaxy\n"))
    with pytest.raises(SpaceError, match="unknown search space"):
        load_space("no_such_space")
    with pytest.raises(NasError):
        load_space(write(tmp_path, "kind: cells\nblocks: 2\nnetwork: {channels: 8, normal_cells: 1}\nops: {}\n"))


def test_a_cell_space_combines_blocks_by_adding(tmp_path):
    path = write(tmp_path, """
kind: cells
network: {channels: 8, normal_cells: 1}
combine: [add, concat]
ops: {skip: {op: skip_connect, out: "@out", stride: "@stride"}}
""")
    with pytest.raises(SpaceError, match="combine"):
        load_space(path)


def test_a_custom_cell_space_with_fewer_blocks_and_ops(tmp_path):
    path = write(tmp_path, """
kind: cells
blocks: 2
network: {channels: 8, normal_cells: 1, stages: 2}
combine: [add]
ops:
  conv: {op: conv, kernel: 3, out: "@out", stride: "@stride"}
  skip: {op: skip_connect, out: "@out", stride: "@stride"}
""")
    space = load_space(path, input_channels=1, input_size=8)
    # per cell: 2 blocks x (input_a, op_a, input_b, op_b); block 0 reads prev_prev or prev, block 1 also b0
    assert len(space.choices) == 2 * 2 * 4
    assert space.size() == (2 * 2 * 2 * 2 * 3 * 2 * 3 * 2) ** 2
    run_forward(space.realize(space.sample(random.Random(0))))


# ----- compound scaling as a space -----

def test_compound_grid_keeps_flops_doubling_per_phi():
    grid = compound_grid([1.0, 1.1, 1.2], [1.0, 1.1, 1.2], alpha_step=0.05, tolerance=0.1)
    assert 4 <= len(grid) <= 9
    assert all(abs(flops_factor(*point) - 2.0) <= 0.1 and point[0] >= 1.0 for point in grid)
    assert [2.0, 1.0, 1.0] in grid


def test_scaling_space_realizes_scaled_genomes(spaces):
    base = spaces["mobile"].realize(spaces["mobile"].sample(random.Random(0)))
    space = ScalingSpace(base, [[1.2, 1.1, 1.15], [2.0, 1.0, 1.0]], [1, 2])
    assert isinstance(space, SearchSpace) and [c.name for c in space.choices] == ["coefficients", "phi"]
    genome = space.realize({"coefficients": [1.2, 1.1, 1.15], "phi": 2})
    assert genome.input.size == (round(8 * 1.15**2),) * 2
    assert sum(s.repeats for s in genome.stages) > sum(s.repeats for s in base.stages)
    assert genome.stages[-1].out > base.stages[-1].out
    deeper = space.realize({"coefficients": [2.0, 1.0, 1.0], "phi": 1})
    assert [s.repeats for s in deeper.stages] == [2 * s.repeats for s in base.stages]


def test_the_rl_controller_picks_inputs_and_ops_per_block_as_nasnets(spaces):
    from nas.search.strategies import make_searcher

    space = spaces["cells"]
    names = [c.name for c in space.choices]
    fixed = space.sample(random.Random(0))

    def probabilities(searcher, name):  # after the fixed sample's earlier decisions
        return searcher.probabilities({n: fixed[n] for n in names[:names.index(name)]}, name)

    searcher = make_searcher("rl", space, seed=0, max_trials=8, options={"lr": 0.05})
    for i in range(3):  # block i chooses among the two cell inputs and the i blocks before it
        assert len(probabilities(searcher, f"normal.b{i}.input_a")) == 2 + i
    target, op = "normal.b0.op_a", space.choices[names.index("normal.b0.op_a")].index("sep_conv_3x3")
    before = probabilities(searcher, target)[op]
    for k in range(8):
        config = searcher.suggest(f"t{k}")
        space.check_choices(config["sample"])
        searcher.on_trial_complete(f"t{k}", {"val_accuracy": float(config["sample"][target] == "sep_conv_3x3")})
    assert probabilities(searcher, target)[op] > before
