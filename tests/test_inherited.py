"""A trained supernet as an evaluator: `--evaluate supernet:RUN` in a search, `nas bench rank --supernet RUN`,
and PNAS's predictor fitted on part of a table (`--predictor N`), on digits with a tiny cells space. The
supernet's run is the spos strategy's run from the command line, checked end to end here."""
import contextlib
import io
import json
import random

import pytest

from nas.cli import main
from nas.evaluate.inherited import InheritedScorer, load_run_data
from nas.evaluate.spec import EvaluatorError
from nas.evaluate.table import Entry, Table
from nas.evaluate.table_scores import predictor_scores
from nas.spaces import load_space
from tests.test_oneshot import check_one_shot_run

# widths 4 or 6: a network-level choice the supernet fixes (at 4, its first option)
SPACE = """\
kind: cells
name: tiny_cells
blocks: 2
concat: unread
network: {channels: [4, 6], normal_cells: 1, stages: 2}
ops:
  sep_conv_3x3: {op: sepconv, out: "@out", kernel: 3, stride: "@stride", preact: true}
  max_pool_3x3: {op: maxpool, kernel: 3, stride: "@stride", padding: 1}
  skip_connect: {op: skip_connect, out: "@out", stride: "@stride"}
"""
DATA = ["--dataset", "digits", "--train-limit", "300"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inherited") / "tiny_cells.yaml"
    path.write_text(SPACE)
    return path


@pytest.fixture(scope="module")
def spos_search(space_file, ray_session):
    """SPOS over the space from the command line: its run folder and what it printed. The supernet that the
    tests below score with, and the spos strategy's end-to-end run (test_spos_runs_as_one_trial_...)."""
    out, printed = space_file.parent / "spos", io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["search", "--strategy", "spos", "--space", str(space_file), "--trials", "3", "--epochs", "1",
                     "--option", "population=2", "--option", "sample_size=2", "--out", str(out), *DATA])
    assert code == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def spos_run(spos_search):
    return spos_search[0]


def test_spos_runs_as_one_trial_and_ends_with_a_genome(spos_search):
    check_one_shot_run(*spos_search, "spos")  # as darts and rsws in test_oneshot.py


def synthetic_table(space, space_path: str, count: int, seed: int, truth) -> Table:
    """`count` distinct samples of `space` as a table whose accuracy is `truth(sample)` (no training)."""
    rng, entries, seen = random.Random(seed), [], set()
    while len(entries) < count:
        sample = space.sample(rng)
        genome = space.realize(sample)
        if genome.fingerprint() in seen:
            continue
        seen.add(genome.fingerprint())
        entries.append(Entry(fingerprint=genome.fingerprint(), genome=genome.to_dict(), sample=sample,
                             val_accuracy=[truth(sample)], test_accuracy=truth(sample), params=1, flops=1,
                             cpu_s=0.0, gpu_s=0.0, train_time=0.0, seed=0))
    return Table({"space": space_path, "dataset": "digits", "epochs": 1, "seed": seed,
                  "data": {"val_fraction": 0.1, "train_limit": 300, "seed": 0}, "complete": True}, entries)


def test_a_candidate_s_score_is_its_path_s_and_does_not_depend_on_what_was_scored_before(spos_run):
    scorer = InheritedScorer.load(spos_run)
    space = load_space(scorer.config.space, input_channels=1, input_size=8, num_classes=10)
    rng = random.Random(3)
    a, b = space.sample(rng), space.sample(rng)
    first = scorer.score(a)
    scorer.score(b)
    assert scorer.score(a) == first and 0.0 <= first <= 1.0
    # the supernet fixes the width (4): a sample differing only there is the same path, the same score
    assert scorer.score({**a, "channels": 6 if a["channels"] == 4 else 4}) == first
    assert scorer.name == "supernet:spos" and scorer.search.epoch == 1
    with pytest.raises(EvaluatorError, match="has no 'normal.b0.op_a'"):
        scorer.score({k: v for k, v in a.items() if k != "normal.b0.op_a"})
    # loaded again: the same weights, the same score
    assert InheritedScorer.load(spos_run, load_run_data(scorer.config)).score(a) == first


def test_a_search_scored_by_a_supernet_trains_its_best_from_scratch(space_file, spos_run, tmp_path, capsys):
    out = tmp_path / "evolution"
    code = main(["search", "--strategy", "random", "--space", str(space_file), "--trials", "3", "--epochs", "1",
                 "--concurrent", "1", "--evaluate", f"supernet:{spos_run}", "--out", str(out), *DATA])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"best by supernet:{spos_run}" in printed and "trained from scratch (1 epoch)" in printed
    trials = json.loads((out / "trials.json").read_text())["trials"]
    scorer = InheritedScorer.load(spos_run)
    for trial in trials:  # each one's score is its path's accuracy with the supernet's weights, not trained
        assert trial["evaluator"] == f"supernet:{spos_run}" and trial["val_accuracy"] is None
        assert trial["score"] == scorer.score(trial["sample"])
    best = json.loads((out / "summary.json").read_text())["best"]
    assert best["score"] == max(t["score"] for t in trials) and best["trained_from_scratch"]["epochs"] == 1


def test_a_supernet_evaluator_must_be_a_one_shot_run_over_the_same_space(space_file, spos_run, tmp_path, capsys):
    cases = [(f"supernet:{tmp_path / 'nowhere'}", "no run folder at"),
             (f"supernet:{space_file.parent}", "is not a run folder of nas search (no search.json)"),
             ("supernet:", "supernet needs a one-shot run folder")]
    for evaluate, expected in cases:
        assert main(["search", "--strategy", "random", "--space", str(space_file), "--evaluate", evaluate,
                     "--out", str(tmp_path / "x"), *DATA]) != 0
        assert expected in capsys.readouterr().err
    assert main(["search", "--strategy", "random", "--space", "cells", "--evaluate", f"supernet:{spos_run}",
                 "--out", str(tmp_path / "y"), *DATA]) != 0
    assert "the supernet was trained over the space" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_rank_judges_a_supernet_and_the_predictor_against_a_table(space_file, spos_run, tmp_path, capsys):
    space = load_space(str(space_file), input_channels=1, input_size=8, num_classes=10)
    # a table whose accuracy is set by one choice (and a little by another): the predictor learns it from 28 of 40
    table = synthetic_table(space, str(space_file), 40, 0,
                            lambda s: 0.5 + 0.1 * (s["normal.b0.op_a"] == "sep_conv_3x3")
                            + 0.01 * (s["reduce.b1.op_b"] == "skip_connect"))
    folder = tmp_path / "table"
    folder.mkdir()
    table.save(folder / "table.json")
    code = main(["bench", "rank", str(folder), "--proxies", "--supernet", str(spos_run), "--predictor", "28",
                 "--bootstrap", "50", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["proxy"]: r for r in result["rankings"]}
    assert set(rows) == {"supernet:spos", "predictor@28"}
    assert rows["supernet:spos"]["scored"] == 40 and rows["predictor@28"]["scored"] == 12
    assert rows["predictor@28"]["spearman_rho"] > 0
    truth = [e.final_val_accuracy for e in table.entries]
    scores, _ = predictor_scores(Table.load(folder), space, 28, truth, seed=0)
    held_out = [(p, t) for p, t in zip(scores, truth) if p == p]
    assert len(held_out) == 12  # NaN for the 28 it learned from
    # it learned the choice that sets the accuracy: held-out sep_conv cells are predicted well above the rest
    better = [p for p, t in held_out if t >= 0.6]
    worse = [p for p, t in held_out if t < 0.6]
    assert better and worse and sum(better) / len(better) > sum(worse) / len(worse) + 0.02
    with pytest.raises(EvaluatorError, match="between 2 and 37"):
        predictor_scores(table, space, 38, truth)
    assert main(["bench", "rank", str(folder), "--proxies"]) != 0
    assert "nothing to rank" in capsys.readouterr().err
    assert main(["bench", "rank", str(folder), "--proxies", "--supernet", str(tmp_path)]) != 0
    assert f"--supernet: {tmp_path} is not a run folder of nas search (no search.json)" in capsys.readouterr().err
    assert main(["bench", "rank", str(folder), "--proxies", "--predictor", "38"]) != 0  # before any scoring
    assert "--predictor 38: between 2 and 37" in capsys.readouterr().err


def test_evaluator_names_parse_and_say_what_is_wrong():
    from nas.evaluate.spec import parse_evaluator

    assert parse_evaluator("supernet:somewhere", check=False).metric == "score"
    with pytest.raises(EvaluatorError, match="known: train, proxy:NAME, table:PATH, supernet:RUN"):
        parse_evaluator("supernett:x")
