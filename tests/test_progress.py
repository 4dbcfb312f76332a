"""Live progress (nas.engine.progress) and the libraries' chatter (nas.engine.verbosity): the view's
lines and live table from stand-in trials, and the Tune callback's forwarding. (A tiny `nas search` whose
piped output has one line per finished trial and nothing from Ray: test_search_run.py, which runs it.)"""
import io
import logging
from types import SimpleNamespace

import optuna
from rich.console import Console

from nas.engine import verbosity
from nas.engine.progress import ProgressCallback, TrialsView, active_view, duration


class Trial:
    """What the view reads of a Ray Tune trial."""

    def __init__(self, number, status="RUNNING", result=None, epochs=3):
        self.trial_id = f"id{number}"
        self.experiment_tag = f"{number}_x"
        self.status = status
        self.last_result = result or {}
        self.config = {"train": {"epochs": epochs}}


def label(trial):
    return f"trial {trial.experiment_tag.split('_')[0]}"


def lines_of(view_file):
    return [line for line in view_file.getvalue().splitlines() if line.strip()]


def test_one_line_per_finished_trial_with_best_so_far_and_no_line_twice():
    out = io.StringIO()
    trials = [Trial(1), Trial(2), Trial(3)]
    with TrialsView(3, label=label, live=False, file=out) as view:
        view.announce("starting Ray (local)")
        trials[0].last_result = {"val_accuracy": 0.5, "epoch": 3, "train_time": 2.0}
        view.finished(trials, trials[0], "TERMINATED")
        trials[0].status = "TERMINATED"
        view.finished(trials, trials[0], "TERMINATED")  # Tune may call twice: one line
        trials[1].last_result = {"val_accuracy": 0.25, "epoch": 3, "train_time": 1.0}
        view.finished(trials, trials[1], "TERMINATED")
        trials[1].status = "TERMINATED"
        view.finished(trials, trials[2], "ERROR")
    lines = lines_of(out)
    assert lines[0] == "starting Ray (local)"
    assert lines[1].startswith("[1/3] trial 1  val 0.5000  3 ep  2.0s  best 0.5000  ETA ")
    assert lines[2].startswith("[2/3] trial 2  val 0.2500  3 ep  1.0s  best 0.5000  ETA ")
    assert lines[3].startswith("[3/3] trial 3  FAILED: ") and "ETA" not in lines[3]
    assert len(lines) == 4 and all(len(line) <= 80 for line in lines)
    assert active_view() is None


def test_a_long_label_gives_way_so_that_the_line_fits_80_columns():
    out = io.StringIO()
    trials = [Trial(1), Trial(2)]
    metrics = (("test_accuracy", "test"), ("val_accuracy", "val"))
    with TrialsView(30, label=lambda t: "optuna-seed3@resnet20-seed0-with-a-much-longer-name", live=False, file=out,
                    metrics=metrics, best=None) as view:
        trials[0].last_result = {"test_accuracy": 0.85, "val_accuracy": 0.86, "epoch": 6, "train_time": 836.3}
        view.finished(trials, trials[0], "TERMINATED")
    (line,) = lines_of(out)
    assert len(line) == 80 and line.startswith("[ 1/30] ...") and "...with-a-much-longer-name  test 0.8500" in line
    assert "val 0.8600  6 ep  836.3s  ETA " in line


def test_a_resumed_run_counts_trials_finished_before_without_a_line():
    out = io.StringIO()
    trials = [Trial(1, "TERMINATED", {"val_accuracy": 0.9}), Trial(2)]
    with TrialsView(2, label=label, live=False, file=out) as view:
        view.update(trials)
        trials[1].last_result = {"val_accuracy": 0.4, "epoch": 1}
        view.finished(trials, trials[1], "TERMINATED")
    assert lines_of(out) == ["[2/2] trial 2  val 0.4000  1 ep  best 0.9000"]


def test_the_live_view_shows_running_trials_done_total_best_and_fits_80_columns():
    trials = [Trial(1, "TERMINATED", {"val_accuracy": 0.75}), Trial(2, result={"epoch": 1, "val_accuracy": 0.3}),
              Trial(3, result={"epoch": 2, "val_accuracy": 0.6}), Trial(4, "PENDING")]
    view = TrialsView(10, label=label, live=False, file=io.StringIO())
    view.update(trials)
    screen = Console(file=io.StringIO(), width=80, force_terminal=False)
    screen.print(view._render(trials))
    text = screen.file.getvalue()
    assert text.splitlines()[0].startswith("1/10 done  best 0.7500 (trial 1)  elapsed ")
    assert "trial 2" in text and "1/3" in text and "0.3000" in text and "2/3" in text and "0.6000" in text
    assert "1 pending" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_live_view_headline_takes_a_long_best_label():
    trials = [Trial(1, "TERMINATED", {"val_accuracy": 0.75}), Trial(2, result={"epoch": 1, "val_accuracy": 0.3})]
    long = "optuna-seed3@resnet20-seed0-with-a-much-longer-name-than-most"
    view = TrialsView(30, label=lambda t: long, live=False, file=io.StringIO())
    view.update(trials)
    assert view.headline(trials).startswith(f"1/30 done  best 0.7500 ({long})  elapsed ")


def test_the_callback_forwards_to_the_active_view_only():
    out = io.StringIO()
    callback, trial = ProgressCallback(), Trial(1, result={"val_accuracy": 0.5})
    callback.on_trial_complete(0, [trial], trial)  # no view: nothing, no error
    with TrialsView(1, label=label, live=False, file=out):
        callback.on_trial_result(0, [trial], trial, trial.last_result)
        callback.on_trial_complete(0, [trial], trial)
    assert lines_of(out) == ["[1/1] trial 1  val 0.5000  best 0.5000"]


def test_a_disabled_view_prints_nothing():
    out = io.StringIO()
    trial = Trial(1, result={"val_accuracy": 0.5})
    with TrialsView(1, label=label, enabled=False, file=out) as view:
        view.announce("starting Ray")
        view.finished([trial], trial, "TERMINATED")
    assert out.getvalue() == ""


def test_durations():
    assert [duration(s) for s in (None, 5, 75, 3725)] == ["-", "0:05", "1:15", "1:02:05"]


def test_quiet_libraries_silence_ray_and_optuna_and_put_them_back():
    ray_level = logging.getLogger("ray").level
    optuna_level = optuna.logging.get_verbosity()
    with verbosity.libraries_quiet(True):
        assert logging.getLogger("ray.tune").level == logging.ERROR
        assert optuna.logging.get_verbosity() == optuna.logging.ERROR
        assert verbosity.ray_init_options() == {"logging_level": logging.ERROR}
    assert logging.getLogger("ray").level == ray_level and optuna.logging.get_verbosity() == optuna_level
    assert verbosity.ray_init_options() == {}
    with verbosity.libraries_quiet(False):  # --verbose: left as they are
        assert verbosity.ray_init_options() == {}


def test_the_live_mode_starts_stops_and_keeps_the_finished_lines():
    out = io.StringIO()
    trials = [Trial(1)]
    with TrialsView(1, label=label, live=True, file=out) as view:
        assert view.live_mode and view._live is not None
        view.update(trials, force=True)
        trials[0].last_result = {"val_accuracy": 0.5, "epoch": 3}
        view.finished(trials, trials[0], "TERMINATED")
    assert view._live is None and active_view() is None
    assert "[1/1] trial 1  val 0.5000  3 ep  best 0.5000" in out.getvalue()


def test_a_status_says_what_is_slow_once_on_a_pipe_and_with_its_seconds_in_the_live_view(monkeypatch):
    out = io.StringIO()
    with TrialsView(2, label=label, live=False, file=out) as view:
        view.status("starting Ray (local)")
        view.status("waiting for the first trial to start", until_running=True)
        view.update([Trial(1)])  # a trial runs: the wait is over
        assert view.status_line() is None
        view.status("testing the best network (trial 1) on 10,000 test images")
        view.status(None)
    assert lines_of(out) == ["starting Ray (local)", "waiting for the first trial to start",
                             "testing the best network (trial 1) on 10,000 test images"]
    live = io.StringIO()
    clock = [100.0]
    # the view's module gets a clock of its own (patching time.monotonic itself would stop it for every thread)
    monkeypatch.setattr("nas.engine.progress.time", SimpleNamespace(monotonic=lambda: clock[0]))
    with TrialsView(2, label=label, live=True, file=live) as view:
        view.status("starting Ray (local)")
        clock[0] += 12
        text = io.StringIO()
        Console(file=text, width=80).print(view._render([]))
        assert "starting Ray (local)... 12 s" in text.getvalue()


def test_the_leaderboard_leaves_out_whole_columns_that_cannot_fit_80_columns(capsys, monkeypatch):
    from nas.cli.search import print_leaderboard

    monkeypatch.setenv("COLUMNS", "80")
    records = [{"index": i, "status": "TERMINATED", "val_accuracy": 0.9 + i / 100, "params": 30_600 + i,
                "flops": 1_510_000, "epoch": 3, "train_time": 1.9, "fingerprint": f"{i}abb64a14f369ffff",
                "node_ip": "192.0.2.2"} for i in range(3)]
    summary = {"counts": {"completed": 3, "failed": 0}, "best": None}
    print_leaderboard(records, summary)
    out = capsys.readouterr().out
    assert "fingerprint" in out and "2abb64a14f36" in out and "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines())
