"""Ground-truth tables: an interrupted `nas bench build` keeps and writes what it trained and resumes to the
rest; the rank report's statistics (bootstrap intervals, top-10% hit rate, report files); strategies run on
a table answer every query exactly from it. (Timings of lookups: benchmarks/proxy_speed.py, not here.)"""
import json
import math
import random
import signal

import held_trials
import pytest

from nas.cli import main
from nas.evaluate.correlate import judge, top_hit_rate, write_report
from nas.evaluate.on_table import Answerer, mean_curve, search_on_table
from nas.evaluate.table import Entry, Table
from nas.spaces import load_space
from tests.tiny_spaces import TINY_STAGES as TINY_SPACE



@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


def test_top_hit_rate_and_bootstrap_intervals_on_hand_checked_rankings(tmp_path):
    truth = [0.1 * i for i in range(20)]  # the top 10% are the last two
    assert top_hit_rate(list(range(20)), truth) == 1.0
    assert top_hit_rate(list(range(20, 0, -1)), truth) == 0.0
    assert top_hit_rate([0] * 18 + [5, -math.inf], truth) == 0.5  # -inf ranks last; ties by order
    rows = {r.evaluator: r for r in judge({"perfect": list(range(20)), "reverse": list(range(20, 0, -1)),
                                           "broken": [math.nan] * 20}, truth, boots=200, seed=0)}
    assert rows["perfect"].spearman_rho == 1.0 and rows["perfect"].spearman_ci == pytest.approx((1.0, 1.0))
    assert rows["reverse"].kendall_tau == -1.0 and rows["reverse"].kendall_ci == pytest.approx((-1.0, -1.0))
    assert rows["broken"].scored == 0 and math.isnan(rows["broken"].spearman_rho)
    noisy = judge({"noisy": [t + random.Random(i).gauss(0, 0.5) for i, t in enumerate(truth)]}, truth, boots=200)[0]
    assert noisy.spearman_ci[0] < noisy.spearman_rho < noisy.spearman_ci[1]
    written = write_report(list(rows.values()), tmp_path, title="t", command="nas bench rank x", truth_line="x",
                           boots=200)
    assert [p.name for p in written] == ["rank.md", "rank.csv", "rank.png"] and all(p.stat().st_size for p in written)
    text = written[0].read_text()
    assert "| perfect | 20 | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 1.000 |" in text
    assert written[1].read_text().splitlines()[0].startswith("evaluator,archs,spearman_rho,spearman_lo")


def whole_space_table(space, accuracy):
    """A table holding every architecture of a small space, with made-up accuracies (no training)."""
    entries, seen, rng = [], set(), random.Random(0)
    for _ in range(200):
        sample = space.sample(rng)
        genome = space.realize(sample)
        if genome.fingerprint() in seen:
            continue
        seen.add(genome.fingerprint())
        entries.append(Entry(genome.fingerprint(), genome.to_dict(), sample, [0.1, accuracy(sample)], 0.5,
                             100, 1000, 1.0, 0.0, 1.0, 0))
    return Table({"space": "tiny", "dataset": "digits", "epochs": 2, "seed": 0}, entries)


def test_strategies_on_a_table_of_the_whole_space_are_answered_exactly(tiny):
    space = load_space(str(tiny), input_channels=1, input_size=8, num_classes=10)
    table = whole_space_table(space, lambda s: 0.5 + 0.001 * len(str(s)) + 0.0001 * sum(map(ord, str(s))) % 97)
    assert len(table) == 16
    answers = Answerer(table)
    for strategy in ("random", "evolution", "rl", "optuna", "pnas"):
        run = search_on_table(table, space, strategy, seed=1, queries=6, answerer=answers,
                              options={"population": 2, "sample_size": 2} if strategy == "evolution" else None)
        assert run.exact == len(run.entries) == len(run.best_so_far) and run.distinct == len(run.entries)
        assert all(b >= a for a, b in zip(run.best_so_far, run.best_so_far[1:]))  # never drops
        assert run.best_so_far == [max(table.entries[i].final_val_accuracy for i in run.entries[:q + 1])
                                   for q in range(len(run.entries))]
    full = search_on_table(table, space, "random", seed=0, queries=16, answerer=answers)
    assert full.best_so_far[-1] == max(e.final_val_accuracy for e in table.entries)  # the whole space: its best
    short = search_on_table(table, space, "random", seed=0, queries=3, answerer=answers)
    assert mean_curve([full, short], 5)[3:] == [(full.best_so_far[i] + short.best_so_far[-1]) / 2 for i in (3, 4)]


def test_a_proposal_missing_from_a_table_is_answered_by_its_nearest_stored_architecture(tiny):
    space = load_space(str(tiny), input_channels=1, input_size=8, num_classes=10)
    table = whole_space_table(space, lambda s: 0.5)
    stored, kept = table.entries[0], Table(table.meta, table.entries[1:])
    nearest = min(range(len(kept)), key=lambda i: (Answerer(kept).distance(stored.sample, kept.entries[i].sample), i))
    index, exact = Answerer(kept).answer({"genome": stored.genome, "sample": stored.sample,
                                          "fingerprint": stored.fingerprint})
    assert (index, exact) == (nearest, False)
    assert Answerer(table).answer({"genome": stored.genome, "sample": stored.sample,
                                   "fingerprint": stored.fingerprint}) == (0, True)


def test_an_interrupted_build_writes_what_it_trained_and_the_same_command_trains_only_the_rest(
        tiny, tmp_path, ray_session, capsys, monkeypatch, terminal_sigint):
    """Ctrl-C (SIGINT, in this process on the session's Ray) once trial 1 has trained and trial 2 holds
    after its first epoch: the table keeps what was trained; the same command trains only the rest."""
    import nas.search.run

    out, gate = tmp_path / "bench", tmp_path / "gate"
    args = ["bench", "build", str(tiny), "--dataset", "digits", "--train-limit", "200", "--archs", "3",
            "--epochs", "2", "--seed", "0", "--concurrent", "1", "--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(nas.search.run, "make_trainable", held_trials.holding_trainable(gate))
        patch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")  # the snapshot the watcher reads, every second
        with held_trials.signal_once_held(signal.SIGINT, gate, held_trials.wait_for_held, out / "run") as seen:
            code = main(args)
    stdout, stderr = capsys.readouterr()
    assert seen and code == 128 + signal.SIGINT, stderr[-3000:]
    assert "(complete: false); to continue: nas bench build" in stdout
    partial = Table.load(out)
    assert len(partial) == 1 and partial.meta["complete"] is False and partial.meta["requested"] == 3
    assert "an unfinished build: 1 of 3" in partial.describe()
    assert main([*args, "--so-far"]) == 0  # trains nothing: the same table again
    assert Table.load(out).entries == partial.entries
    assert "to train the rest: nas bench build" in capsys.readouterr().out

    assert main(args) == 0  # the same command: resumes, trains the other two
    whole = Table.load(out)
    assert len(whole) == 3 and whole.meta["complete"] is True
    assert whole.entries[0] == partial.entries[0]  # kept as it was trained (same cost, same curve), not retrained
    assert len({e.fingerprint for e in whole.entries}) == 3
    trials = json.loads((out / "run" / "trials.json").read_text())["trials"]
    assert sorted(t["status"] for t in trials) == ["TERMINATED"] * 3


def test_the_table_strategies_benchmark_writes_its_report(tiny, tmp_path):
    from benchmark_scripts import load

    space = load_space(str(tiny), input_channels=1, input_size=8, num_classes=10)
    table = whole_space_table(space, lambda s: 0.5 + 0.001 * len(str(s)))
    table.meta["space"] = str(tiny)
    table.save(tmp_path / "table.json")
    out = tmp_path / "report"
    assert load("table_strategies").main([str(tmp_path), "--strategies", "random", "rl", "--seeds", "2", "--workers", "2",
                                          "--queries", "4", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"strategies.md", "curves.csv", "regret.png", "regret_cost.png",
                                             "strategies.json"}
    data = json.loads((out / "strategies.json").read_text())
    assert data["table_best"] == max(e.final_val_accuracy for e in table.entries)
    for curves in data["curves"].values():
        assert len(curves) == 2 and all(c == sorted(c) and len(c) == 4 for c in curves)
    assert "rl vs random: regret" in (out / "strategies.md").read_text()
    # one process: the same runs
    assert load("table_strategies").main([str(tmp_path), "--strategies", "random", "rl", "--seeds", "2",
                                          "--queries", "4", "--out", str(tmp_path / "one")]) == 0
    assert json.loads((tmp_path / "one" / "strategies.json").read_text())["curves"] == data["curves"]


def test_a_strategy_guided_by_scores_reports_the_accuracy_of_its_best_scored_entry(tiny):
    space = load_space(str(tiny), input_channels=1, input_size=8, num_classes=10)
    table = whole_space_table(space, lambda s: 0.5 + 0.001 * len(str(s)) + 0.0001 * sum(map(ord, str(s))) % 97)
    truth = [e.final_val_accuracy for e in table.entries]
    plain = search_on_table(table, space, "random", seed=2, queries=8)
    # scores equal to the accuracies: the same run as an unguided one
    assert search_on_table(table, space, "random", seed=2, queries=8, scores=truth).best_so_far == plain.best_so_far
    # reversed scores: what it has found is the accuracy of the lowest-accuracy entry seen so far
    guided = search_on_table(table, space, "random", seed=2, queries=8, scores=[-t for t in truth])
    assert guided.entries == plain.entries  # random search ignores what it is told
    assert guided.best_so_far == [min(truth[i] for i in plain.entries[:q + 1]) for q in range(8)]
    # an unscored entry counts as the worst score
    broken = search_on_table(table, space, "random", seed=2, queries=8, scores=[math.nan] + truth[1:])
    assert broken.best_so_far[-1] == max(truth[i] for i in plain.entries if i != 0)
