"""DARTS genotypes <-> genomes (nas.darts) and the four CIFAR networks of the DARTS code as baselines.

The genotypes are those of the DARTS code (github quark0/darts, cnn/genotypes.py); the parameter counts
are what that code's NetworkCIFAR(36, 10, 20, auxiliary=False, genotype) has (counted by running it).
Its outputs, after nas.transfer_weights, agree with the built genomes' to 1e-7 (checked outside the suite).
"""
import pytest
import torch

import nas
from nas import baselines
from nas.darts import Genotype, GenotypeError, genotype, network
from nas.summary import count_params, meta_network

GENOTYPES = {
    "darts_v2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
    "darts_v1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
                "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
                "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
    "amoebanet_a_cifar": """Genotype(
        normal=[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2),
                ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1),
                ('skip_connect', 0), ('avg_pool_3x3', 1)],
        normal_concat=[4, 5, 6],
        reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2),
                ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1),
                ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)],
        reduce_concat=[3, 4, 6])""",
    "nasnet_a_cifar": """Genotype(
        normal=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0),
                ('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0),
                ('sep_conv_3x3', 1), ('skip_connect', 1),],
        normal_concat=[2, 3, 4, 5, 6],
        reduce=[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0),
                ('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2),
                ('sep_conv_3x3', 2), ('max_pool_3x3', 1),],
        reduce_concat=[4, 5, 6],)""",
}
# NetworkCIFAR(C=36, num_classes=10, layers=20, auxiliary=False) of the DARTS code, counted by running it.
PARAMS = {"darts_v2": 3_349_342, "darts_v1": 3_169_414, "amoebanet_a_cifar": 3_145_078, "nasnet_a_cifar": 3_830_950}


@pytest.mark.parametrize("name", list(GENOTYPES))
def test_baseline_has_the_darts_codes_parameter_count(name):
    plan, model = meta_network(baselines.get(name))
    assert count_params(model) == PARAMS[name]
    assert plan.stages[-1][-1].out_shape[1:] == (8, 8)


@pytest.mark.parametrize("name", list(GENOTYPES))
def test_genotype_round_trips_through_the_genome(name):
    parsed = Genotype.parse(GENOTYPES[name])
    genome = network(parsed, name)
    assert genome == baselines.get(name) and genome.fingerprint() == baselines.get(name).fingerprint()
    assert genotype(baselines.get(name)) == parsed
    assert Genotype.parse(parsed.to_text()) == parsed
    assert Genotype.from_dict(parsed.to_dict()) == parsed


def test_other_widths_and_depths_read_back_the_same_genotype():
    parsed = Genotype.parse(GENOTYPES["darts_v2"])
    small = network(parsed, "tiny", channels=8, layers=5, input_size=16)
    assert genotype(small) == parsed
    model = nas.build(small).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_the_first_cells_read_the_stem_twice_and_cells_read_the_two_previous_outputs():
    plan = nas.expand.expand(baselines.get("darts_v2"))
    cells = [c for stage in plan.stages for c in stage]
    assert [c.sources for c in cells[:3]] == [(0, 0), (0, 1), (1, 2)]
    assert cells[-1].sources == (18, 19)


@pytest.mark.parametrize("text, message", [
    ("Genotype(normal=[('sep_conv_9x9', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[], reduce_concat=[])",
     "unknown DARTS op"),
    ("Genotype(normal=[('skip_connect', 0), ('skip_connect', 2)], normal_concat=[2], "
     "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])", "not 2"),
    ("__import__('os').system('true')", "expected Genotype"),
    ("Genotype(normal=open('x'), normal_concat=[2], reduce=[], reduce_concat=[])", "unexpected"),
    ("Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1)], "
     "normal_concat=[3], reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])",
     "neither read nor concatenated"),
    ("Genotype(normal=[", "not a Genotype"),
])
def test_bad_genotypes_fail_with_one_line(text, message):
    with pytest.raises(GenotypeError, match=message):
        Genotype.parse(text)


def test_a_genome_not_in_the_darts_form_is_refused():
    with pytest.raises(GenotypeError, match="template"):
        genotype(baselines.get("resnet18"))
