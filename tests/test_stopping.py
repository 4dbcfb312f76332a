"""An interrupted run's stop flag (`nas.engine.stopping`): raised only at Tune's first snapshot after a signal,
seen by the trials' check (at most every `every_s`), removed at the end. (The held trials of test_interrupts.py,
test_compare.py and test_bench_table.py end themselves through it when their run is interrupted.)"""
import signal
import time
import warnings

import pytest

from nas.engine.board import trial_progress
from nas.engine.interrupts import Interrupts
from nas.engine.stopping import RaiseStopFlag, StopCheck, TrialStopped, flag_name, stopping_trials
from nas.train.settings import TrainSettings


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def exists(ray, name: str) -> bool:
    try:
        ray.get_actor(name)
        return True
    except ValueError:
        return False


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s  # guards a hang only
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_the_flag_is_raised_at_the_first_snapshot_after_a_signal_and_removed_at_the_end(ray_session):
    board = "nas-progress-test-flag"
    clock = Clock()
    check = StopCheck(flag_name(board), every_s=1.0, clock=clock)
    interrupts = Interrupts()
    with stopping_trials(interrupts, board):
        assert RaiseStopFlag().get_state() is None  # a snapshot before any signal: no flag
        check()
        interrupts.signal = signal.SIGINT  # what the handler records on the first signal
        assert RaiseStopFlag().get_state() is None  # Tune's snapshot: stateless, and the flag is up
        check()  # looked up less than every_s ago: not yet
        wait_for(lambda: exists(ray_session, flag_name(board)))  # raised in a thread of its own
        clock.now = 1.0
        with pytest.raises(TrialStopped, match="interrupted"):
            check()
        with warnings.catch_warnings():  # Ray's: "get_trial_id ... outside a trial" (no trial id: nothing posted)
            warnings.simplefilter("ignore")
            hook = trial_progress(board, TrainSettings(epochs=1), 10, 0)  # a trial's batch hook checks it too
        with pytest.raises(TrialStopped):
            hook("train", 1, 1, 10, 0.5)
    wait_for(lambda: not exists(ray_session, flag_name(board)))  # killed at the end (ray.kill is asynchronous)
    clock.now = 10.0
    check()  # gone: trials of a later run with this name would train on


def test_without_a_board_or_outside_a_run_nothing_is_raised(ray_session):
    interrupts = Interrupts()
    interrupts.signal = signal.SIGTERM
    assert RaiseStopFlag().get_state() is None  # no run going on in this process
    with stopping_trials(interrupts, None):
        assert RaiseStopFlag().get_state() is None
    StopCheck(flag_name("nas-progress-never-raised"))()  # no such flag: no exception
