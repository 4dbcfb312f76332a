"""`nas.summarize` counts each op alone (cached by op, params and input shape) and sums: the same counts as
the whole network, for chains, cells that read earlier cells, fractal cells and a network without a
classifier; and benchmarks/summary_speed.py in a tiny mode. (Random genomes of every template:
tests/test_properties.py.)"""
import benchmark_scripts
import pytest

import nas
from nas import baselines
from nas.summary import op_cost

# a chain; cells reading the two cells before them; fractal mean merges with drop-path; the head's logits
# without a classifier (classifier: none)
KINDS = ["resnet18", "nasnet_a_cifar", "fractalnet", "squeezenet1_0"]


@pytest.fixture(scope="module")
def bench():
    return benchmark_scripts.load("summary_speed")


@pytest.mark.parametrize("name", KINDS)
def test_the_sums_of_the_ops_counts_are_the_whole_networks(name, bench):
    genome = baselines.get(name)
    cost = nas.summarize(genome)
    assert (cost.params, cost.flops) == bench.whole_network(genome)


def test_a_networks_repeated_ops_are_counted_once():
    op_cost.cache_clear()
    first = nas.summarize(baselines.get("resnet56"))  # 3 stages of 9 blocks, most of them alike
    info = op_cost.cache_info()
    assert info.hits > info.misses
    assert nas.summarize(baselines.get("resnet56")) == first
    assert op_cost.cache_info().misses == info.misses


def test_the_benchmark_runs_in_a_tiny_mode(bench, capsys):
    assert bench.main(["--baselines", "resnet20", "--samples", "2", "--rounds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "baselines (1 genomes)" in printed and "2 samples of cells (2 genomes)" in printed
    assert printed.count("x faster") == 4 and "every count equals the whole network's" in printed


def test_the_benchmark_refuses_bad_arguments_in_one_line(bench, capsys, tmp_path):
    for argv in (["--rounds", "0"], ["--samples", "x"], ["--baselines", "nonesuch"]):
        with pytest.raises(SystemExit) as exit_:
            bench.main(argv)
        assert exit_.value.code == 2
    capsys.readouterr()  # argparse's usage lines
    assert bench.main(["--baselines", "resnet20", "--samples", "1", "--space", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"summary_speed.py: unknown search space {str(tmp_path)!r}")
