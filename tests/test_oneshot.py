"""One-shot search: the supernet derived from a cells space, its paths as genomes, DARTS / SPOS / RSWS."""
import json
import random

import pytest
import torch

from nas import build
from nas.cli import main
from nas.genome import Genome
from nas.oneshot.search import make_search
from nas.oneshot.supernet import OneShotError, supernet_for
from nas.search.strategies import strategy_class
from nas.spaces import load_space
from nas.train.datasets import load_dataset
from nas.train.settings import TrainSettings

TINY = """\
kind: cells
name: tiny_cells
blocks: 2
concat: {concat}
network: {{channels: 4, normal_cells: 1, stages: 2}}
ops:
  sep_conv_3x3: {{op: sepconv, out: "@out", kernel: 3, stride: "@stride", preact: true}}
  max_pool_3x3: {{op: maxpool, kernel: 3, stride: "@stride", padding: 1}}
  avg_pool_3x3: {{op: avgpool, kernel: 3, stride: "@stride", padding: 1, count_include_pad: false}}
  skip_connect: {{op: skip_connect, out: "@out", stride: "@stride"}}
"""
SKIPS_ONLY = """\
kind: cells
name: skips
blocks: 2
network: {channels: 4, normal_cells: 1, stages: 1}
ops:
  skip_connect: {op: skip_connect, out: "@out", stride: "@stride"}
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def spaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oneshot")
    for concat in ("unread", "all"):
        (folder / f"tiny_{concat}.yaml").write_text(TINY.format(concat=concat))
    (folder / "skips.yaml").write_text(SKIPS_ONLY)
    return folder


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None, val_fraction=0.1, seed=0, train_limit=300)


def fitted(path, data):
    return load_space(str(path), input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)


@pytest.mark.parametrize("concat", ["unread", "all"])
def test_a_fixed_path_of_the_supernet_is_the_built_genome_with_shared_weights(spaces, concat):
    space = load_space(str(spaces / f"tiny_{concat}.yaml"), input_channels=1, input_size=8, num_classes=10)
    torch.manual_seed(0)
    supernet = supernet_for(space)
    rng = random.Random(0)
    x = torch.randn(6, 1, 8, 8)
    supernet.train()
    with torch.no_grad():
        for _ in range(3):  # move the BN statistics away from their initial values
            supernet(x, path=supernet.space.complete({}, rng))
    supernet.eval()
    for _ in range(5):
        path = supernet.space.sample(rng)
        genome, network = supernet.extract(path)
        assert genome == supernet.space.realize(path) and genome == Genome.from_dict(genome.to_dict())
        network.eval()
        with torch.no_grad():
            expected = supernet(x, path=path)
            assert torch.allclose(network(x), expected, rtol=0, atol=1e-6)
            assert not torch.allclose(build(genome).eval()(x), expected, atol=1e-3)  # the weights are what count


def test_partial_channels_edges_keep_the_shapes(spaces):
    space = load_space(str(spaces / "tiny_all.yaml"), input_channels=1, input_size=8, num_classes=10)
    supernet = supernet_for(space, channels=8, partial=4)
    from nas.oneshot.architecture import Architecture

    architecture = Architecture(supernet, edge_norm=True)
    x = torch.randn(3, 1, 8, 8)
    out = supernet(x, weights=architecture.weights(), edge_weights=architecture.edge_weights())
    assert out.shape == (3, 10)
    edge = supernet.cells[0].edges[0]
    assert edge(torch.randn(3, 8, 8, 8), index=0).shape == (3, 8, 8, 8)
    assert supernet.cells[1].kind == "reduce"
    assert supernet.cells[1].channels == 16  # the reduction cell doubles the width
    assert supernet.cells[1].edges[0](torch.randn(3, 16, 8, 8), index=0).shape == (3, 16, 4, 4)
    # the ops see 1/K of the channels: a quarter of the parameters of a full-width op
    full = supernet_for(space, channels=8)
    narrow = sum(p.numel() for p in edge.ops[0].parameters())
    assert narrow < sum(p.numel() for p in full.cells[0].edges[0].ops[0].parameters())
    assert supernet(x, path=supernet.space.sample(random.Random(0))).shape == (3, 10)
    with pytest.raises(OneShotError, match="partial"):
        supernet.extract(supernet.space.sample(random.Random(0)))
    with pytest.raises(OneShotError, match="divide"):
        supernet_for(space, channels=6, partial=4)


def test_spaces_of_other_kinds_say_in_one_line_that_they_have_no_supernet():
    from nas.spaces.base import Choice, SearchSpace

    class Listed(SearchSpace):  # a plug-in kind of its own: neither cells nor stages
        def genome_of(self, sample):
            raise AssertionError("supernet_for reads no genome of this space")

    with pytest.raises(OneShotError, match="no supernet") as error:
        supernet_for(Listed("listed", [Choice("depth", (1, 2))]))
    assert "\n" not in str(error.value)


def search(strategy, space, data, epochs=2, **options):
    options = strategy_class(strategy).resolve_options(options)
    return make_search(strategy, space, data, TrainSettings(epochs=epochs, batch_size=32, lr=0.05), options,
                       seed=3, paths=4)


def test_darts_derives_a_valid_genome_and_resumes_exactly(spaces, digits):
    space = fitted(spaces / "tiny_unread.yaml", digits)
    straight = search("darts", space, digits)
    while not straight.done:
        metrics = straight.train_epoch()
    assert metrics["epoch"] == 2 and 0 <= metrics["val_accuracy"] <= 1 and "skips_normal" in metrics
    build(Genome.from_dict(metrics["genome"]))
    # stopped after epoch 1 and continued from its state in a new process-like object
    first = search("darts", space, digits)
    first.train_epoch()
    state = first.state_dict()
    again = search("darts", space, digits)
    again.load_state_dict(state)
    resumed = again.train_epoch()
    assert resumed["sample"] == metrics["sample"] and resumed["train_loss"] == metrics["train_loss"]
    for name, value in straight.supernet.state_dict().items():
        assert torch.equal(value, again.supernet.state_dict()[name]), name
    assert torch.equal(straight.architecture.alphas["normal"], again.architecture.alphas["normal"])
    result = straight.finish()
    assert result["derived_last_changed"] in (1, 2) and len(straight.history) == 2
    build(Genome.from_dict(result["genome"])).load_state_dict(straight.extract())


def test_the_supernet_trains_in_nas_train_s_memory_format(spaces, digits):
    """Channels-last on a CPU unless the recipe says otherwise: its kernels and the activations its
    convolutions read (where the two formats differ: more than one channel and pixel); a path scores the same."""
    space = fitted(spaces / "tiny_unread.yaml", digits)
    default = search("spos", space, digits, epochs=1)
    nchw = make_search("spos", space, digits, TrainSettings(epochs=1, batch_size=32, lr=0.05, channels_last=False),
                       strategy_class("spos").resolve_options({}), seed=3, paths=4)
    nchw.supernet.load_state_dict(default.supernet.state_dict())
    path = default.space.sample(random.Random(0))
    scores, read = [], []
    for one in (default, nchw):
        seen = []
        hooks = [m.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
                 for m in one.supernet.modules() if isinstance(m, torch.nn.Conv2d)]
        scores.append(one.score(path, torch.Generator().manual_seed(0)))
        for hook in hooks:
            hook.remove()
        read.append([x for x in seen if x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1])
    assert default.channels_last and read[0] and all(x.is_contiguous(memory_format=torch.channels_last)
                                                      and not x.is_contiguous() for x in read[0])
    kernels = [p for p in default.supernet.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert not nchw.channels_last and read[1] and all(x.is_contiguous() for x in read[1])
    assert scores[0] == pytest.approx(scores[1], abs=0.02)


def test_second_order_darts_takes_another_architecture_step(spaces, digits):
    space = fitted(spaces / "tiny_all.yaml", digits)
    first, second = search("darts", space, digits, epochs=1), search("darts", space, digits, epochs=1, order=2)
    first.train_epoch()
    metrics = second.train_epoch()
    build(Genome.from_dict(metrics["genome"]))
    assert not torch.allclose(first.architecture.alphas["normal"], second.architecture.alphas["normal"])
    assert torch.isfinite(second.architecture.alphas["normal"]).all()


def test_darts_stops_early_when_the_normal_cell_fills_with_skips(spaces, digits):
    space = fitted(spaces / "skips.yaml", digits)
    darts = search("darts", space, digits, epochs=3, stop_skips=2)
    darts.train_epoch()
    assert darts.done and "skip connections" in darts.stopped_early
    assert darts.finish()["skips_normal"] == 4


@pytest.mark.parametrize("strategy", ["darts", "rsws"])  # spos: test_inherited.py's run (its supernet scores there)
def test_one_shot_searches_run_as_one_trial_and_end_with_a_genome(strategy, spaces, tmp_path, ray_session, capsys):
    out = tmp_path / strategy
    code = main(["search", "--strategy", strategy, "--space", str(spaces / "tiny_unread.yaml"), "--trials", "3",
                 "--epochs", "1", "--train-limit", "300", "--out", str(out)])
    assert code == 0
    check_one_shot_run(out, capsys.readouterr().out, strategy)


def check_one_shot_run(out, printed: str, strategy: str) -> None:
    """What a one-shot search of 3 trials (`--trials 3`, 1 epoch) run from the command line printed and left in
    its run folder `out`: one Tune trial, a genome with its weights, the search's history."""
    assert "[1/1] trial" in printed and "derived cell last changed" in printed
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) == 1 and trials[0]["status"] == "TERMINATED"
    # numbered as a search's first trial: on screen, in the records, in its folder's (TensorBoard's) name
    assert trials[0]["trial"] == 1 and "trial 1" in printed
    assert [p.name for p in (out / "tune").glob("trial_*") if p.is_dir()] == [f"trial_1_{trials[0]['trial_id']}"]
    genome = Genome.load(out / "best_genome.yaml")
    assert genome.fingerprint() == trials[0]["fingerprint"]
    build(genome).load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    summary = json.loads((out / "summary.json").read_text())
    oneshot = summary["oneshot"]
    assert oneshot["final"] and oneshot["derived_last_changed"] == 1 and len(oneshot["history"]) == 1
    assert "skips_normal" in oneshot["history"][0] and oneshot["history"][0]["cell"]
    if strategy != "darts":
        assert oneshot["paths_scored"] == 3


def test_scoring_a_path_leaves_the_supernet_s_running_statistics_as_they_were(spaces, digits):
    space = fitted(spaces / "tiny_unread.yaml", digits)
    darts = search("darts", space, digits, epochs=1)
    darts.train_pass()
    before = [b.clone() for b in darts.supernet.buffers()]
    relaxed = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in darts._relaxed().items()}
    from nas.oneshot.search import accuracy

    supernet_accuracy = accuracy(darts.supernet, digits, darts.val_split, 256, **relaxed)
    path = darts.epoch_path()
    darts.score(path)  # recalibrates the path's BN statistics for its own score only
    assert all(torch.equal(a, b) for a, b in zip(before, darts.supernet.buffers()))
    assert accuracy(darts.supernet, digits, darts.val_split, 256, **relaxed) == supernet_accuracy
    # the path's weights with its recalibrated statistics, not the supernet's
    darts.result = {"sample": path}
    weights = darts.extract()
    assert all(torch.equal(a, b) for a, b in zip(before, darts.supernet.buffers()))
    build(space.realize(path)).load_state_dict(weights)
