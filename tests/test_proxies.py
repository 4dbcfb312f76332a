"""Zero-cost proxies on hand-checked cases, the proxy registry, evaluator names and table lookups (no Ray)."""
import math

import pytest
import torch
from torch import nn

import nas
from nas.errors import RegistryError
from nas.evaluate.bench import correlations
from nas.evaluate.proxies import Candidate, binary_code_kernel, jacob_cov_minimum, score
from nas.evaluate.registry import PROXIES, builtin_names, proxy
from nas.evaluate.spec import BUILTIN_PROXIES, EvaluatorError, parse_evaluator
from nas.evaluate.table import Entry, Table, TableError
from nas.genome import Genome
from nas.train.datasets import load_dataset

TINY = """
name: tiny_proxy_net
input: {channels: 1, size: 8}
num_classes: 10
stem: [{op: conv, out: 8, kernel: 3}]
stages:
  - {cell: basic, out: 8}
  - {cell: basic, out: 16, stride: 2}
head: [{op: global_avgpool}]
"""


def chain(zero_first: bool = False) -> nn.Module:
    """A plain chain (no skip, no bias before the classifier): conv-BN-ReLU twice, pool, linear."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                          nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    if zero_first:
        with torch.no_grad():
            model[0].weight.zero_()
    return model


def chain_candidate(zero_first: bool = False, x: torch.Tensor | None = None) -> Candidate:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 8, 8, generator=generator) if x is None else x
    return Candidate(lambda: chain(zero_first), x, torch.arange(len(x)) % 3, 3, seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", train_limit=200)


@pytest.fixture(scope="module")
def genome():
    return Genome.from_yaml(TINY)


def test_the_registry_holds_every_builtin_proxy_and_refuses_a_duplicate():
    assert set(BUILTIN_PROXIES) == set(builtin_names())
    with pytest.raises(RegistryError, match="already registered"):
        proxy("synflow")(lambda candidate: 0.0)


def test_a_proxy_registered_from_python_scores_candidates():
    @proxy("test_depth", paper="counts layers")
    def depth(candidate):
        return float(sum(1 for m in candidate.network().modules() if isinstance(m, nn.Conv2d)))

    try:
        assert score("test_depth", chain_candidate()) == 2.0
        assert parse_evaluator("proxy:test_depth").argument == "test_depth"
    finally:
        PROXIES._entries.pop("test_depth")


def test_synflow_of_a_network_with_a_zeroed_layer_is_zero():
    assert score("synflow", chain_candidate()) > 0.0
    assert score("synflow", chain_candidate(zero_first=True)) == 0.0


def test_synflow_reads_no_data_and_leaves_other_proxies_the_original_weights():
    candidate = chain_candidate()
    other = Candidate(candidate.build, torch.zeros_like(candidate.x), candidate.y, 3, seed=0)
    assert score("synflow", candidate) == score("synflow", other)
    before = score("snip", candidate)
    score("synflow", candidate)  # takes absolute values of its own network's weights only
    assert score("snip", candidate) == before


def test_naswot_kernel_and_score_on_a_hand_checked_case():
    # one ReLU layer over two units; codes [1, 0] and [0, 1]: K = [[2, 0], [0, 2]], log|K| = log 4
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).view(2, 2, 1, 1)
    candidate = Candidate(lambda: nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(2, 2)), x, torch.tensor([0, 1]), 2)
    kernel = binary_code_kernel(candidate.network(), x)
    assert kernel.tolist() == [[2.0, 0.0], [0.0, 2.0]]
    assert score("naswot", candidate) == pytest.approx(math.log(4.0))


def test_naswot_of_two_inputs_with_identical_activations_is_its_minimum():
    image = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    same = chain_candidate(x=torch.cat([image, image]))
    assert score("naswot", same) == -math.inf  # K_H singular: the documented minimum
    assert math.isfinite(score("naswot", chain_candidate()))


def test_jacob_cov_of_two_inputs_in_the_same_linear_region_is_its_documented_minimum():
    # a bias-free ReLU network: x and 2x switch the same units on, so their input Jacobians are equal
    # (correlation 1, eigenvalues 2 and 0): the rank-1 minimum; two inputs in different regions score more
    def net():
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False))

    x = torch.randn(1, 4, 1, 1, generator=torch.Generator().manual_seed(2))
    same = Candidate(net, torch.cat([x, 2 * x]), torch.tensor([0, 1]), 3, seed=0)
    assert score("jacob_cov", same) == pytest.approx(jacob_cov_minimum(2), rel=1e-9)
    apart = Candidate(net, torch.cat([x, -x]), torch.tensor([0, 1]), 3, seed=0)
    assert score("jacob_cov", apart) > jacob_cov_minimum(2) + 1.0
    k = 1e-5  # by hand: -(log(2 + k) + 1/(2 + k) + log k + 1/k)
    assert jacob_cov_minimum(2) == pytest.approx(-(math.log(2 + k) + 1 / (2 + k) + math.log(k) + 1 / k))


def test_gradient_proxies_are_positive_and_repeat_with_a_seed(genome, digits):
    first = Candidate.of(genome, digits, seed=3, batch_size=16)
    again = Candidate.of(genome, digits, seed=3, batch_size=16)
    other = Candidate.of(genome, digits, seed=4, batch_size=16)
    for name in ("grad_norm", "snip", "fisher", "synflow"):
        value = score(name, first)
        assert value > 0.0 and math.isfinite(value), name
        assert score(name, again) == value, name
    assert score("grad_norm", other) != score("grad_norm", first)  # another initialisation and minibatch
    assert math.isfinite(score("jacob_cov", first)) and score("jacob_cov", again) == score("jacob_cov", first)


def test_snip_is_the_sum_of_gradient_times_weight():
    candidate = chain_candidate()
    model = candidate.network()
    model.train()
    nn.functional.cross_entropy(model(candidate.x), candidate.y).backward()
    expected = sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in model.modules()
                   if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert score("snip", candidate) == pytest.approx(expected)


def test_params_and_flops_equal_nas_summary(genome, digits):
    candidate = Candidate.of(genome, digits, seed=0, batch_size=8)
    cost = nas.summarize(genome, num_classes=10, in_channels=1, input_size=8)
    assert score("params", candidate) == cost.params
    assert score("flops", candidate) == cost.flops


def test_evaluator_names_are_checked_in_one_line(tmp_path):
    assert str(parse_evaluator("train")) == "train"
    assert parse_evaluator("proxy:synflow").metric == "score"
    assert parse_evaluator("table:x", check=False).metric == "val_accuracy"
    for text, message in [("trian", "did you mean"), ("proxy:synflw", "did you mean 'synflow'"),
                          ("proxy:", "needs a proxy name"), ("train:x", "takes no argument"),
                          (f"table:{tmp_path / 'none'}", "no table at")]:
        with pytest.raises(EvaluatorError, match=message) as error:
            parse_evaluator(text)
        assert "\n" not in str(error.value)


def entry(genome: Genome, accuracy: float) -> Entry:
    return Entry(genome.fingerprint(), genome.to_dict(), None, [accuracy / 2, accuracy], accuracy - 0.01, 100, 200,
                 1.0, 0.0, 1.0, 0)


def test_a_table_answers_exactly_and_names_a_missing_genome_in_one_line(genome, tmp_path):
    wider = nas.scale(genome, width=2.0)
    table = Table({"space": "tiny", "dataset": "digits", "epochs": 2, "seed": 0}, [entry(genome, 0.5)])
    path = table.save(tmp_path / "table.json")
    loaded = Table.load(tmp_path)
    renamed = Genome.from_dict({**genome.to_dict(), "name": "another_name"})  # the same network
    assert loaded.lookup(renamed).final_val_accuracy == 0.5
    assert loaded.lookup(wider) is None
    line = loaded.missing_line(wider, str(path))
    assert "\n" not in line and "not in the table" in line and "1 architectures" not in line
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(TableError, match="not a table"):
        Table.load(tmp_path / "bad.json")


def test_correlations_match_hand_computed_ranks():
    tau, rho, used = correlations([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4])
    assert (tau, rho, used) == (pytest.approx(1.0), pytest.approx(1.0), 4)
    tau, rho, _ = correlations([4.0, 3.0, 2.0, 1.0], [0.1, 0.2, 0.3, 0.4])
    assert tau == pytest.approx(-1.0) and rho == pytest.approx(-1.0)
    _, rho, used = correlations([1.0, -math.inf, 3.0, 2.0], [0.1, 0.2, 0.3, 0.25])  # -inf scores left out
    assert used == 3 and rho == pytest.approx(1.0)
    assert math.isnan(correlations([1.0, 2.0], [0.1, 0.2])[1])


def test_a_warm_start_puts_the_best_proxy_scored_samples_first_in_evolution(digits):
    from nas.evaluate.warmup import warm_samples
    from nas.search.strategies import make_searcher
    from nas.spaces import load_space

    space = load_space("macro", input_channels=1, input_size=8, num_classes=10)
    warm = warm_samples(space, digits, "params", 5, seed=0, batch_size=8)
    sizes = [nas.summarize(space.realize(s), num_classes=10, in_channels=1, input_size=8).params for s in warm]
    assert len(warm) == 5 and sizes == sorted(sizes, reverse=True)
    strategy = make_searcher("evolution", space, seed=0, max_trials=6, options={"population": 3, "sample_size": 2})
    strategy.warm_start(warm)
    first = strategy.suggest("t0")
    assert first["sample"] == warm[0]
    state = strategy.get_state()
    again = make_searcher("evolution", space, seed=0, max_trials=6, options={"population": 3, "sample_size": 2})
    again.set_state(state)  # what is left of the warm start is saved and restored with the strategy
    assert again.suggest("t1")["sample"] == strategy.suggest("t1")["sample"] == warm[1]


def test_a_proxy_searchs_closing_lines_never_call_a_score_an_accuracy():
    from nas.evaluate.hooks import summary_lines

    best = {"index": 2, "score": 1.5e20, "genome_file": "best_genome.yaml", "train_command": "nas train x"}
    untrained = summary_lines({"evaluator": "proxy:synflow", "best": dict(best)})
    assert "not an accuracy; not trained" in untrained[0] and untrained[1].endswith("nas train x")
    trained = summary_lines({"evaluator": "proxy:synflow", "best": {
        **best, "val_accuracy": 0.9, "test_accuracy": 0.85, "trained_from_scratch": {"epochs": 3}}})
    assert trained[1].startswith("trained from scratch (3 epochs): val 0.9000, test 0.8500")
    assert summary_lines({"evaluator": "train", "best": best}) is None
