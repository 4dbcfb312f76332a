"""The optuna strategy's study in an Optuna storage (`--storage sqlite:///study.db`): a named study
that optuna.load_study (and so optuna-dashboard) opens, that a restored searcher loads from the
storage without counting a trial twice, and that `nas search --storage` names after the run folder."""

import re

import optuna
import pytest

from nas.cli import main
from nas.search.strategies import StrategyError, make_searcher
from tests.test_strategies import ToySpace, cost, score

FINISHED = optuna.trial.TrialState


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


def searcher(url, seed=0, name="run-a"):
    return make_searcher("optuna", ToySpace(), seed=seed, max_trials=6,
                         options={"storage": url, "study_name": name, "startup_trials": 2})


def complete(searcher, trial_id, config):
    searcher.on_trial_complete(trial_id, {"val_accuracy": score(config["sample"]), "params": cost(config["sample"])})


def states(url, name="run-a"):
    study = optuna.load_study(study_name=name, storage=url)
    return [t.state for t in study.get_trials(deepcopy=False)]


def counts(url, name="run-a"):
    found = states(url, name)
    return {state.name: found.count(state) for state in set(found)}


def test_the_study_is_named_and_kept_in_the_storage(url):
    first = searcher(url)
    for i in range(3):
        complete(first, f"t{i}", first.suggest(f"t{i}"))
    # every proposal is an Optuna trial (one that repeats a genome is told its recorded result)
    asked = len(first.study.trials)
    assert counts(url) == {"COMPLETE": asked} and asked >= 3
    assert optuna.study.get_all_study_names(url) == ["run-a"]


def test_a_restored_searcher_loads_the_study_and_counts_no_trial_twice(url, tmp_path, caplog):
    first = searcher(url)
    configs = {f"t{i}": first.suggest(f"t{i}") for i in range(3)}
    complete(first, "t0", configs["t0"])
    first.save(str(tmp_path / "state.pkl"))  # Tune's snapshot: t1 and t2 still running
    complete(first, "t1", configs["t1"])  # t1 ends after the snapshot, then the driver is killed
    first.suggest("t3")  # asked after the snapshot: no restored trial will finish it
    total = len(first.study.trials)
    assert counts(url) == {"COMPLETE": total - 2, "RUNNING": 2}

    resumed = searcher(url, seed=99)
    resumed.restore(str(tmp_path / "state.pkl"))
    assert resumed.study.study_name == "run-a" and len(resumed.study.trials) == total  # loaded from the storage
    assert counts(url) == {"COMPLETE": total - 2, "RUNNING": 1, "FAIL": 1}  # t3, the orphan, failed
    caplog.clear()
    with caplog.at_level("WARNING"):
        complete(resumed, "t1", configs["t1"])  # Tune runs t1 again: the storage has it already
        complete(resumed, "t2", configs["t2"])
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # nothing told twice (Optuna would refuse it with a warning)
    assert counts(url) == {"COMPLETE": total - 1, "FAIL": 1}
    assert len(optuna.load_study(study_name="run-a", storage=url).trials) == total


def test_a_bad_storage_url_is_one_clear_error():
    with pytest.raises(StrategyError, match="optuna storage"):
        searcher("notadb://nowhere")


def test_storage_is_only_for_the_optuna_strategy(tmp_path, url, capsys):
    code = main(["search", "--strategy", "random", "--storage", url, "--out", str(tmp_path / "run")])
    assert code == 2 and "--storage" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_told_trials_carry_the_fingerprint_and_cost_as_user_attributes(url):
    first = searcher(url)
    config = first.suggest("t0")
    complete(first, "t0", config)
    trial = optuna.load_study(study_name="run-a", storage=url).trials[0]
    assert trial.user_attrs["fingerprint"] == config["fingerprint"]
    assert trial.user_attrs["params"] == cost(config["sample"])
    complete(first, "t1", first.suggest("t1"))
    numbered = [t.user_attrs["trial"] for t in optuna.load_study(study_name="run-a", storage=url).trials
                if "trial" in t.user_attrs]  # (a proposal answered from an earlier trial has no number of its own)
    assert trial.user_attrs["trial"] == 1 and numbered == [1, 2]  # the search's numbers: the screen's, trials.csv's


def test_the_strategy_imports_no_private_optuna_or_ray_names():
    """Saved and restored through Optuna's public API only (a private attribute broke on a minor release)."""
    from pathlib import Path

    import nas.search.strategies.optuna_search as module

    source = Path(module.__file__).read_text()
    assert "ray" not in {line.split()[1].split(".")[0] for line in source.splitlines()
                         if line.startswith(("import ", "from "))}
    assert not re.findall(r"(?<!self)\._[a-z]", source)  # no private attribute but the strategy's own
