"""A search in a subprocess whose state the tests choose, instead of racing for it.

`start_search(argv, gate)` runs `nas ARGV` in a process (and process group) of its own, with the search's
trainable wrapped: the first trial to start trains freely; every other trial, once it has reported its
first epoch (with its checkpoint), waits until the file ``GATE/release`` exists (it never does while the
test watches). So "one trial finished, another mid-way with a checkpoint" is a state the search reaches
and then holds, whatever the machine's speed; `wait_for_held` polls the files until Ray Tune's experiment
snapshot shows it. A resume in the test's own process uses the plain trainable (nothing holds then).
With `die=True` the second trial's worker process kills itself (SIGKILL) after its first report instead:
Ray Tune sees a worker die mid-trial, as when a node is lost or the kernel's OOM killer strikes.
A search in the test's own process (on the session's Ray) holds or dies the same way with
`holding_trainable(gate)` in place of `nas.search.run.make_trainable` (or `nas.compare.run`'s), and
`signal_once_held` signals it once it holds.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
GATE_ENV = "NAS_TEST_GATE"
DIE_ENV = "NAS_TEST_DIE"  # set: instead of holding, the second trial's worker process is killed (SIGKILL)
SCRIPT = ("import signal, sys; import held_trials; held_trials.install(); from nas.cli import main; "
          "signal.signal(signal.SIGINT, signal.default_int_handler); "  # as in a terminal, even under a background job
          "sys.exit(main(sys.argv[1:]))")


# ----- in the search's processes -----
def _first(path: Path) -> bool:
    """True for the one caller that creates `path` (atomic, across processes)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def train_genome(config, data, board=None, gate=None, die=False):
    """`nas.train.trainable.train_genome`, holding as the module says (same name: `Tuner.restore` checks it).
    `gate`, `die`: told by `holding_trainable` (a search in the test's process), else NAS_TEST_GATE's, NAS_TEST_DIE's.
    A held trial ends as a training one does when its run is interrupted (`nas.engine.stopping`: at once)."""
    from ray import tune

    from nas.engine.stopping import StopCheck, TrialStopped, flag_name
    from nas.train import trainable

    gate = Path(gate or os.environ[GATE_ENV])
    if _first(gate / "free"):
        return trainable.train_genome(config, data, board)
    report = tune.report
    if die or os.environ.get(DIE_ENV):  # the second trial's worker dies after its first report; later trials train freely
        if not _first(gate / "died"):
            return trainable.train_genome(config, data, board)

        def report_then_die(metrics, *args, **kwargs):
            report(metrics, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        tune.report = report_then_die
        try:
            return trainable.train_genome(config, data, board)
        finally:
            tune.report = report

    stop = StopCheck(flag_name(board)) if board is not None else (lambda: None)

    def report_then_hold(metrics, *args, **kwargs):
        report(metrics, *args, **kwargs)
        while not (gate / "release").exists():
            try:
                stop()  # the run was interrupted: TrialStopped, as between two batches of a training trial
            except TrialStopped:
                (gate / "stopped").touch()  # for the test: the trial ended itself (Tune did not kill it)
                raise
            time.sleep(0.05)

    tune.report = report_then_hold  # nas.train.trainable calls tune.report through the module
    try:
        return trainable.train_genome(config, data, board)
    finally:
        tune.report = report


def install() -> None:
    """Make `nas search` and `nas compare` build their trials from `train_genome` (in the driver, first)."""
    from ray import tune

    import nas.compare.run as compare
    import nas.search.run as search

    def held(resources):
        return lambda data, board: tune.with_resources(tune.with_parameters(train_genome, data=data, board=board),
                                                       resources)

    search.make_trainable = lambda config, data, board=None: held(config.resources())(data, board)
    compare.make_trainable = lambda config, data, board=None: held({"cpu": config.cpus_per_trial,
                                                                    "gpu": config.gpus_per_trial})(data, board)


def holding_trainable(gate: Path, die: bool = False, resources=None):
    """For a search in the test's own process (on the session's Ray, whose workers do not see NAS_TEST_GATE):
    a `make_trainable` (of `nas.search.run`) whose trials hold (or with `die`, whose second trial's worker is
    killed) as `install`'s do, told `gate` and `die` directly. `resources(config)`: a trial's resources
    (default `config.resources()`, a search's; `compare_resources` for `nas.compare.run`'s)."""
    import importlib

    from ray import tune

    gate.mkdir(parents=True, exist_ok=True)
    # by its name in the package `tests`: Ray's workers have the driver's folder (the repository) on their path,
    # not tests/ (where pytest finds `held_trials` for the test's own process)
    holding = importlib.import_module("tests.held_trials").train_genome

    def make_trainable(config, data, board=None):
        return tune.with_resources(tune.with_parameters(holding, data=data, board=board, gate=str(gate), die=die),
                                   config.resources() if resources is None else resources(config))

    return make_trainable


def compare_resources(config) -> dict[str, float]:
    """A comparison's trial resources (`nas.compare.run`'s trainable), for `holding_trainable`."""
    return {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial}


class InProcess:
    """A run in the test's own process as the waits below see a process: `poll()` is None while it runs."""

    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@contextlib.contextmanager
def signal_once_held(signum: int, gate: Path, wait, target: Path, **kwargs):
    """Within: a thread that waits for the run in this process to hold (`wait(run, target, gate, **kwargs)`:
    `wait_for_held` or `wait_for_snapshot`), then sends `signum` to this process. Yields the list the wait's
    answer goes to (empty if the run never held: its trials are released and it ends by itself). On leaving,
    the held trials are released (none stays held on the session's Ray) and the thread is joined."""
    run, seen = InProcess(), []

    def watch() -> None:
        try:
            seen.append(wait(run, target, gate, **kwargs))
            os.kill(os.getpid(), signum)  # the run holds: it cannot have ended
        finally:
            if not seen:
                (gate / "release").touch()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        run.code = -1  # the watcher stops
        (gate / "release").touch()
        watcher.join(timeout=60)


# ----- in the test -----
def start_search(argv: list[str], gate: Path, die: bool = False) -> subprocess.Popen:
    """`nas ARGV` in a process group of its own, its trials held (or with `die`, the second one killed)."""
    gate.mkdir(parents=True, exist_ok=True)
    # TUNE_GLOBAL_CHECKPOINT_S: Tune writes its experiment snapshot (what the tests wait for) every second
    environment = {**os.environ, GATE_ENV: str(gate), "TUNE_GLOBAL_CHECKPOINT_S": "1", **({DIE_ENV: "1"} if die else {}),
                   "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    with open(gate / "stdout", "w") as stdout, open(gate / "stderr", "w") as stderr:  # files: a pipe could fill up
        return subprocess.Popen([sys.executable, "-c", SCRIPT, *argv], cwd=ROOT, env=environment,
                                start_new_session=True, stdout=stdout, stderr=stderr)


def output(gate: Path) -> tuple[str, str]:
    """What the search printed: (stdout, stderr)."""
    return (gate / "stdout").read_text(), (gate / "stderr").read_text()


def unfinished_with_checkpoint(tune_dir: Path, epoch: int = 1) -> set[str]:
    """Trials that Ray Tune's last experiment snapshot shows unfinished but checkpointed (mid-way), at epoch
    `epoch` or later."""
    return snapshot(tune_dir, epoch)[1]


def snapshot(tune_dir: Path, epoch: int = 1) -> tuple[set[str], set[str]]:
    """(finished, unfinished with a checkpoint of epoch `epoch` or later) trial ids in Ray Tune's last
    experiment snapshot."""
    done, held = set(), set()
    for state_file in tune_dir.glob("experiment_state-*.json"):
        try:
            state = json.loads(state_file.read_text())
        except (json.JSONDecodeError, OSError):
            continue  # being replaced
        for trial_json, metadata_json in state["trial_data"]:
            trial = json.loads(trial_json)
            if trial["status"] == "TERMINATED":
                done.add(trial["trial_id"])
            elif trial["status"] != "ERROR" and "checkpoint_0000" in metadata_json and \
                    (epoch <= 1 or json.loads(metadata_json).get("last_result", {}).get("epoch", 0) >= epoch):
                held.add(trial["trial_id"])
    return done, held


def wait_for_snapshot(process: subprocess.Popen, tune_dir: Path, gate: Path, timeout: float = 300) -> set[str]:
    """Poll until Tune's snapshot shows one trial finished and another held mid-way; the held trials' ids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        done, held = snapshot(tune_dir)
        if done and held:
            return held
        time.sleep(0.1)
    said = output(gate)[1][-3000:] if (gate / "stderr").is_file() else "(a run in the test's process)"
    raise AssertionError(f"the run never held a trial (exit {process.poll()}): {said}")


def finished(folder: Path) -> dict[str, dict]:
    path = folder / "trials.json"
    if not path.is_file():
        return {}
    return {t["trial_id"]: t for t in json.loads(path.read_text())["trials"] if t["status"] == "TERMINATED"}


def wait_for_held(process, folder: Path, gate: Path, timeout: float = 300,
                  epoch: int = 1) -> tuple[dict[str, dict], set[str]]:
    """Poll until one trial has finished and another is held mid-way (after epoch `epoch`) in Tune's snapshot;
    return the finished trials' records and the held trials' ids. (The deadline only guards against a hang.)
    `process`: the search's (`start_search`), or for a search in the test's process anything whose poll()
    is None while it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        done = finished(folder)
        held = unfinished_with_checkpoint(folder / "tune", epoch) - set(done) if done else set()
        if held:
            return done, held
        time.sleep(0.1)
    said = output(gate)[1][-3000:] if (gate / "stderr").is_file() else "(a search in the test's process)"
    raise AssertionError(f"the search never held a trial (exit {process.poll()}): {said}")


def stop_group(process: subprocess.Popen) -> None:
    """SIGKILL whatever is left of the search's process group (its Ray processes) and reap the driver."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
