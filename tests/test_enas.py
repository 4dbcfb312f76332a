"""ENAS (`--strategy enas`): the rl controller samples supernet paths and learns from shared-weight rewards."""
import json

import pytest
import torch

from nas import build
from nas.cli import main
from nas.compare.plan import read_run
from nas.genome import Genome
from nas.oneshot.search import make_search
from nas.search.strategies import strategy_class
from nas.search.strategies.rl import RLSearcher
from nas.spaces import load_space
from nas.train.datasets import load_dataset
from nas.train.settings import TrainSettings

TINY = """\
kind: cells
name: tiny_cells
blocks: 2
network: {channels: 4, normal_cells: 1, stages: 2}
ops:
  sep_conv_3x3: {op: sepconv, out: "@out", kernel: 3, stride: "@stride", preact: true}
  max_pool_3x3: {op: maxpool, kernel: 3, stride: "@stride", padding: 1}
  skip_connect: {op: skip_connect, out: "@out", stride: "@stride"}
"""
# one block whose two sides take an op each: passing the stem's features on (skip) or nothing (zero)
SKIP_OR_ZERO = """\
kind: cells
name: skip_or_zero
blocks: 1
network: {channels: 8, normal_cells: 1, stages: 1}
ops:
  skip_connect: {op: skip_connect, out: "@out", stride: "@stride"}
  zero: {op: zero, stride: "@stride"}
"""
SMALL = {"controller_steps": 2, "paths_per_step": 2, "bn_batches": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def spaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("enas")
    (folder / "tiny.yaml").write_text(TINY)
    (folder / "skip_or_zero.yaml").write_text(SKIP_OR_ZERO)
    return folder


def fitted(path, data):
    return load_space(str(path), input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)


def enas(space, data, epochs=2, weight_lr=0.05, **options):
    options = strategy_class("enas").resolve_options(options)
    return make_search("enas", space, data, TrainSettings(epochs=epochs, batch_size=32, lr=weight_lr), options, seed=3,
                       paths=3)


def test_the_controller_learns_to_prefer_the_op_that_scores(spaces):
    """Paths whose ops are zeros classify at chance; the controller's probability of skip rises."""
    data = load_dataset("digits", None, val_fraction=0.1, seed=0, train_limit=600)
    search = enas(fitted(spaces / "skip_or_zero.yaml", data), data, epochs=3, weight_lr=0.1, lr=0.003,
                  controller_steps=10, paths_per_step=2, entropy_weight=0.0)
    prefix = {"normal.b0.input_a": "prev"}

    def p_skip() -> float:
        return search.controller.probabilities(prefix, "normal.b0.op_a")[0]

    before = p_skip()
    assert 0.4 < before < 0.6
    while not search.done:
        metrics = search.train_epoch()
    assert p_skip() > before + 0.15
    assert metrics["sample"]["normal.b0.op_a"] == "skip_connect"  # the epoch's path: the most likely one
    assert metrics["controller_updates"] == 30 and metrics["controller_reward"] > 0.15


def test_an_interrupted_enas_search_resumes_exactly(spaces):
    data = load_dataset("digits", None, val_fraction=0.1, seed=0, train_limit=300)
    space = fitted(spaces / "tiny.yaml", data)
    straight = enas(space, data, **SMALL)
    buffers = {k: v.clone() for k, v in straight.supernet.state_dict().items() if "running" in k}
    assert 0 <= straight.reward(straight.controller.ask().sample) <= 1
    assert all(torch.equal(v, straight.supernet.state_dict()[k]) for k, v in buffers.items())  # no val data in BN
    straight = enas(space, data, **SMALL)
    while not straight.done:
        metrics = straight.train_epoch()
    assert metrics["epoch"] == 2 and 0 <= metrics["val_accuracy"] <= 1 and "param_free_normal" in metrics
    first = enas(space, data, **SMALL)
    first.train_epoch()
    again = enas(space, data, **SMALL)
    again.load_state_dict(first.state_dict())
    resumed = again.train_epoch()
    for key in ("sample", "train_loss", "val_accuracy", "controller_reward", "controller_baseline",
                "controller_updates", "controller_entropy"):
        assert resumed[key] == metrics[key], key
    for name, value in straight.supernet.state_dict().items():
        assert torch.equal(value, again.supernet.state_dict()[name]), name
    for name, value in straight.controller.controller.state_dict().items():
        assert torch.equal(value, again.controller.controller.state_dict()[name]), name
    assert again.controller.optimizer.state_dict()["state"].keys() == \
        straight.controller.optimizer.state_dict()["state"].keys()
    result, resumed_result = straight.finish(), again.finish()
    assert resumed_result["sample"] == result["sample"] and resumed_result["val_accuracy"] == result["val_accuracy"]
    assert 1 <= result["paths_scored"] <= 3 and len(again.history) == 2
    build(Genome.from_dict(result["genome"])).load_state_dict(straight.extract())


def test_tell_many_with_one_sample_is_tell():
    space = load_space("cells")
    a, b = (RLSearcher(space, seed=0, max_trials=5, options={"lr": 0.01}) for _ in range(2))
    for reward in (0.2, 0.7, 0.4):
        proposal = a.ask()
        assert b.ask().sample == proposal.sample
        a.tell(proposal, {"val_accuracy": reward})
        b.tell_many([proposal], [{"val_accuracy": reward}])
    assert a.baseline == b.baseline and a.updates == b.updates == 3
    for name, value in a.controller.state_dict().items():
        assert torch.equal(value, b.controller.state_dict()[name]), name


def test_enas_runs_as_one_trial_whose_genome_trains_and_compares(spaces, tmp_path, ray_session, capsys):
    out = tmp_path / "enas"
    options = [f"--option={k}={v}" for k, v in SMALL.items()]
    assert main(["search", "--strategy", "enas", "--space", str(spaces / "tiny.yaml"), "--trials", "3",
                 "--epochs", "1", "--train-limit", "300", "--out", str(out), *options]) == 0
    assert "derived cell last changed" in capsys.readouterr().out
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) == 1 and trials[0]["status"] == "TERMINATED"
    genome = Genome.load(out / "best_genome.yaml")
    assert genome.fingerprint() == trials[0]["fingerprint"]
    build(genome).load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    oneshot = json.loads((out / "summary.json").read_text())["oneshot"]
    assert oneshot["final"] and len(oneshot["history"]) == 1 and "param_free_normal" in oneshot["history"][0]
    assert read_run(out).best == genome  # what `nas compare` retrains
    assert main(["train", str(out / "best_genome.yaml"), "--dataset", "digits", "--train-limit", "200",
                 "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "retrained")]) == 0
