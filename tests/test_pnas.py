"""Progressive NAS (`--strategy pnas`): the shared strategy contract, growth on the cells space, the
predictor, save/restore across steps, options, and small end-to-end searches (Tune, then the CLI)."""
import json
import random
import statistics

import pytest
import test_strategies as shared
import torch

from nas.cli import main
from nas.genome import Genome
from nas.search.strategies import StrategyError, make_searcher
from nas.search.strategies.base import FINISHED
from nas.search.strategies.pnas import completions, growth_blocks
from nas.search.strategies.predictor import Ensemble, OneHot
from nas.spaces import SpaceError, load_space
from nas.spaces.base import sample_key

FAST = {"epochs": 30, "hidden": 16, "candidates": 100}  # a small predictor: the tests check behaviour, not fit quality

TINY_CELLS = """
kind: cells
name: tiny_cells
input: {channels: 1, size: 8}
num_classes: 10
blocks: 3
network: {channels: [8], normal_cells: [1], stages: 1}
ops:
  conv_3x3: {op: conv, kernel: 3, out: "@out", stride: "@stride"}
  max_pool_3x3: {op: maxpool, kernel: 3, stride: "@stride", padding: 1}
  identity: {op: skip_connect, out: "@out", stride: "@stride"}
"""


@pytest.fixture(scope="module")
def toy():
    return shared.ToySpace()


@pytest.fixture(scope="module")
def cells():
    return load_space("cells")


def blocks_of(sample):
    return len({name.split(".")[1] for name in sample if name.startswith("normal.b")})


def cell_score(sample):
    """Synthetic accuracy of a cells sample: separable convs and more blocks score higher."""
    ops = [value for name, value in sample.items() if ".op_" in name]
    return {"val_accuracy": 0.5 + 0.02 * sum(op.startswith("sep") for op in ops) + 0.01 * len(ops),
            "params": float(len(ops))}


# ----- the shared contract (the same checks as every other strategy) -----

CASES = [FAST, {**FAST, "k": 3, "warmup": 4}]


@pytest.mark.parametrize("options", CASES, ids=["default", "k3"])
def test_pnas_follows_the_strategy_contract(toy, options):
    shared.test_configs_follow_the_contract(toy, "pnas", options)
    shared.test_a_seed_reproduces_the_sequence(toy, "pnas", options)
    shared.test_searchers_pickle_whole_as_tune_does(toy, "pnas", options)


@pytest.mark.parametrize("options", CASES, ids=["default", "k3"])
def test_pnas_restored_mid_run_continues_like_an_uninterrupted_run(toy, options, tmp_path):
    shared.test_save_and_restore_mid_run_continue_like_an_uninterrupted_run(toy, "pnas", options, tmp_path)


def test_pnas_walks_the_conditional_macro_space():
    space = load_space("macro")
    searcher = make_searcher("pnas", space, seed=0, max_trials=4, options={**FAST, "warmup": 2})
    assert searcher.blocks is None
    for config in shared.drive(searcher, 4, result=lambda s: {"val_accuracy": 0.5 + 0.1 * (s["stage1.family"] == "dense")}):
        space.check_choices(config["sample"])
    assert searcher.fits  # the last two proposals were predicted


# ----- growth on the cells space -----

def test_grown_cells_keep_the_names_of_their_blocks(cells):
    assert growth_blocks(cells) == cells.blocks == 5
    names = [c.name for c in cells.choices]
    for blocks in (1, 2, 3, 4):
        small, big = cells.grown(blocks), cells.grown(blocks + 1)
        assert small.blocks == blocks and small.name == cells.name
        small_names = [c.name for c in small.choices]
        assert set(small_names) < {c.name for c in big.choices} and set(small_names) < set(names)
        assert all(c.options == big.choices[[d.name for d in big.choices].index(c.name)].options for c in small.choices)
        sample = small.sample(random.Random(blocks))
        extended = big.complete(sample, random.Random(0))
        assert {k: extended[k] for k in sample} == sample  # a sample is a prefix of its expansions
        big.realize(extended)
    assert [c.name for c in cells.grown(5).choices] == names
    # grown() leaves the space itself alone: channels and normal_cells (two values each), then per cell kind
    # (normal, reduce: 3 stages) and block, input_a, op_a, input_b and op_b
    assert len(cells.choices) == 2 + 2 * 5 * 4
    with pytest.raises(SpaceError, match="positive integer"):
        cells.grown(0)


def test_completions_enumerate_every_expansion(tmp_path):
    path = tmp_path / "tiny_cells.yaml"
    path.write_text(TINY_CELLS)
    space = load_space(path)
    one = space.grown(1).sample(random.Random(0))
    expansions = completions(space.grown(2), one)
    # block 1 of the one cell searched (one stage: no reduction cell) reads prev_prev, prev or b0 on each
    # side, through one of 3 ops, and adds the two: (3 inputs x 3 ops)^2
    assert len(expansions) == (3 * 3) ** 2 == len({sample_key(s) for s in expansions})
    assert all({k: s[k] for k in one} == one for s in expansions)


def test_cells_grow_one_block_per_step_from_the_trained_cells(cells):
    searcher = make_searcher("pnas", cells, seed=0, max_trials=15, options={**FAST, "k": 3, "warmup": 3})
    assert (searcher.blocks, searcher.k, searcher.warmup) == (5, 3, 3)
    step1 = [searcher.suggest(f"a{i}") for i in range(3)]
    assert searcher.suggest("early") is None  # step 2 waits for all of step 1
    for i, config in enumerate(step1):
        searcher.on_trial_complete(f"a{i}", cell_score(config["sample"]))
    configs = step1 + shared.drive(searcher, 12, start=10, in_flight=2, result=cell_score)
    assert searcher.suggest("over budget") == FINISHED
    assert [blocks_of(c["sample"]) for c in configs] == [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3
    for i in range(3, 15):  # each is an expansion of a cell trained at the step before
        sample = configs[i]["sample"]
        parents = configs[3 * (i // 3 - 1): 3 * (i // 3)]
        assert any(all(sample[k] == v for k, v in p["sample"].items()) for p in parents)
        assert cells.grown(blocks_of(sample)).realize(sample).fingerprint() == configs[i]["fingerprint"]
        assert Genome.from_dict(configs[i]["genome"]).fingerprint() == configs[i]["fingerprint"]
    assert len({c["fingerprint"] for c in configs}) == 15
    assert [fit["step"] for fit in searcher.fits] == [2, 3, 4, 5]
    assert all(fit["heldout_mae"] is not None for fit in searcher.fits)
    assert searcher.prediction_error()["n"] == 12  # steps 2-5 were predicted, then compared with their results


def test_the_budget_ends_the_search_mid_step(cells):
    searcher = make_searcher("pnas", cells, seed=1, max_trials=5, options={**FAST, "k": 3, "warmup": 3})
    configs = shared.drive(searcher, 10, in_flight=3, result=cell_score)
    assert [blocks_of(c["sample"]) for c in configs] == [1, 1, 1, 2, 2]
    assert searcher.suggest("more") == FINISHED


def test_after_the_last_block_the_search_goes_on_guided(tmp_path):
    path = tmp_path / "tiny_cells.yaml"
    path.write_text(TINY_CELLS)
    space = load_space(path)
    searcher = make_searcher("pnas", space, seed=0, max_trials=9, options={**FAST, "k": 2, "warmup": 2})
    configs = shared.drive(searcher, 9, in_flight=2, result=cell_score)
    assert [blocks_of(c["sample"]) for c in configs] == [1, 1, 2, 2, 3, 3, 3, 3, 3]
    assert searcher.phase == "guided" and len(configs) == 9


def test_the_defaults_fill_the_budget_with_the_growth(cells):
    # B = 5 blocks: warmup = 20 // 5 = 4 one-block cells, then k = (20 - 4) // (5 - 1) = 4 per step: 20 trials
    searcher = make_searcher("pnas", cells, seed=0, max_trials=20)
    assert (searcher.warmup, searcher.k) == (4, 4)
    searcher = make_searcher("pnas", cells, seed=0, max_trials=20, options={"warmup": 8})
    assert searcher.k == (20 - 8) // (5 - 1) == 3
    guided = make_searcher("pnas", load_space("macro"), seed=0, max_trials=40)
    assert (guided.warmup, guided.k) == (10, 1)


@pytest.mark.parametrize("in_flight", [1, 3])
def test_pnas_restored_at_any_point_of_the_growth_continues_exactly(cells, tmp_path, in_flight):
    def fresh(seed=4):
        return make_searcher("pnas", cells, seed=seed, max_trials=10, options={**FAST, "k": 2, "warmup": 3})

    uninterrupted = fresh()
    reference = [c["fingerprint"] for c in shared.drive(uninterrupted, 10, in_flight=in_flight, result=cell_score)]
    for cut in (2, 3, 5):  # in step 1, at its end (step 2 not started), in step 2 with trials in flight
        searcher = fresh()
        head = shared.drive(searcher, cut, in_flight=in_flight, result=cell_score)
        searcher.save(str(tmp_path / "state.pkl"))
        resumed = fresh(seed=99)
        resumed.restore(str(tmp_path / "state.pkl"))
        tail = shared.drive(resumed, 10 - cut, start=cut, in_flight=in_flight, result=cell_score)
        assert [c["fingerprint"] for c in head + tail] == reference
        assert without_seconds(resumed.fits) == without_seconds(uninterrupted.fits)


def without_seconds(fits):
    return [{k: v for k, v in fit.items() if k != "seconds"} for fit in fits]


def test_a_state_of_another_space_is_refused(cells, toy):
    saved = make_searcher("pnas", toy, seed=0, max_trials=5, options=FAST).get_state()
    with pytest.raises(StrategyError, match="another search space"):
        make_searcher("pnas", cells, seed=0, max_trials=5, options=FAST).set_state(saved)


# ----- the predictor -----

def test_the_ensemble_learns_a_ranking_and_reports_its_held_out_error(toy):
    rng = random.Random(0)
    samples = [toy.sample(rng) for _ in range(60)]
    encoding = OneHot(toy)
    x = encoding.encode(samples)
    assert x.shape == (60, sum(len(c.options) for c in toy.choices))
    assert torch.equal(x.sum(1), torch.tensor([float(len(s)) for s in samples]))  # one 1 per active choice
    scores = [shared.score(s) for s in samples]
    fits = [Ensemble(encoding.width, members=5, hidden=32, epochs=200, lr=0.01) for _ in range(2)]
    stats = [fit.fit(x[:40], scores[:40], seed=3) for fit in fits]
    assert stats[0]["folds"] == 5 and stats[0]["heldout_spearman"] > 0.7
    assert {k: v for k, v in stats[0].items() if k != "seconds"} == {k: v for k, v in stats[1].items() if k != "seconds"}
    predicted = fits[0].predict(x[40:])
    assert predicted == fits[1].predict(x[40:])  # a seed gives the same fit
    assert statistics.correlation(predicted, scores[40:]) > 0.7  # and it generalises to unseen samples


def test_predictor_guided_search_beats_random_search():
    big = shared.ToySpace(widths=tuple(range(2, 66, 2)), depths=tuple(range(1, 9)))  # 1280 genomes

    def result(sample):
        return {"val_accuracy": shared.score(sample, max_width=64, max_depth=8)}

    guided, randomly = [], []
    for seed in range(2):
        searcher = make_searcher("pnas", big, seed=seed, max_trials=24, options={**FAST, "warmup": 8, "k": 4})
        configs = shared.drive(searcher, 24, in_flight=2, result=result)
        guided.append(statistics.mean(result(c["sample"])["val_accuracy"] for c in configs[8:]))
        baseline = shared.drive(make_searcher("random", big, seed=seed, max_trials=24), 24, in_flight=2, result=result)
        randomly.append(statistics.mean(result(c["sample"])["val_accuracy"] for c in baseline[8:]))
    assert statistics.mean(guided) > statistics.mean(randomly) + 0.1


def test_an_exhausted_space_ends_the_search():
    tiny = shared.ToySpace(widths=(4,))  # 20 genomes
    searcher = make_searcher("pnas", tiny, seed=0, max_trials=50, options=FAST)
    configs = shared.drive(searcher, 50, in_flight=3)
    assert len({c["fingerprint"] for c in configs}) == len(configs) == 20
    assert searcher.suggest("after") == FINISHED and searcher.duplicates_avoided > 0


# ----- options -----

@pytest.mark.parametrize("options,message", [  # the shared type and range checks, then pnas's own
    ({"k": 0}, "option k: expected a whole number >= 1 or none, got 0"),
    ({"candidates": "many"}, "option candidates: expected a whole number >= 1, got 'many'"),
    ({"candidates": 0}, "option candidates: expected a whole number >= 1, got 0"),
    ({"ensemble": 2.5}, "option ensemble: expected a whole number >= 1"),
    ({"warmup": True}, "option warmup: expected a whole number >= 1 or none"),
    ({"lr": -1}, "option lr: expected a number >= 0"),
    ({"lr": 0}, "'lr' must be a positive number"),
    ({"beam": 3}, "has no option 'beam'"),
])
def test_bad_options_are_reported(toy, options, message):
    with pytest.raises(StrategyError, match=message):
        make_searcher("pnas", toy, seed=0, max_trials=5, options=options)


# ----- end to end -----

def test_tuner_runs_pnas_with_trials_in_flight(toy, ray_session, tmp_path):
    from ray import tune

    from nas.engine.searcher import TuneSearcher

    def trainable(config):
        sample = config["sample"]
        kernel = sample["kernel"] / 5 if sample.get("kind") == "conv" else 0.0
        tune.report({"val_accuracy": (sample["width"] / 32 + sample["depth"] / 4 + kernel) / 3})

    searcher = make_searcher("pnas", toy, seed=0, max_trials=6, options={**FAST, "warmup": 2, "k": 2})
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=TuneSearcher(searcher), num_samples=6, max_concurrent_trials=2,
                                                              metric="val_accuracy", mode="max", reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="toy", verbose=0))
    results = tuner.fit()
    assert len(results) == 6 and not results.errors
    assert len({r.config["fingerprint"] for r in results}) == 6
    restored = make_searcher("pnas", toy, seed=1, max_trials=6, options={**FAST, "warmup": 2, "k": 2})
    restored.restore(str(next((tmp_path / "toy").glob("searcher-state-*.pkl"))))
    assert restored.fits and len(restored.history) >= 4


def test_pnas_searches_grown_cells_from_the_cli(tmp_path, ray_session, capsys):
    path = tmp_path / "tiny_cells.yaml"
    path.write_text(TINY_CELLS)
    out = tmp_path / "run"
    code = main(["search", "--strategy", "pnas", "--space", str(path), "--trials", "4", "--concurrent", "1",
                 "--epochs", "1", "--train-limit", "300", "--option", "k=2", "--option", "warmup=2",
                 "--option", "epochs=20", "--out", str(out)])
    assert code == 0
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert len(trials) == 4 and all(t["status"] == "TERMINATED" for t in trials)
    assert sorted(blocks_of(t["sample"]) for t in trials) == [1, 1, 2, 2]
    assert json.loads((out / "summary.json").read_text())["best"]["test_accuracy"] >= 0.0
