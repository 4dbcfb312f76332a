"""Progress within an epoch: the loop's batch hook, the pace (share done, ETA), `nas train`'s display
(lines when piped, a bar on a terminal), a search's board from the trials to the driver's view, and
validation that follows the train limit (--val-limit). Clocks are stand-ins: nothing depends on timing."""
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import ray
import torch

from nas.cli import main
from nas.compiler import build
from nas.genome import Genome
from nas.engine import board as board_module
from nas.engine.board import Board, BoardReader, TrialReporter
from nas.search.config import SearchConfig, SearchError
from nas.engine import progress
from nas.engine.progress import TrialsView
from nas.train import loop
from nas.train.datasets import DatasetError, load_dataset
from nas.train.display import TrainDisplay, data_lines
from nas.train.pace import TrainingPace
from nas.train.settings import TrainSettings
from tests.test_progress import Trial, label
from tests.tiny_spaces import TINY_MIXED as TINY_SPACE
from tests.test_train import TINY

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def few_digits():
    return load_dataset("digits", train_limit=200)


def test_the_batch_hook_counts_up_to_the_total_in_training_and_evaluation(few_digits):
    settings = TrainSettings(epochs=1, batch_size=32)
    torch.manual_seed(0)
    model = build(Genome.from_dict(TINY), num_classes=10, in_channels=1, input_size=8)
    optimizer = loop.make_optimizer(model, settings)
    scheduler = loop.make_scheduler(optimizer, settings, loop.steps_per_epoch(len(few_digits.train), 32))
    precision = loop.Precision.choose("auto", torch.device("cpu"))
    seen = {"train": [], "val": []}
    losses = []

    def hook(phase, done, total, loss):
        seen[phase].append((done, total))
        if loss is not None:
            losses.append(loss())

    mean = loop.train_epoch(model, few_digits, few_digits.train, optimizer, scheduler, precision.scaler(), precision,
                            settings, torch.Generator().manual_seed(0), 1, on_batch=loop.tagged(hook, "train"))
    accuracy = loop.evaluate(model, few_digits, few_digits.val, precision, 64, on_batch=loop.tagged(hook, "val"))
    assert [d for d, _ in seen["train"]] == list(range(1, 7)) and {t for _, t in seen["train"]} == {6}  # 200 // 32
    assert [d for d, _ in seen["val"]] == [1, 2, 3] and {t for _, t in seen["val"]} == {3}  # 180 images / 64
    assert losses[-1] == pytest.approx(mean) and 0.0 <= accuracy <= 1.0
    assert loop.tagged(None, "train") is None


def test_the_pace_measures_batches_and_counts_validation_as_part_of_an_epoch():
    clock = Clock()
    pace = TrainingPace(2, train_batches=10, val_batches=2, val_guess=0.5, clock=clock)
    assert pace.fraction() == 0.0 and pace.eta() is None
    pace.start_epoch(1)
    clock.now += 5.0
    pace.batch("train", 1, 10)  # the run's first batch starts the clock
    assert pace.per_batch("train") is None and pace.eta() is None
    clock.now += 4.0
    pace.batch("train", 5, 10)  # 4 s for the 4 batches since: 1 s per batch
    assert pace.per_batch("train") == pytest.approx(1.0)
    # 5 train + 2 val (each guessed half a training batch) left in epoch 1, then 10 + 2 in epoch 2
    assert pace.eta() == pytest.approx(15 * 1.0 + 4 * 0.5)
    assert pace.fraction() == pytest.approx(5 / 11 / 2)  # an epoch is 10 + 2 x 0.5 batch-equivalents
    pace.batch("val", 1, 2)
    clock.now += 1.6
    pace.batch("val", 2, 2)  # validation timed from the last training batch: 1.6 s for 2 batches
    pace.end_epoch()
    assert pace.completed == 1 and pace.fraction() == pytest.approx(0.5)
    assert pace.eta() == pytest.approx(10 * pace.per_batch("train") + 2 * 0.8)
    snap = pace.snapshot()
    assert snap["epoch"] == 1 and snap["phase"] is None and snap["fraction"] == pytest.approx(0.5)
    resumed = TrainingPace(4, 10, 2, done_epochs=2, clock=clock)
    assert resumed.fraction() == 0.5 and resumed.eta() is None


def test_piped_training_prints_a_line_per_epoch_and_in_epoch_lines_at_the_set_rate():
    clock, out = Clock(), io.StringIO()
    pace = TrainingPace(2, 4, 1, clock=clock)
    with TrainDisplay(pace, live=False, file=out, every_s=30.0, clock=clock) as display:
        display.print("digits: 1x8x8, 10 classes, train 200 / val 180 / test 360")
        for done in range(1, 5):
            clock.now += 20.0  # a line at 40 s and 80 s since the last one, not at every batch
            display.batch("train", 1, done, 4, lambda: 1.25)
        display.batch("val", 1, 1, 1, None)
        display.epoch_done({"epoch": 1, "train_loss": 1.25, "val_accuracy": 0.5, "epoch_time": 81.0})
        display.batch("train", 2, 1, 4, lambda: 1.0)  # within 30 s of the epoch's line: nothing
        display.epoch_done({"epoch": 2, "train_loss": 1.0, "val_accuracy": 0.75, "epoch_time": 1.0})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("digits:")
    assert lines[1].startswith("epoch 1/2 training: 2/4 batches, loss 1.2500, elapsed ") and "ETA " in lines[1]
    assert lines[2].startswith("epoch 1/2 training: 4/4 batches")
    assert lines[3].startswith("epoch 1/2: train loss 1.2500, val accuracy 0.5000 (81.0 s), ETA ")
    assert lines[4] == "epoch 2/2: train loss 1.0000, val accuracy 0.7500 (1.0 s)"  # the last: no ETA
    assert len(lines) == 5


def test_the_terminal_bar_shows_epoch_batches_loss_and_eta_and_leaves_the_epoch_lines():
    clock, out = Clock(), io.StringIO()
    pace = TrainingPace(1, 4, 1, clock=clock)
    with TrainDisplay(pace, live=True, file=out, clock=clock) as display:
        clock.now += 1.0
        display.batch("train", 1, 1, 4, lambda: 2.0)
        clock.now += 1.0
        display.batch("train", 1, 2, 4, lambda: 1.5)
        task = display._progress.tasks[0]
        assert task.completed == 2 and task.total == 4 and task.description == "epoch 1/1 training"
        assert task.fields["loss"] == "loss 1.5000" and "ETA 0:0" in task.fields["times"]
        display.epoch_done({"epoch": 1, "train_loss": 1.5, "val_accuracy": 0.5, "epoch_time": 2.0})
    assert "epoch 1/1: train loss 1.5000" in out.getvalue()


def test_nas_train_piped_prints_the_data_line_and_a_line_per_epoch(tmp_path):
    (tmp_path / "tiny.yaml").write_text(json.dumps(TINY))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "nas", "train", str(tmp_path / "tiny.yaml"), "--dataset", "digits",
                           "--train-limit", "100", "--epochs", "2", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["loading digits", "digits: 1x8x8, 10 classes, train 100 / val 100 of 180 / test 360",
                         "val: 100 of 180 images, as many as --train-limit (--val-limit N|all)"]
    assert lines[3].startswith("epoch 1/2: train loss ") and ", ETA " in lines[3]
    assert lines[4].startswith("epoch 2/2: train loss ") and lines[5].startswith("test accuracy ")
    assert len(lines) == 6 and done.stderr == ""
    record = json.loads((tmp_path / "out" / "train.json").read_text())
    assert record["data"].endswith("train 100 / val 100 of 180 / test 360")


def test_validation_follows_the_train_limit_unless_told_and_stays_stratified_and_seeded():
    follows = load_dataset("digits", train_limit=100)
    assert (len(follows.train), len(follows.val), follows.val_of) == (100, 100, 180)
    assert np.bincount(follows.val.y.numpy()).tolist() == [10] * 10  # stratified
    again = load_dataset("digits", train_limit=100)
    assert torch.equal(follows.val.x, again.val.x)  # seeded: the same images every time
    assert set(map(bytes, follows.val.x.numpy())) <= set(map(bytes, load_dataset("digits").val.x.numpy()))
    assert len(load_dataset("digits", train_limit=100, val_limit="all").val) == 180
    every = load_dataset("digits", train_limit=100, val_limit="all")
    assert every.val_of is None and data_lines(every, "all") == [every.describe()]
    fifty = load_dataset("digits", val_limit=50)
    assert (len(fifty.train), len(fifty.val)) == (1257, 50)
    assert data_lines(fifty, 50)[1] == "val: 50 of 180 images, --val-limit 50"
    assert len(load_dataset("digits", train_limit=500).val) == 180  # a limit above the split cuts nothing
    with pytest.raises(DatasetError, match="val_limit must be at least the number of classes"):
        load_dataset("digits", val_limit=5)
    with pytest.raises(DatasetError, match="val_limit must be a positive integer or 'all'"):
        load_dataset("digits", val_limit="some")


def test_val_limit_on_the_command_lines_and_in_the_search_config(tmp_path, capsys):
    from nas.cli import parser

    for command in ("search", "train", "compare"):
        source = ["resnet20"] if command == "train" else []
        assert parser().parse_args([command, *source, "--train-limit", "300", "--val-limit", "all"]).val_limit == "all"
        assert parser().parse_args([command, *source, "--val-limit", "40"]).val_limit == 40
        assert parser().parse_args([command, *source]).val_limit is None
    with pytest.raises(SystemExit) as stop:
        main(["search", "--strategy", "random", "--val-limit", "0"])
    assert stop.value.code == 2
    assert "--val-limit: expected a positive number of images or 'all', got '0'" in capsys.readouterr().err
    assert SearchConfig(strategy="random", val_limit=40).to_dict()["val_limit"] == 40
    with pytest.raises(SearchError, match="val_limit must be a positive integer or 'all'"):
        SearchConfig(strategy="random", val_limit=0)
    # a search saved before validation followed the train limit resumes as it ran: on every image
    old = {k: v for k, v in SearchConfig(strategy="random", train_limit=300).to_dict().items() if k != "val_limit"}
    assert SearchConfig.from_dict(old).val_limit == "all"
    assert SearchConfig.from_dict({**old, "val_limit": None}).val_limit is None


def test_the_view_shows_in_epoch_progress_from_its_source_and_ignores_stale_snapshots(monkeypatch):
    clock = [1000.0]  # the view's own clock (its module's `time`), moved by hand: the ETA below is exact
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    class Source:
        def __init__(self):
            self.snapshots = None

        def poll(self):
            return self.snapshots

    out, source = io.StringIO(), Source()
    trials = [Trial(1, epochs=2), Trial(2, result={"epoch": 1, "val_accuracy": 0.3}, epochs=2), Trial(3, "PENDING")]
    view = TrialsView(4, label=label, live=False, file=out, pipe_every_s=0.0)
    view.attach(source)
    view.update(trials)
    assert out.getvalue() == "" and view.eta(trials) is None  # nothing told yet: no line, no ETA
    source.snapshots = {
        "id1": {"epoch": 1, "epochs": 2, "phase": "train", "done": 60, "total": 187, "fraction": 0.16},
        "id2": {"epoch": 1, "epochs": 2, "phase": "val", "done": 3, "total": 6, "fraction": 0.45},  # stale: reported
        "id3": {"epoch": 1, "epochs": 2, "phase": "train", "done": 9, "total": 187, "fraction": 0.02},  # not running
    }
    view.update(trials)
    assert view.snapshot(trials[0]) is not None and view.snapshot(trials[1]) is None
    assert view.snapshot(trials[2]) is None
    assert view._progress(trials) == pytest.approx(0.16 + 0.5)
    # the pace counts from the first posted batches: 0.1 of a trial in 10 s, 4 - 0.76 trials left
    assert view._paced_from[1] == pytest.approx(0.66)
    clock[0] += 10.0  # 10 s after the first posted batches
    source.snapshots = {**source.snapshots, "id1": {**source.snapshots["id1"], "done": 90, "fraction": 0.26}}
    view.update(trials)
    assert view.eta(trials) == pytest.approx(10.0 * (4 - 0.76) / 0.1, rel=0.01)
    first, second = out.getvalue().splitlines()  # a line at each update (pipe_every_s 0)
    assert first.startswith("running: trial 1 1/2 train 32%  elapsed ") and first.endswith("ETA -")
    assert second.startswith("running: trial 1 1/2 train 48%  elapsed ") and second.endswith("ETA 5:24")
    from rich.console import Console

    screen = Console(file=io.StringIO(), width=80)
    screen.print(view._render(trials))
    rows = screen.file.getvalue().splitlines()
    assert "batches" in rows[1]
    row = next(r for r in rows if r.startswith("trial 1"))
    assert "1/2" in row and "train 90/187" in row
    assert "1/2" in next(r for r in rows if r.startswith("trial 2"))  # its reported epoch, no batches
    view.attach(None)
    assert view.snapshot(trials[0]) is None


def test_the_running_line_fits_80_columns_with_many_trials():
    trials = [Trial(i, epochs=3) for i in range(1, 13)]
    view = TrialsView(12, label=label, live=False, file=io.StringIO())
    view._snapshots = {t.trial_id: {"epoch": 2, "epochs": 3, "phase": "train", "done": 1, "total": 3,
                                    "fraction": 0.4} for t in trials}
    line = view.running_line(trials)
    assert len(line) <= 80 and line.startswith("running: trial 1 2/3 train 33%, ") and "...  elapsed" in line


def test_the_reporter_and_reader_never_raise_and_go_quiet_without_a_board():
    clock = Clock()
    reporter = TrialReporter("nas-progress-none-such", "id1", every_s=1.0, clock=clock)
    pace = TrainingPace(1, 2, 1)

    class Gone:
        def read(self):
            raise RuntimeError("gone")

    reporter._actor = type("Actor", (), {"post": type("M", (), {"remote": staticmethod(lambda *a: 1 / 0)})()})()
    reporter.post(pace)
    assert reporter.off  # posting failed: it trains on, silently
    assert TrialReporter(None, "id1").off and TrialReporter("board", None).off
    reader = BoardReader(type("A", (), {"read": type("M", (), {"remote": staticmethod(Gone().read)})()})())
    assert reader.poll() is None and reader.off and reader.poll() is None
    board = Board()
    board.post("id1", {"epoch": 1})
    board.post("id1", {"epoch": 2})  # the latest only
    assert board.read() == {"id1": {"epoch": 2}}


def test_a_search_s_trials_post_their_batches_to_the_board_and_nothing_is_left(ray_session, tmp_path, monkeypatch):
    from nas.search import run as run_module

    seen, names = {}, []
    original = run_module.progress_board

    @contextlib.contextmanager
    def keeping(view):
        with original(view) as name:
            names.append(name)
            yield name
            actor = ray.get_actor(name)
            deadline = time.monotonic() + 30  # the trials' posts are fire-and-forget: wait for them to land
            while len(seen) < 2 and time.monotonic() < deadline:
                seen.update(ray.get(actor.read.remote()))

    monkeypatch.setattr(run_module, "progress_board", keeping)
    (tmp_path / "tiny.yaml").write_text(TINY_SPACE)
    config = SearchConfig(strategy="random", space=str(tmp_path / "tiny.yaml"), trials=2, train_limit=100,
                          train={"epochs": 1, "batch_size": 16})
    outcome = run_module.run_search(config, tmp_path / "run", verbose=True)
    assert len(outcome.records) == 2 and all(r["status"] == "TERMINATED" for r in outcome.records)
    ids = {r["trial_id"] for r in outcome.records}
    assert set(seen) == ids
    for snap in seen.values():
        assert snap["epoch"] == 1 and snap["epochs"] == 1 and snap["phase"] in ("train", "val")
        assert 1 <= snap["done"] <= snap["total"] and 0.0 < snap["fraction"] <= 1.0
    # the records stay one per epoch, and the search's config records the validation limit it followed
    assert all(r["epoch"] == 1 for r in outcome.records)
    saved = json.loads((tmp_path / "run" / "search.json").read_text())
    assert saved["val_limit"] is None and outcome.summary["data"].endswith("val 100 of 180 / test 360")
    deadline = time.monotonic() + 60  # the board is gone with the run (ray.kill returns before the actor is gone)
    while names[0] in ray.util.list_named_actors():
        assert time.monotonic() < deadline, "the board outlived its run"
        time.sleep(0.05)
    assert board_module.POST_EVERY_S > 0
