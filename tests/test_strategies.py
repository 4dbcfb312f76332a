"""Search strategies as Ray Tune searchers, driven directly (suggest / on_trial_complete) with synthetic
scores computed from the sample: seeding, save/restore, dedupe, and each method's own behaviour."""
import math
import pickle
import random
import statistics

import pytest

from nas.genome import Genome
from nas.search.strategies import STRATEGIES, StrategyError, make_searcher
from nas.search.strategies.base import FINISHED
from nas.spaces import Choice, SearchSpace, load_space


class ToySpace(SearchSpace):
    """A cheap space with a conditional choice: width x depth x (conv kernel | pool kind), 160 genomes."""

    def __init__(self, widths=(4, 8, 12, 16, 20, 24, 28, 32), depths=(1, 2, 3, 4)):
        super().__init__("toy", [
            Choice("width", widths), Choice("depth", depths), Choice("kind", ("conv", "pool")),
            Choice("kernel", (1, 3, 5), {"kind": ("conv",)}), Choice("pool", ("max", "avg"), {"kind": ("pool",)}),
        ], input_channels=1, input_size=8, num_classes=10)

    def genome_of(self, s):
        layer = ({"op": "conv", "out": s["width"], "kernel": s["kernel"], "norm": "none"} if s["kind"] == "conv"
                 else {"op": f"{s['pool']}pool", "kernel": 3, "stride": 1, "padding": 1})
        return Genome.from_dict({
            "name": self.genome_name(s), "input": {"channels": 1, "size": 8}, "num_classes": 10,
            "stem": [{"op": "conv", "out": s["width"], "kernel": 1, "norm": "none"}],
            "stages": [{"cell": "layers", "repeats": s["depth"], "params": {"layers": [layer]}}],
            "head": [{"op": "global_avgpool"}],
        })


def score(sample, max_width=32, max_depth=4):
    """Synthetic accuracy in [0, 1]: wide, deep, large-kernel convs are best."""
    kernel = sample["kernel"] / 5 if sample.get("kind") == "conv" else 0.0
    return (sample["width"] / max_width + sample["depth"] / max_depth + kernel) / 3


def cost(sample):
    return sample["width"] * sample["depth"]


@pytest.fixture(scope="module")
def toy():
    return ToySpace()


def drive(searcher, trials, start=0, in_flight=1, result=None):
    """Run `trials` suggestions with up to `in_flight` pending (completed oldest first); returns the configs."""
    result = result or (lambda s: {"val_accuracy": score(s), "params": cost(s)})
    configs, pending = [], []
    i = start
    while len(configs) < trials:
        config = searcher.suggest(f"t{i}")
        if config == FINISHED or (config is None and not pending):
            break
        if config is None or len(pending) >= in_flight:
            trial_id, done = pending.pop(0)
            searcher.on_trial_complete(trial_id, result(done["sample"]))
            if config is None:
                continue
        configs.append(config)
        pending.append((f"t{i}", config))
        i += 1
    for trial_id, done in pending:
        searcher.on_trial_complete(trial_id, result(done["sample"]))
    return configs


STRATEGY_CASES = [
    ("random", None),
    ("evolution", None),
    ("rl", {"lr": 0.01}),
    ("optuna", None),
    ("optuna", {"sampler": "nsga2", "objectives": ["val_accuracy", "params"]}),
]
CASE_IDS = ["random", "evolution", "rl", "tpe", "nsga2"]


def test_every_contract_strategy_is_registered():
    assert set(STRATEGIES) == {"random", "evolution", "rl", "scaling", "optuna", "pnas",
                               "darts", "pcdarts", "spos", "rsws", "enas"}  # the last five: one-shot (nas.oneshot)


@pytest.mark.parametrize("strategy,options", STRATEGY_CASES, ids=CASE_IDS)
def test_configs_follow_the_contract(toy, strategy, options):
    searcher = make_searcher(strategy, toy, seed=0, max_trials=4, options=options)
    configs = drive(searcher, 4)
    assert len(configs) == 4
    for config in configs:
        assert set(config) == {"genome", "sample", "fingerprint"}
        assert Genome.from_dict(config["genome"]).fingerprint() == config["fingerprint"]
        assert toy.realize(config["sample"]).fingerprint() == config["fingerprint"]
    assert searcher.suggest("one-more") == FINISHED  # max_trials reached


@pytest.mark.parametrize("strategy,options", STRATEGY_CASES, ids=CASE_IDS)
def test_a_seed_reproduces_the_sequence(toy, strategy, options):
    runs = [[c["fingerprint"] for c in drive(make_searcher(strategy, toy, seed=seed, max_trials=12, options=options), 12)]
            for seed in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def complete(searcher, trial_id, config):
    searcher.on_trial_complete(trial_id, {"val_accuracy": score(config["sample"]), "params": cost(config["sample"])})


@pytest.mark.parametrize("strategy,options", STRATEGY_CASES, ids=CASE_IDS)
def test_save_and_restore_mid_run_continue_like_an_uninterrupted_run(toy, strategy, options, tmp_path):
    def fresh(seed=1):
        return make_searcher(strategy, toy, seed=seed, max_trials=30, options=options)

    def fingerprints(configs):
        return [c["fingerprint"] for c in configs]

    reference = fresh()  # uninterrupted: 4 trials (2 in flight), a 5th suggested and completed, 3 more
    ref_head = drive(reference, 4, in_flight=2)
    ref_pending = reference.suggest("t-pending")
    complete(reference, "t-pending", ref_pending)
    ref_tail = drive(reference, 3, start=100, in_flight=2)

    interrupted = fresh()  # the same, saved while the 5th trial is in flight and restored into a new searcher
    head = drive(interrupted, 4, in_flight=2)
    pending = interrupted.suggest("t-pending")
    interrupted.save(str(tmp_path / "state.pkl"))
    resumed = fresh(seed=999)  # the restored state replaces everything, the seed included
    resumed.restore(str(tmp_path / "state.pkl"))
    assert resumed.pending.keys() == {"t-pending"}
    complete(resumed, "t-pending", pending)
    tail = drive(resumed, 3, start=100, in_flight=2)

    assert fingerprints(head) == fingerprints(ref_head) and pending["fingerprint"] == ref_pending["fingerprint"]
    assert fingerprints(tail) == fingerprints(ref_tail)
    assert resumed.results == reference.results
    assert resumed.get_state()["core"].keys() == reference.get_state()["core"].keys()


@pytest.mark.parametrize("strategy,options", STRATEGY_CASES, ids=CASE_IDS)
def test_searchers_pickle_whole_as_tune_does(toy, strategy, options):
    searcher = make_searcher(strategy, toy, seed=2, max_trials=20, options=options)
    drive(searcher, 5)
    copy = pickle.loads(pickle.dumps(searcher))
    assert [c["fingerprint"] for c in drive(copy, 4, start=50)] == [c["fingerprint"] for c in drive(searcher, 4, start=50)]


# ----- dedupe -----

def test_dedupe_never_suggests_an_evaluated_genome_and_counts_duplicates():
    tiny = ToySpace(widths=(4,))  # 1 x 4 x (3 + 2) = 20 genomes
    searcher = make_searcher("random", tiny, seed=0, max_trials=50)
    configs = drive(searcher, 50, in_flight=3)
    fingerprints = [c["fingerprint"] for c in configs]
    assert len(fingerprints) == len(set(fingerprints)) == 20  # every genome once, then the space is exhausted
    assert searcher.suggest("after") == FINISHED
    assert searcher.duplicates_avoided > 0
    assert len(searcher.results) == 20


def test_a_duplicate_is_told_the_recorded_result():
    tiny = ToySpace(widths=(4,))
    searcher = make_searcher("evolution", tiny, seed=0, max_trials=20, options={"population": 4, "sample_size": 2})
    told = []
    core_tell = searcher.tell
    searcher.tell = lambda proposal, outcome: (told.append((proposal.sample, outcome)), core_tell(proposal, outcome))
    configs = drive(searcher, 20)
    assert searcher.duplicates_avoided > 0
    assert len(told) == len(configs) + searcher.duplicates_avoided  # every proposal is told exactly once
    for sample, outcome in told:
        assert outcome == searcher.results[tiny.realize(sample).fingerprint()]
        assert outcome["val_accuracy"] == pytest.approx(score(sample))


def test_duplicates_of_running_trials_wait_for_their_result():
    tiny = ToySpace(widths=(4,))
    searcher = make_searcher("rl", tiny, seed=0, max_trials=20, options={"lr": 0.0})
    configs = [searcher.suggest(f"t{i}") for i in range(6)]  # six in flight, none completed
    assert len({c["fingerprint"] for c in configs}) == 6
    waiting = sum(len(w) for w in searcher.waiting.values())
    assert waiting == searcher.duplicates_avoided
    for i, config in enumerate(configs):
        searcher.on_trial_complete(f"t{i}", {"val_accuracy": score(config["sample"])})
    assert not searcher.waiting and searcher.updates == 6 + waiting


def test_failed_trials_are_recorded_and_not_retried(toy):
    searcher = make_searcher("evolution", toy, seed=0, max_trials=10)
    first = searcher.suggest("a")
    searcher.on_trial_complete("a", None, error=True)
    second = searcher.suggest("b")
    searcher.on_trial_complete("b", {"val_accuracy": float("nan")})
    assert searcher.results == {first["fingerprint"]: None, second["fingerprint"]: None}
    assert searcher.population == []


# ----- each method's own behaviour -----

def test_regularized_evolution_population_improves_and_ages():
    big = ToySpace(widths=tuple(range(2, 66, 2)), depths=tuple(range(1, 9)))  # 1280 genomes: dedupe rarely bites

    def result(sample):
        return {"val_accuracy": score(sample, max_width=64, max_depth=8)}

    gains, evolved, randomly = [], [], []
    for seed in range(3):
        searcher = make_searcher("evolution", big, seed=seed, max_trials=30, options={"population": 10, "sample_size": 3})
        scores = [result(c["sample"])["val_accuracy"] for c in drive(searcher, 30, in_flight=2, result=result)]
        assert len(searcher.population) == 10  # aging: the population never grows past P
        gains.append(statistics.mean(s for _, s in searcher.population) - statistics.mean(scores[:10]))
        evolved.append(statistics.mean(scores[-10:]))
        baseline = drive(make_searcher("random", big, seed=seed, max_trials=30), 30, in_flight=2, result=result)
        randomly.append(statistics.mean(result(c["sample"])["val_accuracy"] for c in baseline[-10:]))
    assert all(gain > 0 for gain in gains)  # the population is better than the random one it started from
    assert statistics.mean(evolved) > statistics.mean(randomly) + 0.1


def test_evolution_kills_the_oldest_not_the_worst(toy):
    searcher = make_searcher("evolution", toy, seed=3, max_trials=12, options={"population": 3, "sample_size": 2})
    told = []
    core_tell = searcher.tell
    searcher.tell = lambda proposal, outcome: (told.append((proposal.sample, score(proposal.sample))),
                                               core_tell(proposal, outcome))
    drive(searcher, 12, in_flight=2)
    assert searcher.population == told[-3:]  # the three most recent children, whatever their scores


def test_evolution_defaults_scale_with_the_budget_up_to_the_paper(toy):
    assert make_searcher("evolution", toy, seed=0, max_trials=20).population_size == 8
    big = make_searcher("evolution", toy, seed=0, max_trials=1000)
    assert (big.population_size, big.sample_size) == (100, 25)


def test_evolution_default_sample_size_fits_a_small_population(toy):
    for population in (1, 2, 3):
        searcher = make_searcher("evolution", toy, seed=0, max_trials=6, options={"population": population})
        assert searcher.sample_size == min(population, 2)
        drive(searcher, 6)


def test_rl_controller_moves_toward_rewarded_actions(toy):
    def reward(sample):
        return {"val_accuracy": 1.0 if sample["kind"] == "conv" else 0.0}

    for lr, margin in ((0.02, 0.2), (0.0006, 0.0)):  # a fast lr moves far; the paper's lr moves the same way
        searcher = make_searcher("rl", toy, seed=0, max_trials=200, options={"lr": lr})
        prefix = {"width": 4, "depth": 1}
        before = searcher.probabilities(prefix, "kind")[0]
        drive(searcher, 25, result=reward)
        after = searcher.probabilities(prefix, "kind")[0]
        assert after > before + margin
    assert abs(before - 0.5) < 0.05  # uniform +-0.08 weights start near uniform


def test_rl_log_probability_only_counts_active_choices(toy):
    searcher = make_searcher("rl", toy, seed=0, max_trials=5)
    controller = searcher.controller
    sample = {"width": 8, "depth": 2, "kind": "pool", "pool": "max"}
    _, log_prob, _ = controller.walk(toy, forced=sample)
    controller.zero_grad()
    log_prob.backward()
    kernel_head = controller.heads[[c.name for c in toy.choices].index("kernel")]
    pool_head = controller.heads[[c.name for c in toy.choices].index("pool")]
    assert kernel_head.weight.grad is None or not kernel_head.weight.grad.any()
    assert pool_head.weight.grad is not None and pool_head.weight.grad.any()
    expected = 0.0
    for name, value in sample.items():
        prefix = {k: v for k, v in sample.items() if list(sample).index(k) < list(sample).index(name)}
        probs = searcher.probabilities(prefix, name)
        expected += math.log(probs[[c for c in toy.choices if c.name == name][0].index(value)])
    assert log_prob.item() == pytest.approx(expected, abs=1e-5)


def test_rl_defaults_are_zoph_and_le():
    from nas.search.strategies.rl import RLSearcher

    assert RLSearcher.OPTIONS["lr"] == 0.0006 and RLSearcher.OPTIONS["hidden"] == 35
    assert RLSearcher.OPTIONS["layers"] == 2 and RLSearcher.OPTIONS["init_range"] == 0.08


def test_tpe_concentrates_on_what_scores_well(toy):
    def result(sample):
        return {"val_accuracy": 1.0 if sample["kind"] == "conv" and sample["kernel"] == 5 else 0.1}

    hits = []
    for seed in range(2):
        searcher = make_searcher("optuna", toy, seed=seed, max_trials=40, options={"startup_trials": 8})
        configs = drive(searcher, 40, result=result)
        later = [c["sample"] for c in configs[8:]]
        hits.append(sum(s["kind"] == "conv" and s.get("kernel") == 5 for s in later) / len(later))
    assert statistics.mean(hits) > 1 / 6 + 0.15  # random search hits kind=conv, kernel=5 one time in six


def test_nsga2_handles_two_objectives(toy):
    searcher = make_searcher("optuna", toy, seed=0, max_trials=25,
                             options={"sampler": "nsga2", "objectives": ["val_accuracy", "params"], "population": 6})
    configs = drive(searcher, 24)
    assert len(configs) == 24
    study = searcher.study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    with searcher.sampling():  # the sampler of each step
        assert type(study.sampler).__name__ == "NSGAIISampler"
    front = study.best_trials
    assert front
    done = [t for t in study.trials if t.values is not None]
    for trial in front:  # nobody dominates a Pareto-optimal trial
        accuracy, params = trial.values
        assert not any(a >= accuracy and p <= params and (a, p) != (accuracy, params) for a, p in (t.values for t in done))
    # a result without the second objective is a failure, not a success
    config = searcher.suggest("no-params")
    searcher.on_trial_complete("no-params", {"val_accuracy": 0.9})
    assert searcher.results[config["fingerprint"]] is None


def test_several_objectives_need_nsga2(toy):
    with pytest.raises(StrategyError, match="nsga2"):
        make_searcher("optuna", toy, seed=0, max_trials=5, options={"objectives": ["val_accuracy", "params"]})


# ----- compound scaling -----

@pytest.fixture(scope="module")
def mobile_base(tmp_path_factory):
    space = load_space("mobile")
    path = tmp_path_factory.mktemp("base") / "base.yaml"
    space.realize(space.complete({f"stage{k}.repeats": 1 for k in range(2, 6)}, random.Random(0))).save(path)
    return path


def test_scaling_ranks_the_grid_then_scales_the_best(mobile_base):
    grid = [[2.0, 1.0, 1.0], [1.4, 1.2, 1.0], [1.15, 1.1, 1.2]]
    searcher = make_searcher("scaling", load_space("mobile"), seed=0, max_trials=10,
                             options={"base": str(mobile_base), "grid": grid, "phis": 3})
    step1 = [searcher.suggest(f"s{i}") for i in range(3)]
    assert [c["sample"] for c in step1] == [{"coefficients": point, "phi": 1} for point in grid]
    assert searcher.suggest("early") is None  # step 2 waits for the whole ranking
    favourite = [1.4, 1.2, 1.0]
    for i, config in enumerate(step1):
        searcher.on_trial_complete(f"s{i}", {"val_accuracy": 0.9 if config["sample"]["coefficients"] == favourite else 0.5})
    step2 = [searcher.suggest(f"p{i}") for i in range(2)]
    assert [c["sample"] for c in step2] == [{"coefficients": favourite, "phi": phi} for phi in (2, 3)]
    widths = [Genome.from_dict(c["genome"]).stages[-1].out for c in (step1[1], *step2)]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    for i in range(2):
        searcher.on_trial_complete(f"p{i}", {"val_accuracy": 0.9})
    assert searcher.suggest("done") == FINISHED
    assert searcher.best == favourite


def test_scaling_default_grid_and_base(mobile_base):
    searcher = make_searcher("scaling", load_space("mobile"), seed=0, max_trials=20, options={"base": str(mobile_base)})
    grid = searcher.space.choices[0].options
    assert all(abs(a * b * b * g * g - 2) <= 0.1 for a, b, g in grid) and len(grid) >= 4
    assert searcher.space.choices[1].options == (1, 2, 3)
    assert searcher.OPTIONS["base"] == "efficientnet_b0_cifar"


def test_scaling_fits_the_default_base_to_the_data():
    searcher = make_searcher("scaling", load_space("mobile"), seed=0, max_trials=20)
    base = searcher.space.base
    assert base.name == "efficientnet_b0_cifar"
    assert (base.input.channels, base.input.size, base.num_classes) == (1, (8, 8), 10)
    # 32x32 strides 1, 1, 2, 2, 1, 2, 1: on 8x8 the third reduction would start at 2x2 and is clipped
    assert [s.stride for s in base.stages] == [1, 1, 2, 2, 1, 1, 1]


# ----- real spaces, options, Ray -----

@pytest.mark.parametrize("strategy", ["random", "evolution", "rl", "optuna"])
def test_strategies_walk_the_conditional_macro_space(strategy):
    space = load_space("macro")
    searcher = make_searcher(strategy, space, seed=0, max_trials=3, options={"population": 2} if strategy == "evolution" else None)
    for config in drive(searcher, 3, result=lambda s: {"val_accuracy": 0.5 + 0.1 * (s["stage1.family"] == "dense")}):
        space.check_choices(config["sample"])


def test_unknown_strategies_and_options_are_reported(toy):
    with pytest.raises(StrategyError, match="unknown strategy 'annealing'"):
        make_searcher("annealing", toy, seed=0, max_trials=3)
    with pytest.raises(StrategyError, match="has no option 'populaton'.*population"):
        make_searcher("evolution", toy, seed=0, max_trials=3, options={"populaton": 5})
    with pytest.raises(StrategyError, match="mode"):
        make_searcher("random", toy, seed=0, max_trials=3, mode="maximize")


def test_tuner_runs_a_searcher_and_saves_its_state(toy, ray_session, tmp_path):
    from ray import tune

    from nas.engine.searcher import TuneSearcher

    def trainable(config):
        sample = config["sample"]
        kernel = sample["kernel"] / 5 if sample.get("kind") == "conv" else 0.0
        tune.report({"val_accuracy": (sample["width"] / 32 + sample["depth"] / 4 + kernel) / 3})

    searcher = make_searcher("evolution", toy, seed=0, max_trials=5, options={"population": 2})
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=TuneSearcher(searcher), num_samples=5, max_concurrent_trials=2,
                                                              metric="val_accuracy", mode="max", reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="toy", verbose=0))
    results = tuner.fit()
    assert len(results) == 5 and not results.errors
    fingerprints = [r.config["fingerprint"] for r in results]
    assert len(set(fingerprints)) == 5
    saved = list((tmp_path / "toy").glob("searcher-state-*.pkl"))
    assert saved
    restored = make_searcher("evolution", toy, seed=1, max_trials=5, options={"population": 2})
    restored.restore(str(saved[0]))
    assert set(restored.results) == set(fingerprints) and len(restored.population) == 2
    assert 1 <= restored.children <= 3  # after 2 random members, mutations (when a parent had completed)
