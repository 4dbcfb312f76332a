"""An interrupted run's trials stopped at once, instead of after Ray Tune's wait.

On the first Ctrl-C (or SIGTERM) Ray Tune ends its loop, snapshots the experiment and asks each running
trial's worker to stop. That request waits behind the trial's training call, which returns only at the
trial's next report (an epoch may be minutes away), or Tune kills the worker after 5 + 10 s. So a run has a
stop flag: a named Ray actor (`flag_name(board)`, named after the run's progress board) that exists only
once the run is interrupted. Trials look for it between batches (at most every `CHECK_EVERY_S`, in the batch
hook of `nas.engine.board.trial_progress`) and, once it exists, end their training by raising `TrialStopped`,
which their trainable function turns into a plain return (`stops_quietly`); Tune, which is stopping them
already, ignores that and stops their workers at once.

The flag is raised only once Tune has snapshotted the interrupted experiment: Tune asks every callback for its
state at each snapshot, and `RaiseStopFlag` raises the flag at the first snapshot after the signal. From there
on Tune's loop handles no trial's event (it ends, snapshots once more and stops the trials), so the snapshot,
which `--resume` continues from, shows every trial as it was when the signal came; each resumes from its last
checkpoint. Trials that do not look for the flag (`nas train --seeds`, a candidate scored by a proxy or a table)
keep Tune's own wait.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator

import ray
from ray.tune import Callback

from nas.engine.every import AtMostEvery
from nas.engine.interrupts import Interrupts
from nas.engine.light_actors import StopFlag

CHECK_EVERY_S = 0.5  # a trial looks for its run's stop flag at most this often


class TrialStopped(Exception):
    """The run was interrupted: this trial ends here and resumes from its last checkpoint."""


def flag_name(board: str) -> str:
    """The stop flag of the run whose progress board is named `board`."""
    return f"{board}-stop"


class Flag:
    """The driver's side: `raise_()` creates the named actor the trials look for (once), in a thread of its own:
    creating a named actor asks Ray's control store whether the name is taken and waits for the answer, which
    never comes when Ray's own processes were killed too (SIGTERM to the whole process group); Tune's loop and
    a second signal must not wait on it. `remove()` kills the actor."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._actor = None
        self._raising: threading.Thread | None = None

    def raise_(self) -> None:
        if self._raising is None:
            self._raising = threading.Thread(target=self._create, name="nas-stop-flag", daemon=True)
            self._raising.start()

    def _create(self) -> None:
        try:
            self._actor = ray.remote(num_cpus=0, max_restarts=0)(StopFlag).options(name=self.name).remote()
        except Exception:  # noqa: BLE001 - no flag: the trials stop as Tune stops them (its wait)
            self._actor = None

    def remove(self, wait_s: float = 0.5) -> None:
        if self._raising is not None:
            self._raising.join(wait_s)  # created by now unless Ray is gone; one made later ends with the driver
        if self._actor is not None:
            with contextlib.suppress(Exception):
                ray.kill(self._actor, no_restart=True)
        self._actor = None


_ARMED: dict[str, tuple[Interrupts, Flag] | None] = {"now": None}


@contextlib.contextmanager
def stopping_trials(interrupts: Interrupts, board: str | None) -> Iterator[None]:
    """While Ray Tune runs (`nas.engine.experiment.fit`): a signal that `interrupts` catches raises the stop flag
    of the run whose board is `board` at Tune's next snapshot (`RaiseStopFlag`); the flag is removed at the end.
    Nothing without a board."""
    if board is None:
        yield
        return
    previous, flag = _ARMED["now"], Flag(flag_name(board))
    _ARMED["now"] = (interrupts, flag)
    try:
        yield
    finally:
        _ARMED["now"] = previous
        flag.remove()


class RaiseStopFlag(Callback):
    """Raises the stop flag of the run going on in this process (`stopping_trials`) when Tune snapshots the
    experiment after a signal. Stateless: Tune saves callbacks with the experiment, so it holds nothing."""

    def get_state(self) -> None:
        armed = _ARMED["now"]
        if armed is not None and armed[0].signal is not None:
            armed[1].raise_()
        return None


def stops_quietly(trainable: Callable[..., None]) -> Callable[..., None]:
    """A trainable function that `TrialStopped` ends with a plain return: Tune, stopping the trial already,
    ignores how its training call ended, but Ray would log an error it raised as unhandled, traceback and all."""

    @functools.wraps(trainable)
    def run(*args, **kwargs) -> None:
        try:
            trainable(*args, **kwargs)
        except TrialStopped:
            return

    return run


class StopCheck:
    """A trial's side: calling it raises `TrialStopped` once the flag `name` exists (looked up at most every
    `every_s`); a lookup that fails otherwise (Ray unreachable) counts as no flag."""

    def __init__(self, name: str, every_s: float = CHECK_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.lookups = AtMostEvery(every_s, clock)

    def __call__(self) -> None:
        if not self.lookups.due():
            return
        try:
            ray.get_actor(self.name)
        except Exception:  # noqa: BLE001 - ValueError: no such actor (the run goes on)
            return
        raise TrialStopped(f"the run was interrupted ({self.name} raised)")
