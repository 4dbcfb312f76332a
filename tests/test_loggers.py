"""The ecosystem's tools on a search's run folder: TensorBoard event files and Ray Tune's CSV/JSON
progress in RUN/tune, the optuna study in an Optuna storage named after the run, and a multi-objective
(NSGA-II) run's Pareto set (pareto.csv, pareto.png) with the objective that picks "best" said."""
import contextlib
import csv
import io
import json
import struct

import optuna
import pytest

from nas.cli import main
from tests.test_search_run import TINY_SPACE, check_cli_run, search_argv


@pytest.fixture(scope="module")
def nsga_run(tmp_path_factory, ray_session):
    """One tiny NSGA-II search (2 objectives) whose study lives in a SQLite storage: test_search_run's
    end-to-end run of the optuna strategy from the CLI (STRATEGY_ARGS), with --storage. Returns the run
    folder, the storage's URL and what the command printed."""
    folder = tmp_path_factory.mktemp("nsga")
    (folder / "tiny.yaml").write_text(TINY_SPACE)
    url = f"sqlite:///{folder / 'study.db'}"
    out = folder / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([*search_argv("optuna", folder, out), "--storage", url])
    assert code == 0
    return out, url, printed.getvalue()


def test_the_optuna_strategy_runs_end_to_end_from_the_cli(nsga_run):
    out, _, printed = nsga_run
    check_cli_run("optuna", out, printed)


def test_every_trial_has_tensorboard_events_and_csv_progress(nsga_run):
    out = nsga_run[0]
    trials = sorted(p for p in (out / "tune").iterdir() if p.is_dir() and p.name.startswith("trial_"))
    assert len(trials) == 3
    for trial in trials:
        assert list(trial.glob("events.out.tfevents.*")), f"no TensorBoard events in {trial}"
        rows = list(csv.DictReader((trial / "progress.csv").open()))
        assert rows and "val_accuracy" in rows[0] and (trial / "result.json").is_file()


def scalar_tags(path):
    """The scalar tags of a TensorBoard event file (TFRecord framing: length, its CRC, the Event, its CRC)."""
    from tensorboardX.proto import event_pb2

    tags, data = set(), path.read_bytes()
    position = 0
    while position < len(data):
        length = struct.unpack("<Q", data[position:position + 8])[0]
        event = event_pb2.Event.FromString(data[position + 12:position + 12 + length])
        tags |= {value.tag for value in event.summary.value if value.HasField("simple_value")}
        position += 12 + length + 4
    return tags


def test_tensorboard_events_hold_the_accuracy_curve(nsga_run):
    out = nsga_run[0]
    trial = next(p for p in (out / "tune").iterdir() if p.name.startswith("trial_"))
    tags = set().union(*(scalar_tags(path) for path in trial.glob("events.out.tfevents.*")))
    assert any(tag.endswith("val_accuracy") for tag in tags), tags


def test_the_study_is_in_the_storage_named_after_the_run(nsga_run):
    out, url = nsga_run[:2]
    study = optuna.load_study(study_name=out.name, storage=url)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(completed) >= 3  # one per trial (more if a proposal repeated a genome)


def test_a_new_run_refuses_an_existing_study_of_its_name(nsga_run, tmp_path, capsys):
    out, url = nsga_run[:2]
    again = tmp_path / out.name
    assert main(["search", "--strategy", "optuna", "--storage", url, "--out", str(again)]) == 2
    assert "already holds a study" in capsys.readouterr().err and not again.exists()


def test_nsga2_writes_its_pareto_set_and_says_what_picks_best(nsga_run):
    out = nsga_run[0]
    summary = json.loads((out / "summary.json").read_text())
    records = json.loads((out / "trials.json").read_text())["trials"]
    assert summary["best_by"] == "val_accuracy"
    pareto = summary["pareto"]
    assert pareto["objectives"] == ["val_accuracy", "params"] and pareto["directions"] == ["max", "min"]
    rows = list(csv.DictReader((out / "pareto.csv").open()))
    assert [int(r["trial"]) for r in rows] == pareto["trials"] and rows
    done = [r for r in records if r["status"] == "TERMINATED" and r.get("duplicate_of") is None]
    on_front = {r["index"] + 1 for r in done if not any(
        o["val_accuracy"] >= r["val_accuracy"] and o["params"] <= r["params"]
        and (o["val_accuracy"] > r["val_accuracy"] or o["params"] < r["params"]) for o in done)}
    assert set(pareto["trials"]) == on_front
    assert (out / "pareto.png").stat().st_size > 1000


def test_tensorboard_has_the_trials_figures_and_hyperparameters_not_tunes_bookkeeping(tmp_path):
    import pickle

    from nas.engine.loggers import TrialBoard

    class Trial:  # what the logger reads of a Ray Tune trial
        local_path = str(tmp_path / "trial_2_abc")
        config = {"sample": {"stage1.family": "mbconv", "stage1.width": 32, "widths": [1, 2]}, "genome": {}}

        def init_local_path(self):
            (tmp_path / "trial_2_abc").mkdir(exist_ok=True)

    board, trial = TrialBoard("evolution"), Trial()
    for epoch in (1, 2):
        board.log_trial_result(epoch, trial, {"val_accuracy": 0.5 + epoch / 10, "epoch": epoch, "done": False,
                                              "training_iteration": epoch, "time_total_s": 3.0, "reported_at": 1e9,
                                              "should_checkpoint": True, "device": "cpu"})
    assert pickle.loads(pickle.dumps(board))._writers == {}  # saved with the experiment: no open files
    board.log_trial_end(trial)
    events = list((tmp_path / "trial_2_abc").glob("events.out.tfevents.*"))
    tags = set().union(*(scalar_tags(path) for path in events))
    assert "nas/val_accuracy" in tags and "nas/epoch" in tags and "hparams/val_accuracy" in tags
    assert not [tag for tag in tags if any(word in tag for word in ("done", "training_iteration", "time_",
                                                                    "reported_at", "checkpoint"))], tags
    text = b"".join(path.read_bytes() for path in events)
    assert b"stage1.family" in text and b"mbconv" in text and b"evolution" in text  # the HPARAMS tab's columns
