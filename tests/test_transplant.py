"""Cell transplant: the skeleton keeps its stem, head, strides, repeats; the cells are the searched ones;
parameters match the skeleton's."""
import random

import pytest

from nas import baselines
from nas import cellgraph
from nas.darts import read_network
from nas.compare.transplant import count_params, searched_unit_index, transplant, transplant_at, units
from nas.expand import expand
from nas.errors import GenomeError
from nas.genome import Genome
from nas.spaces import load_space
from nas.spaces.layout import fit_genome

DIGITS = (1, 8, 8)


@pytest.fixture(scope="module")
def resnet20():
    return fit_genome(baselines.get("resnet20"), 1, 8, 10)


@pytest.fixture(scope="module")
def micro():
    space = load_space("cells", input_channels=1, input_size=8, num_classes=10)
    return space.realize(space.sample(random.Random(0)))


def macro_genome() -> Genome:
    """A stage-level searched network: a residual stage, a dense stage behind its transition, an MBConv stage."""
    return Genome.from_dict({
        "name": "macro-test", "input": {"channels": 1, "size": 8}, "num_classes": 10,
        "stem": [{"op": "conv", "out": 16, "kernel": 3}],
        "stages": [
            {"cell": "basic", "out": 16, "repeats": 2, "params": {"se": 0.25}},
            {"cell": "transition", "out": 32, "stride": 2},
            {"cell": "dense", "params": {"layers": 2, "growth": 8}},
            {"cell": "mbconv", "out": 64, "stride": 2, "params": {"kernel": 5, "expansion": 3.0}},
        ],
        "head": [{"op": "global_avgpool"}],
    })


def stage_layout(genome: Genome) -> list[tuple[int, int, int]]:
    """(stride, cells, output channels) of each unit, from the expansion."""
    return [(u.stride, u.repeats, u.out) for u in units(genome)]


def test_units_pair_a_transition_with_its_dense_block():
    densenet = fit_genome(baselines.get("densenet_40_12"), 1, 8, 10)
    found = units(densenet)
    assert [u.stride for u in found] == [1, 2, 2]
    assert [[s.cell for s in u.stages] for u in found] == [["dense"], ["transition", "dense"], ["transition", "dense"]]
    plan = expand(densenet)
    assert [u.out for u in found] == [plan.stages[i][-1].out_shape[0] for i in (0, 2, 4)]


def test_micro_cells_in_resnet20_keep_the_skeleton_and_match_params(resnet20, micro):
    result = transplant(micro, resnet20, input_shape=DIGITS, num_classes=10)
    genome = result.genome
    # the skeleton's stem and head, input and classes
    assert cellgraph.to_dict(genome.stem) == cellgraph.to_dict(resnet20.stem)
    assert cellgraph.to_dict(genome.head) == cellgraph.to_dict(resnet20.head)
    assert (genome.input, genome.num_classes) == (resnet20.input, resnet20.num_classes)
    # the searched cells (they read the two previous cells), rebuilt at the skeleton's widths
    assert read_network(genome)[0] == read_network(micro)[0]
    # per resnet20 stage (16/32/64 channels, strides 1/2/2, 3 cells): reduce first where strided, then normal
    assert [(s.cell.split("_")[0].rstrip("0123456789"), s.repeats, s.stride) for s in genome.stages] == [
        ("normal", 3, 1), ("reduce", 1, 2), ("normal", 1, 1), ("normal", 1, 1), ("reduce", 1, 2), ("normal", 1, 1),
        ("normal", 1, 1)]  # the normal cell right after a reduction aligns its older input: its own graph
    assert all(s.reads == (2, 1) for s in genome.stages if len(cellgraph.input_nodes(genome.cells[s.cell])) == 2)
    plan, skeleton_plan = expand(genome), expand(resnet20)
    spatial = [plan.stages[i][-1].out_shape[1:] for i in (0, 3, 6)]
    assert spatial == [skeleton_plan.stages[i][-1].out_shape[1:] for i in range(3)]  # same resolutions
    widths = [int(s.cell.split("_")[0].lstrip("normalreduce")) for s in genome.stages]
    assert widths[1] == widths[2] == widths[3] and widths[4] == widths[5] == widths[6]
    assert widths[0] < widths[1] < widths[4]  # resnet20's 16 < 32 < 64, times one factor
    # parameters within 5% of resnet20's, as counted for digits
    assert result.skeleton_params == count_params(resnet20, DIGITS, 10) == 269_434
    assert result.params == count_params(genome, DIGITS, 10)
    assert abs(result.params_ratio - 1) <= 0.05 and result.matched
    assert result.width != 1.0
    assert result.to_dict()["mapping"][1] == "basic x3, 32 ch, stride 2 <- reduce, normal x2"


def test_without_matching_the_widths_are_the_skeletons(resnet20, micro):
    result = transplant(micro, resnet20, match_params=False, input_shape=DIGITS, num_classes=10)
    assert result.width == 1.0
    per_cell = len(read_network(micro)[0]["normal"][1])  # blocks a normal cell concatenates
    widths = sorted({int(s.cell.split("_")[0].lstrip("normalreduce")) for s in result.genome.stages})
    assert widths == [round(16 / per_cell), round(32 / per_cell), round(64 / per_cell)]
    assert result.params == count_params(result.genome, DIGITS, 10)


def test_stage_templates_fill_the_skeleton_by_relative_depth(resnet20):
    searched = macro_genome()
    assert [[s.cell for s in u.stages] for u in units(searched)] == [["basic"], ["transition", "dense"], ["mbconv"]]
    result = transplant(searched, resnet20, input_shape=DIGITS, num_classes=10)
    stages = result.genome.stages
    assert [s.cell for s in stages] == ["basic", "transition", "dense", "mbconv"]
    # the skeleton's strides and cells per stage; the searched parameters kept
    assert [(s.stride, s.repeats) for s in stages] == [(1, 3), (2, 1), (1, 3), (2, 3)]
    assert stages[0].params["se"] == 0.25
    assert stages[2].params["layers"] == 2
    assert (stages[3].params["kernel"], stages[3].params["expansion"]) == (5, 3.0)
    assert [u.stride for u in units(result.genome)] == [u.stride for u in units(resnet20)]
    assert abs(result.params_ratio - 1) <= 0.05


def test_more_skeleton_stages_than_searched_ones_reuse_by_depth():
    assert [searched_unit_index(k, 7, 3) for k in range(7)] == [0, 0, 1, 1, 1, 2, 2]
    assert [searched_unit_index(k, 3, 3) for k in range(3)] == [0, 1, 2]
    assert [searched_unit_index(k, 2, 5) for k in range(2)] == [1, 3]
    mobilenet = fit_genome(baselines.get("mobilenet_v2_cifar"), 1, 8, 10)
    genome = transplant_at(macro_genome(), mobilenet, 0.5)
    assert [u.stride for u in units(genome)] == [u.stride for u in units(mobilenet)]
    assert [u.repeats for u in units(genome)] == [u.repeats for u in units(mobilenet)]
    assert cellgraph.to_dict(genome.head) == cellgraph.to_dict(mobilenet.head)


def test_a_mixed_genome_is_refused(resnet20, micro):
    spec = micro.to_dict()
    spec["stages"].append({"cell": "basic", "out": 32})
    with pytest.raises(GenomeError, match="explicit cells in every stage or none|'basic' is a template"):
        transplant_at(Genome.from_dict(spec), resnet20)
