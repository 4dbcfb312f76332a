"""One-shot search over stage spaces: the sliced-weights supernet derived from the space, its exactness, SPOS / RSWS."""
import copy
import json
import random

import pytest
import torch

from nas import build
from nas.cli import main
from nas.genome import Genome
from nas.oneshot.search import make_search
from nas.oneshot.stage_supernet import StageSupernet
from nas.oneshot.supernet import OneShotError, supernet_for
from nas.search.strategies import strategy_class
from nas.spaces import load_space
from nas.train.settings import TrainSettings

# a plug-in stage space: two mbconv stages whose width, depth, kernel, expansion and SE ratio vary
TINY = """\
kind: stages
name: tiny_stages
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8, act: relu}
stages:
  - {width: [8, 12], stride: 1}
  - {width: [12, 16], stride: 2}
repeats: [1, 2]
families:
  mbconv:
    params: {kernel: [3, 5], expansion: [1.0, 3.0], se: [0.0, 0.25]}
head: [{op: global_avgpool}]
"""
# a choice between a convolution and a separable one at the same place: no slice of one is the other
UNSHARED = """\
kind: stages
name: unshared
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8}
stages:
  - {width: 8, stride: 1}
families:
  plain:
    template: layers
    params:
      layers: [[{op: conv, out: 8, kernel: 3}], [{op: sepconv, out: 8, kernel: 3}]]
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stages")
    (folder / "tiny_stages.yaml").write_text(TINY)
    (folder / "unshared.yaml").write_text(UNSHARED)
    return folder


def check_paths(space, paths=3, size=8, seed=0):
    """A few random paths: the supernet's forward (eval) equals nas.build(genome) loaded with the slices."""
    torch.manual_seed(seed)
    supernet = supernet_for(space)
    assert isinstance(supernet, StageSupernet)
    rng = random.Random(seed)
    x = torch.randn(4, space.input_channels, size, size)
    supernet.train()
    with torch.no_grad():
        for _ in range(2):  # move the shared BN statistics away from their initial values
            supernet(x, path=space.sample(rng))
    supernet.eval()
    seen = set()
    for _ in range(paths):
        path = space.sample(rng)
        genome, network = supernet.extract(path)
        assert genome == space.realize(path)
        network.eval()
        with torch.no_grad():
            expected = supernet(x, path=path)
            assert torch.allclose(network(x), expected, rtol=1e-5, atol=1e-5)
            assert not torch.allclose(build(genome).eval()(x), expected, atol=1e-3)  # the weights are what count
        seen.add(genome.fingerprint())
    return supernet, seen


@pytest.mark.parametrize("name", ["mobile", "compact", "macro"])
def test_a_fixed_path_of_a_stage_supernet_is_the_built_genome_with_sliced_weights(name):
    space = load_space(name, input_channels=1, input_size=8, num_classes=10)
    _, seen = check_paths(space, paths=2 if name == "macro" else 3)
    assert len(seen) > 1


def test_smaller_choices_are_slices_of_the_largest_weights(files):
    space = load_space(str(files / "tiny_stages.yaml"))
    supernet, _ = check_paths(space, paths=4)
    big = {"stage1.width": 12, "stage1.repeats": 2, "stage1.kernel": 5, "stage1.expansion": 3.0, "stage1.se": 0.25,
           "stage2.width": 16, "stage2.repeats": 2, "stage2.kernel": 5, "stage2.expansion": 3.0, "stage2.se": 0.25}
    small = {**big, "stage1.width": 8, "stage1.repeats": 1, "stage1.kernel": 3}
    _, large = supernet.extract(big)
    _, narrow = supernet.extract(small)
    key = next(k for k, e in supernet.entries.items() if k.startswith("stage1.mbconv.0.0.depthwise") and len(e.shape) == 4)
    shared = supernet.shared(key)
    assert tuple(shared.shape) == (24, 1, 5, 5)  # the largest: 8 input channels x expansion 3, kernel 5
    (depthwise,) = [v for n, v in narrow.stages[0][0].named_parameters() if tuple(v.shape) == (24, 1, 3, 3)]
    assert torch.equal(depthwise, shared[:24, :, 1:4, 1:4])  # the centre 3x3
    assert len(narrow.stages[0]) == 1 and len(large.stages[0]) == 2  # one block: the first of the two
    # training the small path reaches exactly its slice of the shared tensor
    supernet.train()
    supernet.zero_grad()
    supernet(torch.randn(4, 1, 8, 8), path=small).sum().backward()
    grad = shared.grad
    assert grad[:24, :, 1:4, 1:4].abs().sum() > 0
    inside = torch.zeros_like(grad, dtype=torch.bool)
    inside[:24, :, 1:4, 1:4] = True
    assert grad[~inside].abs().sum() == 0


def test_a_choice_that_cannot_share_weights_says_so_in_one_line(files, capsys):
    with pytest.raises(OneShotError, match=r"space 'unshared': choice stage1.layers cannot share weights") as error:
        supernet_for(load_space(str(files / "unshared.yaml")))
    assert "\n" not in str(error.value) and "'conv'" in str(error.value) and "'sepconv'" in str(error.value)
    code = main(["search", "--strategy", "spos", "--space", str(files / "unshared.yaml"), "--trials", "2",
                 "--epochs", "1", "--train-limit", "100", "--out", str(files / "refused")])
    err = capsys.readouterr().err
    assert code != 0 and "choice stage1.layers cannot share weights" in err and "Traceback" not in err
    assert not (files / "refused" / "summary.json").exists()
    code = main(["search", "--strategy", "darts", "--space", str(files / "tiny_stages.yaml"), "--trials", "2",
                 "--epochs", "1", "--out", str(files / "darts")])
    assert code != 0 and "spos or rsws" in capsys.readouterr().err


def test_spos_on_a_stage_space_trains_scores_paths_and_resumes_exactly(files):
    from nas.train.datasets import load_dataset

    data = load_dataset("digits", None, val_fraction=0.1, seed=0, train_limit=200)
    space = load_space(str(files / "tiny_stages.yaml"), input_channels=data.channels, input_size=data.size,
                       num_classes=data.num_classes)
    options = strategy_class("spos").resolve_options({"population": 2, "sample_size": 2, "bn_batches": 2})

    def search():
        return make_search("spos", space, data, TrainSettings(epochs=2, batch_size=32, lr=0.05), options, seed=1,
                           paths=3)

    straight = search()
    straight.train_epoch()
    state = copy.deepcopy(straight.state_dict())  # the tensors themselves train on
    second = straight.train_epoch()
    again = search()
    again.load_state_dict(state)
    assert again.train_epoch()["train_loss"] == second["train_loss"]
    told = []
    again.train_epoch(on_batch=lambda *batch: told.append(batch[:4]))  # the hook of in-epoch progress
    from nas.train.loop import steps_per_epoch

    total = steps_per_epoch(len(again.weight_split), 32)
    assert told == [("train", 3, done, total) for done in range(1, total + 1)]
    again.train_epoch()  # without a hook: the last one is not told again
    assert len(told) == total
    result = straight.finish()
    assert result["paths_scored"] == 3 and 0 <= result["val_accuracy"] <= 1
    genome = Genome.from_dict(result["genome"])
    build(genome).load_state_dict(straight.extract())
    rsws = make_search("rsws", space, data, TrainSettings(epochs=1, batch_size=32, lr=0.05),
                       strategy_class("rsws").resolve_options({"bn_batches": 1}), seed=1, paths=2)
    rsws.train_epoch()
    assert rsws.finish()["paths_scored"] == 2


def test_paths_over_the_size_limits_are_not_scored_and_the_answer_fits_them(files):
    """--max-params / --max-flops bound the answer of SPOS / RSWS as they bound a multi-trial search's trials:
    a path over them is told to the strategy as failed, not scored; none within them is one line."""
    from nas.summary import summary
    from nas.train.datasets import load_dataset

    data = load_dataset("digits", None, val_fraction=0.1, seed=0, train_limit=100)
    space = load_space(str(files / "tiny_stages.yaml"), input_channels=data.channels, input_size=data.size,
                       num_classes=data.num_classes)
    sizes = sorted(summary(space.realize(space.sample(random.Random(k)))).params for k in range(9))
    limit = sizes[4]  # the median of nine sampled paths

    def search(max_params):
        found = make_search("rsws", space, data, TrainSettings(epochs=1, batch_size=32, lr=0.05,
                                                              max_params=max_params),
                            strategy_class("rsws").resolve_options({"bn_batches": 1}), seed=1, paths=6)
        found.train_epoch()
        return found

    result = search(limit).finish()
    assert result["params"] <= limit
    assert result["paths_over_budget"] >= 1 and result["paths_scored"] >= 1
    assert result["paths_scored"] + result["paths_over_budget"] == 6
    with pytest.raises(OneShotError, match=r"no path could be scored \(6 over the size limits --max-params 1 "):
        search(1).finish()


def test_spos_over_a_stage_space_ends_with_a_genome_that_nas_train_retrains(files, tmp_path, ray_session, capsys,
                                                                           monkeypatch):
    """... and its one trial posts its training batches to the search's progress board, as every trial does
    (a supernet's epoch on real data is long: the view shows it moving, with an ETA)."""
    import contextlib
    import time

    import ray

    from nas.oneshot import run as oneshot_run

    seen, original = {}, oneshot_run.progress_board

    @contextlib.contextmanager
    def keeping(view):
        with original(view) as name:
            yield name
            actor = ray.get_actor(name)
            deadline = time.monotonic() + 30  # posts are fire-and-forget: wait for them to land
            while not seen and time.monotonic() < deadline:
                seen.update(ray.get(actor.read.remote()))

    monkeypatch.setattr(oneshot_run, "progress_board", keeping)
    out = tmp_path / "spos"  # (RSWS trains the supernet the same way: the test above and test_oneshot.py cover it)
    code = main(["search", "--strategy", "spos", "--space", str(files / "tiny_stages.yaml"), "--trials", "3",
                 "--epochs", "1", "--train-limit", "200", "--out", str(out), "--option", "population=2",
                 "--option", "sample_size=2"])
    assert code == 0, capsys.readouterr().err
    (snapshot,) = seen.values()
    assert snapshot["epoch"] == 1 and snapshot["phase"] == "train" and 1 <= snapshot["done"] <= snapshot["total"]
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) == 1 and trials[0]["status"] == "TERMINATED"
    genome = Genome.load(out / "best_genome.yaml")
    assert genome.fingerprint() == trials[0]["fingerprint"]
    build(genome).load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    assert json.loads((out / "summary.json").read_text())["oneshot"]["paths_scored"] == 3
    trained = tmp_path / "trained"
    assert main(["train", str(out / "best_genome.yaml"), "--dataset", "digits", "--train-limit", "200",
                 "--batch-size", "32", "--epochs", "1", "--out", str(trained)]) == 0
    assert Genome.load(trained / "genome.yaml").fingerprint() == genome.fingerprint()
