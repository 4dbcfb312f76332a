"""What a search or comparison is doing, from its first second: a live view of the running trials
on a terminal, one line per finished trial elsewhere (CI logs, pipes, files).

    view = TrialsView(total=16, label=search_label)          # made by the driver, not pickled
    callbacks = [ProgressCallback()]                          # goes into Ray Tune's RunConfig
    with view:
        view.announce("starting Ray")
        tuner.fit()

`ProgressCallback` is a Ray Tune `Callback` that forwards Tune's events to the view active in this
process: Tune pickles its callbacks with the experiment (`Tuner.restore` brings back the old ones),
so the callback holds no console and no settings, and a resumed run shows the view of the command
that resumed it. On a terminal (`rich.live.Live`): done/total, failures, best so far, elapsed time and
an ETA, then one row per running trial (trial, epoch, batches of the epoch under way, current
accuracy, elapsed); every finished trial also leaves one line above the live view. Elsewhere those
lines are printed, and while trials run, one line of their in-epoch progress every `PIPE_EVERY_S`
since the last line (so a long epoch is never silent, a short one adds nothing). Everything fits 80
columns.

In-epoch progress (a trial's epoch, phase, batches done of the total, share of its work done) comes
from a source the run attaches (`attach`: `nas.engine.board`, where trials post it between Tune's
per-epoch reports); it also drives the ETA, which is then known from the first trial's first batches.
Without a source the view goes by Tune's per-epoch results.

One file of about 400 lines: it is one job, the live view, most of it the one class `TrialsView`, whose
terminal and pipe modes share its state; the callback that feeds it and the helpers are a few lines each.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nas.engine.records import FINISHED, TrialStatus
from nas.engine.tune_trials import proposal_index, trial_error
from nas.units import duration, finite  # noqa: F401 (duration re-exported)

WIDTH = 80  # columns of the lines and the live view
MAX_ROWS = 8  # running trials listed in the live view (the rest are counted)
REFRESH_S = 0.5  # at most this often the live view is rebuilt from Tune's trials
PIPE_EVERY_S = 30.0  # not on a terminal: a line of the running trials' in-epoch progress at most this often


def figure(value: float) -> str:
    """An accuracy as 0.9123; a larger figure (a proxy's score, nas.evaluate) in 4 significant digits."""
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"


def _epochs(trial) -> int | None:
    train = (trial.config or {}).get("train") or {}
    return train.get("epochs") if isinstance(train.get("epochs"), int) else None


def _error(trial) -> str:
    try:
        return trial_error(trial)
    except Exception:  # noqa: BLE001 - a progress line must never stop a search
        return "unknown error"


class TrialsView:
    """The driver-side display of one Tune run (search or comparison).

    `label(trial) -> str` names a trial; `metrics` are the (result key, short name) pairs a finished
    trial's line shows; `best` is the (result key, mode) of the "best so far" figure, None for none.
    `live`: a rich live view (default: when stdout is a terminal); `enabled=False` prints nothing.
    """

    def __init__(self, total: int, *, label: Callable[[Any], str],
                 metrics: Sequence[tuple[str, str]] = (("val_accuracy", "val"),),
                 best: tuple[str, str] | None = ("val_accuracy", "max"), live: bool | None = None,
                 enabled: bool = True, file=None, pipe_every_s: float | None = None):
        self.total = total
        self.label = label
        self.metrics = tuple(metrics)
        self.best_key, self.best_mode = best if best else (None, "max")
        self.enabled = enabled
        self.console = Console(file=file or sys.stdout, width=None if file is None else WIDTH, highlight=False)
        self.live_mode = enabled and (self.console.is_terminal if live is None else live)
        self._live = None
        self._started = time.monotonic()
        self._first_running: float | None = None  # when a trial first ran (the ETA's pace leaves out start-up)
        self._seen: dict[str, float] = {}  # trial id -> when this view first saw it running
        self._reported: set[str] = set()  # trial ids whose line is printed
        self._progress_at_start: float | None = None  # trials' worth of work done before this session
        self._last_refresh = 0.0
        self._trials: Sequence[Any] = []  # Tune's trials as last seen (what the live view draws)
        self.best: tuple[float, str] | None = None  # (value, trial label)
        self.pipe_every_s = PIPE_EVERY_S if pipe_every_s is None else pipe_every_s
        self._source = None  # where in-epoch progress comes from (nas.engine.board.BoardReader), if anywhere
        self._snapshots: dict[str, dict[str, Any]] = {}  # trial id -> its latest in-epoch snapshot
        self._last_line = time.monotonic()  # when a line was last printed
        self._paced_from: tuple[float, float] | None = None  # (when, progress) at the first in-epoch snapshot
        self._status: tuple[str, float, bool] | None = None  # (what the run is doing, since when, until a trial runs)

    def attach(self, source) -> None:
        """Read in-epoch progress from `source` (`poll()` -> {trial id: snapshot} or None); None: stop."""
        self._source = source
        if source is None:
            self._snapshots = {}

    # ----- lifetime -----
    def __enter__(self) -> "TrialsView":
        _ACTIVE.append(self)
        if self.live_mode:
            self._live = Live(_Drawing(self), console=self.console, refresh_per_second=2, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def announce(self, text: str) -> None:
        """A line about what is starting (Ray, data), printed at once."""
        if self.enabled:
            self._print(text)

    def status(self, text: str | None, until_running: bool = False) -> None:
        """What the run is doing now that takes a while (starting Ray, testing the best network), or None
        when done: the live view shows it with the seconds it has taken so far; elsewhere it is printed once,
        at once. `until_running`: it ends by itself when a trial is first seen running."""
        self._status = (text, time.monotonic(), until_running) if text else None
        if text and self.enabled and self._live is None:
            self._print(text)
        elif self._live is not None:
            self._live.refresh()

    def status_line(self) -> str | None:
        """The status with its elapsed seconds, e.g. ``starting Ray (local)... 12 s``; None when there is none."""
        if self._status is None:
            return None
        text, since, _ = self._status
        return f"{text}... {time.monotonic() - since:.0f} s"

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True)
        self.console.file.flush()
        self._last_line = time.monotonic()

    # ----- Tune's events -----
    def update(self, trials: Sequence[Any], force: bool = False) -> None:
        now = time.monotonic()
        self._trials = trials
        if self._source is not None:
            snapshots = self._source.poll()
            if snapshots is not None:
                self._snapshots = snapshots
                if self._paced_from is None and any(self.snapshot(t) for t in trials):
                    self._paced_from = (now, self._progress(trials))
        for trial in trials:
            if trial.status == "RUNNING":
                self._seen.setdefault(trial.trial_id, now)
                if self._first_running is None:
                    self._first_running = now
                if self._status is not None and self._status[2]:
                    self._status = None  # (waiting for the first trial: it runs)
        if self._progress_at_start is None:
            self._progress_at_start = self._progress(trials)
            for trial in trials:  # finished before this session (a resume): no line, but they count
                if trial.status in FINISHED:
                    self._reported.add(trial.trial_id)
                    self._consider_best(trial)
        if self._live is not None and (force or now - self._last_refresh >= REFRESH_S):
            self._last_refresh = now
            self._live.refresh()
        elif self._live is None and self.enabled and now - self._last_line >= self.pipe_every_s:
            text = self.running_line(trials)
            if text is not None:
                self._print(text)

    def finished(self, trials: Sequence[Any], trial, status: str) -> None:
        """`trial` ended with `status` (Tune calls back before it sets the trial's own status)."""
        self.update(trials)
        if trial.trial_id in self._reported:
            return
        self._reported.add(trial.trial_id)
        if status == TrialStatus.TERMINATED:
            self._consider_best(trial)
        if self.enabled:
            self._print(self.line(trials, trial, status))
        self.update(trials, force=True)

    def _consider_best(self, trial) -> None:
        if self.best_key is None:
            return
        value = finite((trial.last_result or {}).get(self.best_key))
        if value is None:
            return
        better = self.best is None or (value > self.best[0] if self.best_mode == "max" else value < self.best[0])
        if better:
            self.best = (value, self.label(trial))

    # ----- figures -----
    def done(self, trials: Sequence[Any]) -> tuple[int, int]:
        """(finished, failed) among `trials`, counting those reported finished before Tune updates them."""
        finished = failed = 0
        for trial in trials:
            if trial.status in FINISHED or trial.trial_id in self._reported:
                finished += 1
                failed += trial.status == TrialStatus.ERROR
        return finished, failed

    def snapshot(self, trial) -> dict[str, Any] | None:
        """A running trial's in-epoch progress, when newer than its last epoch report (else None)."""
        snap = self._snapshots.get(trial.trial_id)
        if snap is None or trial.status != "RUNNING" or trial.trial_id in self._reported:
            return None
        reported = finite((trial.last_result or {}).get("epoch")) or 0
        epoch = finite(snap.get("epoch"))
        return snap if epoch is not None and epoch > reported and snap.get("phase") else None

    def _progress(self, trials: Sequence[Any]) -> float:
        """Trials' worth of work done: finished trials, plus the share of the work of running ones (their
        epochs, and the batches of the epoch under way when a source tells)."""
        work = 0.0
        for trial in trials:
            if trial.status in FINISHED or trial.trial_id in self._reported:
                work += 1.0
            elif trial.status == "RUNNING":
                epoch, epochs = finite((trial.last_result or {}).get("epoch")), _epochs(trial)
                share = min(1.0, epoch / epochs) if epoch and epochs else 0.0
                snap = self.snapshot(trial)
                if snap is not None and finite(snap.get("fraction")) is not None:
                    share = max(share, min(1.0, snap["fraction"]))
                work += share
        return work

    def eta(self, trials: Sequence[Any]) -> float | None:
        """Seconds left at this session's pace so far (None until some work is done). With in-epoch
        progress, the pace is measured from the first batches a trial posted, so the start-up before
        them (Ray's workers, the first trial's build) does not count as a trial's work."""
        progress = self._progress(trials)
        if self._paced_from is not None:
            since, before = self._paced_from
            elapsed, done = time.monotonic() - since, progress - before
            return elapsed * (self.total - progress) / done if elapsed > 0 and done > 0 else None
        done_here = progress - (self._progress_at_start or 0.0)
        if done_here <= 0:
            return None
        since = self._first_running if self._first_running is not None else self._started
        return (time.monotonic() - since) * (self.total - progress) / done_here

    def headline(self, trials: Sequence[Any]) -> str:
        finished, failed = self.done(trials)
        parts = [f"{finished}/{self.total} done" + (f" ({failed} failed)" if failed else "")]
        if self.best is not None:
            parts.append(f"best {figure(self.best[0])} ({self.best[1]})")
        parts.append(f"elapsed {duration(time.monotonic() - self._started)}")
        if finished < self.total:
            parts.append(f"ETA {duration(self.eta(trials))}")
        return "  ".join(parts)

    def running_line(self, trials: Sequence[Any]) -> str | None:
        """The running trials' in-epoch progress in one line (None when no source told any):
        ``running: trial 3 1/3 train 64%, trial 4 1/3 val 20%  ETA 2:13``."""
        parts = []
        for trial in trials:
            snap = self.snapshot(trial)
            if snap is not None:
                parts.append(f"{self.label(trial)} {_where(snap)}")
        if not parts:
            return None
        tail = f"  elapsed {duration(time.monotonic() - self._started)}  ETA {duration(self.eta(trials))}"
        head = "running: " + ", ".join(parts)
        if len(head) + len(tail) > WIDTH:
            head = head[:WIDTH - len(tail) - 3] + "..."
        return head + tail

    def line(self, trials: Sequence[Any], trial, status: str) -> str:
        """One finished trial: ``[ 3/16] trial 3  val 0.9123  3 ep  12.3s  best 0.9412``."""
        finished, _ = self.done(trials)
        width = len(str(self.total))
        counter, label = f"[{finished:>{width}}/{self.total}]", self.label(trial)
        head = f"{counter} {label}"
        if status == TrialStatus.ERROR:
            text = f"{head}  FAILED: {_error(trial)}"  # the whole reason is in trials.csv
            return text if len(text) <= WIDTH else text[:WIDTH - 3] + "..."
        result = trial.last_result or {}
        parts = [head]
        for key, name in self.metrics:
            value = finite(result.get(key))
            parts.append(f"{name} {figure(value)}" if value is not None else f"{name} -")
        if result.get("epoch") is not None:
            parts.append(f"{result['epoch']} ep")
        seconds = finite(result.get("train_time")) or finite(result.get("time_total_s"))
        if seconds is not None:
            parts.append(f"{seconds:.1f}s")
        if self.best is not None:
            parts.append(f"best {figure(self.best[0])}")
        if finished < self.total:
            parts.append(f"ETA {duration(self.eta(trials))}")
        text = "  ".join(parts)
        if len(text) > WIDTH:  # a long label (e.g. a transplant's) gives way, its end kept: "...d2@resnet20-seed0"
            room = max(8, len(label) - (len(text) - WIDTH))
            text = "  ".join([f"{counter} ...{label[-(room - 3):]}", *parts[1:]])
        return text

    def _render(self, trials: Sequence[Any]):
        running = [t for t in trials if t.status == "RUNNING" and t.trial_id not in self._reported]
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name, justify in (("trial", "left"), ("epoch", "right"), ("batches", "right"), ("accuracy", "right"),
                              ("elapsed", "right")):
            table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis", max_width=40)
        now = time.monotonic()
        for trial in running[:MAX_ROWS]:
            result = trial.last_result or {}
            epochs = _epochs(trial)
            epoch = result.get("epoch")
            snap = self.snapshot(trial)
            if snap is not None:  # the epoch under way, and where in it
                epoch = snap["epoch"]
            accuracy = finite(result.get(self.metrics[-1][0] if self.metrics else "val_accuracy"))
            table.add_row(self.label(trial), f"{epoch or 0}/{epochs}" if epochs else str(epoch or 0),
                          _batches(snap) if snap is not None else "-",
                          f"{figure(accuracy)}" if accuracy is not None else "-",
                          duration(now - self._seen.get(trial.trial_id, now)))
        parts = [Text(self.headline(trials))]
        if self._status is not None:
            parts.append(Text(self.status_line() or ""))
        if running:
            parts.append(table)
        if len(running) > MAX_ROWS:
            parts.append(Text(f"... and {len(running) - MAX_ROWS} more running"))
        waiting = sum(t.status == "PENDING" for t in trials)
        if waiting:
            parts.append(Text(f"{waiting} pending (starting, or waiting for resources)"))
        return Group(*parts)


def _batches(snap: dict[str, Any]) -> str:
    """``train 120/187`` or ``val 3/47``: the phase under way and its batches."""
    return f"{snap.get('phase')} {snap.get('done', 0)}/{snap.get('total', 0)}"


def _where(snap: dict[str, Any]) -> str:
    """``1/3 train 64%``: the epoch under way, its phase and how far the phase is."""
    total = snap.get("total") or 0
    share = f"{100 * (snap.get('done') or 0) / total:.0f}%" if total else "-"
    return f"{snap.get('epoch')}/{snap.get('epochs')} {snap.get('phase')} {share}"


class _Drawing:
    """The live view's renderable: drawn afresh at every refresh, so elapsed times tick between events."""

    def __init__(self, view: TrialsView):
        self.view = view

    def __rich__(self):
        return self.view._render(self.view._trials)


_ACTIVE: list[TrialsView] = []  # the views entered in this process, innermost last


def active_view() -> TrialsView | None:
    return _ACTIVE[-1] if _ACTIVE else None


def close_views() -> None:
    """End every view entered in this process (a live one gives the terminal back): for a process that ends
    without unwinding (`nas.engine.ray_watch`)."""
    for view in reversed(list(_ACTIVE)):
        view.__exit__(None, None, None)


def announce(text: str) -> None:
    """Tell the active view's user what is starting (nothing without an active view)."""
    view = active_view()
    if view is not None:
        view.announce(text)


def status(text: str | None, until_running: bool = False) -> None:
    """Set (None: clear) what the active view says the run is doing (`TrialsView.status`)."""
    view = active_view()
    if view is not None:
        view.status(text, until_running)


class ProgressCallback(Callback):
    """Ray Tune's events, forwarded to the `TrialsView` active in this process (none: ignored)."""

    def _update(self, trials) -> None:
        view = active_view()
        if view is not None:
            view.update(trials)

    def on_step_end(self, iteration, trials, **info) -> None:
        self._update(trials)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._update(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._update(trials)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        view = active_view()
        if view is not None:
            view.finished(trials, trial, TrialStatus.TERMINATED)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        view = active_view()
        if view is not None:
            view.finished(trials, trial, TrialStatus.ERROR)


def search_label(trial) -> str:
    """A search's trial by the order the strategy proposed it: ``trial 3``."""
    return f"trial {proposal_index(trial, -1) + 1}"

