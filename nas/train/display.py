"""`nas train`'s progress: a live bar on a terminal, flushed lines elsewhere (CI logs, pipes, files).

    with TrainDisplay(pace) as display:                       # pace: nas.train.pace.TrainingPace
        nas.fit(..., progress=display.epoch_done, on_batch=display.batch)

On a terminal (rich's Progress): the epoch and phase, a bar over the phase's batches, batches done of
the total, the mean training loss so far, the elapsed time and an ETA of the whole run; each finished
epoch leaves a line above the bar. Elsewhere: one line per finished epoch, and within an epoch one
line every `every_s` seconds (30) since the last line, so a long epoch is never silent and a short
one adds nothing. Every line is flushed at once. The ETA comes from the pace (the batches timed so far).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from nas.units import duration
from nas.train.pace import TrainingPace

EVERY_S = 30.0  # seconds between in-epoch lines when not on a terminal
REDRAW_S = 0.1  # at most this often the bar's figures are updated
LOSS_S = 0.5  # at most this often the running loss is read (a device sync)


class TrainDisplay:
    """Progress of one `nas train` run; `live`: a rich bar (default: when the output is a terminal);
    `enabled=False` shows nothing."""

    def __init__(self, pace: TrainingPace, *, enabled: bool = True, live: bool | None = None, file=None,
                 every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic):
        from rich.console import Console  # deferred: rich (0.2 s; `nas train --help` imports this module)

        self.pace = pace
        self.enabled = enabled
        self.console = Console(file=file or sys.stdout, highlight=False)
        self.live_mode = enabled and (self.console.is_terminal if live is None else live)
        self.every_s = every_s
        self.clock = clock
        self._progress = None
        self._task = None
        self._last_line = clock()
        self._last_draw = -float("inf")
        self._last_loss_read = -float("inf")
        self._loss: float | None = None
        self._epoch = 0

    def __enter__(self) -> "TrainDisplay":
        if self.live_mode:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # deferred: rich (as above)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                      TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[times]}"),
                                      console=self.console, transient=True, refresh_per_second=4)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=None, loss="", times="")
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print(self, text: str) -> None:
        """A line (above the bar on a terminal), flushed."""
        if not self.enabled:
            return
        self.console.print(text, markup=False, soft_wrap=True)
        self.console.file.flush()
        self._last_line = self.clock()

    # ----- the training's events -----
    def batch(self, phase: str, epoch: int, done: int, total: int, loss: Callable[[], float] | None) -> None:
        """A batch of `phase` ("train", "val", "test") of `epoch` is done (`loss`: the running mean's reader)."""
        if epoch != self._epoch:
            self._epoch = epoch
            self.pace.start_epoch(epoch)
            self._loss = None
        self.pace.batch(phase, done, total)
        if not self.enabled:
            return
        now = self.clock()
        if loss is not None and (now - self._last_loss_read >= LOSS_S or done == total):
            self._last_loss_read = now
            self._loss = loss()
        if self._progress is not None:
            if now - self._last_draw >= REDRAW_S or done == total:
                self._last_draw = now
                self._progress.update(self._task, description=self._where(phase, epoch), completed=done, total=total,
                                      loss=self._loss_text(), times=self._times())
        elif now - self._last_line >= self.every_s:
            self.print(f"{self._where(phase, epoch)}: {done}/{total} batches{', ' if self._loss_text() else ''}"
                       f"{self._loss_text()}, {self._times()}")

    def epoch_done(self, record: dict[str, Any]) -> None:
        """The epoch's record (epoch, train_loss, val_accuracy, epoch_time): one line."""
        self.pace.end_epoch()
        left = self.pace.eta() if record["epoch"] < self.pace.epochs else None
        self.print(f"epoch {record['epoch']}/{self.pace.epochs}: train loss {record['train_loss']:.4f}, "
                   f"val accuracy {record['val_accuracy']:.4f} ({record['epoch_time']:.1f} s)"
                   + (f", ETA {duration(left)}" if left is not None else ""))

    # ----- parts -----
    def _where(self, phase: str, epoch: int) -> str:
        return f"epoch {epoch}/{self.pace.epochs} " + {"train": "training", "val": "validating"}.get(phase, "testing")

    def _loss_text(self) -> str:
        return f"loss {self._loss:.4f}" if self._loss is not None else ""

    def _times(self) -> str:
        return f"elapsed {duration(self.clock() - self.pace.started)}, ETA {duration(self.pace.eta())}"


def data_lines(data, val_limit: int | str | None) -> list[str]:
    """What a run trains on: the data set's line, and when its validation split was cut, by what
    (`val_limit` as given: None is the default, following the train limit)."""
    lines = [data.describe()]
    if data.val_of is not None:
        why = "as many as --train-limit (--val-limit N|all)" if val_limit is None else f"--val-limit {val_limit}"
        lines.append(f"val: {len(data.val)} of {data.val_of} images, {why}")
    return lines
