"""How far a training run is and how long it has left, from its batches (no Ray, no display).

    pace = TrainingPace.for_run(settings, len(data.train), len(data.val))
    pace.start_epoch(1)
    pace.batch("train", done, total)      # from the loop's on_batch hook (nas.train.loop.BatchHook)
    pace.fraction(), pace.eta()           # share of the whole run done (0..1); seconds left, None until timed

An epoch is its training batches and its validation batches. Their costs are measured as they go:
seconds per training batch from the training batches timed so far (the first batches give the first
estimate), seconds per validation batch from the validation batches timed so far, and until the
first validation is timed, a validation batch is guessed from a training batch (a forward pass of
`eval_batch_size` images against a forward and backward pass of `batch_size`: a third of the work
per image). `nas train`'s display and a search's in-epoch progress both read it.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

PHASES = ("train", "val")  # an epoch's phases, in order (a final test pass is not counted)


class TrainingPace:
    """Where a run is (epoch, phase, batches) and its timing; `done_epochs` finished before it started
    (a resumed trial) count as done but are not timed."""

    def __init__(self, epochs: int, train_batches: int, val_batches: int, *, val_guess: float = 1 / 3,
                 done_epochs: int = 0, clock: Callable[[], float] = time.monotonic):
        self.epochs = max(1, int(epochs))
        self.totals = {"train": max(1, int(train_batches)), "val": max(0, int(val_batches))}
        self.val_guess = val_guess  # a validation batch's cost in training batches, until one is timed
        self.clock = clock
        self.epoch = done_epochs  # the epoch under way (done_epochs until the next starts)
        self.completed = done_epochs  # epochs finished
        self.phase: str | None = None
        self.done = 0  # batches of `phase` done
        self._timed = {"train": [0.0, 0], "val": [0.0, 0]}  # phase -> [seconds, batches] of finished phases
        self._mark: float | None = None  # when the last batch was done
        self._phase_started = 0.0  # when the phase under way started (the batch before its first)
        self._base = 0  # batches of the phase under way done before it was timed
        self.started = clock()

    @staticmethod
    def for_run(settings, train_size: int, val_size: int, done_epochs: int = 0, **kwargs: Any) -> "TrainingPace":
        """A pace for `TrainSettings` `settings` on splits of these sizes (as the loop cuts them)."""
        from nas.train.loop import steps_per_epoch  # deferred: torch (`nas train --help` imports this module)

        val_batches = math.ceil(val_size / settings.eval_batch_size) if val_size else 0
        guess = settings.eval_batch_size / settings.batch_size / 3.0
        return TrainingPace(settings.epochs, steps_per_epoch(train_size, settings.batch_size), val_batches,
                            val_guess=guess, done_epochs=done_epochs, **kwargs)

    # ----- events -----
    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.phase, self.done = epoch, None, 0

    def batch(self, phase: str, done: int, total: int) -> None:
        """`done` of `total` batches of `phase` ("train" or "val") are done. A phase is timed from the
        previous batch (the last of the phase before); the run's very first batch only starts the clock."""
        if phase not in PHASES:
            return
        now = self.clock()
        if phase != self.phase:
            self._close_phase()
            self.phase = phase
            self._phase_started, self._base = (self._mark, 0) if self._mark is not None else (now, done)
        self.done, self._mark = done, now
        self.totals[phase] = max(1, total)

    def end_epoch(self) -> None:
        self._close_phase()
        self.completed = max(self.completed, self.epoch)
        self.phase, self.done = None, 0

    def _close_phase(self) -> None:
        if self.phase is not None and self.done > self._base:
            seconds, batches = self._timed[self.phase]
            self._timed[self.phase] = [seconds + self._mark - self._phase_started, batches + self.done - self._base]

    # ----- figures -----
    def per_batch(self, phase: str) -> float | None:
        """Seconds per batch of `phase` so far (the phase under way included); None before any."""
        seconds, batches = self._timed[phase]
        if self.phase == phase and self.done > self._base:
            seconds, batches = seconds + self._mark - self._phase_started, batches + self.done - self._base
        if batches:
            return seconds / batches
        if phase == "val":
            train = self.per_batch("train")
            return train * self.val_guess if train is not None else None
        return None

    def _val_weight(self) -> float:
        train, val = self.per_batch("train"), self.per_batch("val")
        return val / train if train and val is not None else self.val_guess

    def _left_in_epoch(self) -> tuple[int, int]:
        """(training batches, validation batches) left in the epoch under way."""
        if self.phase == "train":
            return self.totals["train"] - self.done, self.totals["val"]
        if self.phase == "val":
            return 0, self.totals["val"] - self.done
        if self.epoch > self.completed:  # started, no batch yet
            return self.totals["train"], self.totals["val"]
        return 0, 0

    def fraction(self) -> float:
        """The share of the whole run's work done, 0..1 (epochs, and batches of the epoch under way)."""
        weight = self._val_weight()
        epoch_work = self.totals["train"] + weight * self.totals["val"]
        train_left, val_left = self._left_in_epoch()
        in_epoch = (epoch_work - train_left - weight * val_left) / epoch_work if self.epoch > self.completed else 0.0
        return min(1.0, max(0.0, (self.completed + in_epoch) / self.epochs))

    def eta(self) -> float | None:
        """Seconds left at the pace measured so far; None until a training batch has been timed."""
        train, val = self.per_batch("train"), self.per_batch("val")
        if train is None or val is None:
            return None
        train_left, val_left = self._left_in_epoch()
        later = self.epochs - max(self.epoch, self.completed)
        return (train_left + later * self.totals["train"]) * train + (val_left + later * self.totals["val"]) * val

    def snapshot(self) -> dict[str, Any]:
        """Plain data for a display elsewhere (a search's driver)."""
        return {"epoch": self.epoch, "epochs": self.epochs, "phase": self.phase, "done": self.done,
                "total": self.totals.get(self.phase or "train", 0), "fraction": self.fraction(), "eta_s": self.eta(),
                "at": time.time()}
