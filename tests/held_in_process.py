"""A run in the test's own process (and the session's Ray) whose trials the test holds, then a signal to this
process: the state `held_trials` reaches in a subprocess, without a process and a Ray of its own to start.

    with hold(monkeypatch, nas.compare.run, gate) as held:   # the run's make_trainable, replaced
        with interrupt_when(lambda: ..., gate):                 # SIGINT to this process once the state is there
            code = main(argv)                                   # returns 130 (the run's own signal handling)

The first trial to start trains freely; every other trial, once it has reported its first epoch (with its
checkpoint), waits until ``GATE/release`` exists or Ray Tune stops it (the run was interrupted). The held
trainable is a closure (Ray pickles it by value), so the session's Ray workers need no test module on their
path. Use it where the run's signal path is already tested across processes (tests/test_interrupts.py).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import held_trials


def held_trainable(gate: Path):
    """`nas.train.trainable.train_genome`, holding as the module says (the same name: `Tuner.restore` checks it)."""
    free = str(Path(gate) / "free")
    release = str(Path(gate) / "release")

    def train_genome(config, data):
        import os
        import sys
        import time

        from ray import tune

        from nas.train import trainable

        try:
            os.close(os.open(free, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            first = True
        except FileExistsError:
            first = False
        if first:
            return trainable.train_genome(config, data)
        report = tune.report

        def report_then_hold(metrics, *args, **kwargs):
            report(metrics, *args, **kwargs)
            try:
                from ray.train._internal.session import get_session  # Ray's private session (as held_trials)

                stopping = getattr(get_session(), "stop_event", None)
            except ImportError:
                stopping = None
            while not os.path.exists(release):
                if stopping is not None and stopping.is_set():  # Tune stops the trial: end the training thread
                    stopping.clear()
                    sys.exit(0)
                time.sleep(0.05)

        tune.report = report_then_hold  # nas.train.trainable calls tune.report through the module
        try:
            return trainable.train_genome(config, data)
        finally:
            tune.report = report

    return train_genome


@contextlib.contextmanager
def hold(monkeypatch, module, gate: Path) -> Iterator[None]:
    """`module.make_trainable` (nas.search.run's or nas.compare.run's) building its trials from the held trainable."""
    from ray import tune

    Path(gate).mkdir(parents=True, exist_ok=True)
    trainable = held_trainable(gate)

    def make_trainable(config, data, board=None):
        resources = (config.resources() if hasattr(config, "resources")
                     else {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial})
        return tune.with_resources(tune.with_parameters(trainable, data=data), resources)

    with monkeypatch.context() as patched:
        patched.setattr(module, "make_trainable", make_trainable)
        patched.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")  # Tune snapshots the experiment (what we watch) each second
        yield


@contextlib.contextmanager
def interrupt_when(ready: Callable[[], bool], gate: Path, signum: int = signal.SIGINT,
                   timeout: float = 300) -> Iterator[dict]:
    """A thread that sends `signum` to this process once `ready()` (polled); if that never comes before
    `timeout`, it releases the held trials instead (the run ends, and the test's assertions fail)."""
    seen: dict = {"sent": False}
    finished = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not finished.is_set():
            if ready():
                seen["sent"] = True
                os.kill(os.getpid(), signum)
                return
            time.sleep(0.1)
        (Path(gate) / "release").touch()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        finished.set()
        thread.join(timeout=timeout)
    assert seen["sent"], "the run never held a trial"


def held_in_snapshot(tune_dir: Path) -> set[str]:
    """The trials held mid-way once Tune's snapshot shows one finished and another held (else an empty set)."""
    done, held = held_trials.snapshot(tune_dir)
    return held if done else set()
