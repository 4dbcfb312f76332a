"""Evaluators in a search, end to end on digits: `--evaluate proxy:synflow`, a tiny ground-truth table built
with `nas bench build`, looked up with `--evaluate table:PATH` (a missing genome: one line) and ranked with
`nas bench rank`."""
import json
from pathlib import Path

import pytest
import torch

from nas.cli import main
from nas.compiler import build
from nas.evaluate.table import Table
from nas.genome import Genome
from tests.tiny_spaces import PAIR_SPACE, TINY_STAGES as TINY_SPACE

# two architectures only (stage width 8 or 12)


# one trial at a time: the trials take one Ray worker process (reused), not one each (their start is the cost here)
FAST = ["--dataset", "digits", "--train-limit", "200", "--concurrent", "1"]


def trials_of(folder):
    return json.loads((Path(folder) / "trials.json").read_text())["trials"]


@pytest.fixture(scope="module")
def spaces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spaces")
    (folder / "pair.yaml").write_text(PAIR_SPACE)
    (folder / "tiny.yaml").write_text(TINY_SPACE)
    return folder


def test_a_proxy_search_scores_without_training_and_trains_the_best_from_scratch(spaces, tmp_path, ray_session,
                                                                                     capsys):
    out = tmp_path / "run"
    code = main(["search", "--strategy", "evolution", "--space", str(spaces / "tiny.yaml"), "--trials", "4",
                 "--warmup-proxy", "params", "--warmup", "3",
                 "--option", "population=2", "--option", "sample_size=2", "--epochs", "1", "--evaluate",
                 "proxy:synflow", "--out", str(out), *FAST])
    assert code == 0
    printed = capsys.readouterr().out
    assert "leaderboard (proxy score: synflow)" in printed and "trained from scratch (1 epoch)" in printed
    trials = trials_of(out)
    assert len(trials) == 4
    for trial in trials:  # scored, not trained: a score and no accuracy, the evaluator recorded per trial
        assert trial["status"] == "TERMINATED" and trial["evaluator"] == "proxy:synflow"
        assert trial["score"] > 0 and trial["val_accuracy"] is None and trial["epoch"] == 0
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"]
    assert summary["evaluator"] == "proxy:synflow" and summary["best_by"] == "score (proxy:synflow)"
    assert best["score"] == max(t["score"] for t in trials)
    assert 0.0 <= best["val_accuracy"] <= 1.0 and 0.0 <= best["test_accuracy"] <= 1.0  # from the training
    assert best["trained_from_scratch"]["epochs"] == 1 and "nas train" in best["train_command"]
    genome = Genome.load(out / "best_genome.yaml")
    assert genome.fingerprint() == best["fingerprint"]
    build(genome).load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    saved = json.loads((out / "search.json").read_text())
    assert saved["evaluate"] == "proxy:synflow" and (saved["warmup_proxy"], saved["warmup"]) == ("params", 3)
    # the initial population (2) is the 2 largest of 3 random candidates by params
    first = sorted(trials, key=lambda t: t["index"])[:2]
    assert first[0]["params"] >= first[1]["params"]


def test_a_table_is_built_looked_up_and_ranked(spaces, tmp_path, ray_session, capsys):
    bench = tmp_path / "bench"
    args = ["bench", "build", str(spaces / "pair.yaml"), "--archs", "1", "--epochs", "2", "--seed", "0",
            "--out", str(bench), *FAST]
    assert main(args) == 0
    assert "1 architecture of space" in capsys.readouterr().out
    table = Table.load(bench)
    (stored,) = table.entries
    assert len(stored.val_accuracy) == 2 and all(0.0 <= v <= 1.0 for v in stored.val_accuracy)
    assert 0.0 <= stored.test_accuracy <= 1.0 and stored.params > 0 and stored.flops > 0 and stored.cpu_s > 0
    assert table.meta["dataset"] == "digits" and table.meta["epochs"] == 2 and table.meta["seed"] == 0
    # the same command again: the build has finished, the table is written again from its run, nothing trains
    assert main(args) == 0
    assert Table.load(bench).entries == table.entries

    # a search over the two architectures: the one in the table is answered from it, the other fails in one line
    out = tmp_path / "search"
    assert main(["search", "--strategy", "random", "--space", str(spaces / "pair.yaml"), "--trials", "2",
                 "--evaluate", f"table:{bench}", "--out", str(out), *FAST]) == 0
    trials = {t["fingerprint"]: t for t in trials_of(out)}
    found = trials.pop(stored.fingerprint)
    assert found["status"] == "TERMINATED" and found["val_accuracy"] == stored.final_val_accuracy
    assert found["evaluator"] == f"table:{bench}" and found["epoch"] == 2
    (missing,) = trials.values()
    assert missing["status"] == "ERROR" and "is not in the table" in missing["error"]
    assert "\n" not in missing["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["test_accuracy"] == stored.test_accuracy

    capsys.readouterr()
    assert main(["bench", "rank", str(bench), "--proxies", "synflow", "params", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert [r["proxy"] for r in ranked["rankings"]] == ["synflow", "params"]
    assert ranked["rankings"][0]["nb201_cifar10_spearman"] == 0.74
    assert ranked["rankings"][1]["spearman_rho"] is None  # one architecture: no rank correlation


def test_a_table_of_another_data_set_is_refused_before_anything_runs(tmp_path, capsys):
    Table({"dataset": "mnist", "epochs": 1, "seed": 0}, []).save(tmp_path / "table.json")
    code = main(["search", "--strategy", "random", "--evaluate", f"table:{tmp_path}", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "the table was trained on mnist, the search is on digits" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
