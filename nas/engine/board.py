"""In-epoch progress of a search's trials, from the trials to the driver's live view.

Ray Tune hears from a trial once per epoch (`tune.report` in `nas.train.trainable`); a search whose
trials train one long epoch would show nothing until it ends. Each trial therefore also posts its
`nas.train.pace.TrainingPace` snapshot (epoch, phase, batches done of the total, share of its work
done, its own ETA) to a board the driver reads:

    with progress_board(view) as board:           # driver: a Ray actor; the view polls it
        trainable = tune_trainable(data, resources, board=board)
    hook = trial_progress(board, settings, ...)   # trial: its on_batch hook posts to the board

Why a Ray actor: it works wherever the trials run (every node of a cluster reaches it by name, unlike
a file path that only a shared disk would make common), and it is owned by the driver, so it ends
with the driver (finished, interrupted or killed) and nothing is left behind; the driver also kills it
when the run ends. It holds one small record per trial (the latest: nothing queues up) and takes no
CPU from the trials (num_cpus=0). Why not more `tune.report` calls: every report is a training
iteration to Tune, a row in the trials' result logs and a point ASHA may stop a trial at; the
per-epoch records, trials.csv and the resume tests rely on one report per epoch.

Cheap: a trial posts at most once every `POST_EVERY_S` (fire and forget: it never waits for the board)
and the driver reads at most once every `POLL_EVERY_S`, never blocking Tune's loop (it collects the
answer of the previous read when it is there). Robust: a trial that cannot find or reach the board
stops posting and trains on; a dead trial's stale record is ignored (the view shows running trials
only, and only records newer than the trial's last epoch report); a resumed run makes a new board,
and its trials post to that one; a board that cannot be made leaves the search as it was (per epoch).

The board's name is the run's name for its trials: the run's stop flag, which ends them at once when the
run is interrupted, is named after it (`nas.engine.stopping`); a quiet run has the name without a board.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import ray
from ray import tune

from nas.engine.every import AtMostEvery
from nas.engine.light_actors import Board
from nas.engine.stopping import StopCheck, flag_name
from nas.train.pace import TrainingPace

POST_EVERY_S = 1.0  # a trial posts at most this often
POLL_EVERY_S = 1.0  # the driver reads at most this often


class BoardReader:
    """The driver's side: `poll()` never blocks; it returns the snapshots when a read has come back
    (else None) and starts the next read at most every `every_s`. Any failure turns it off."""

    def __init__(self, actor, every_s: float = POLL_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.actor = actor
        self.reads = AtMostEvery(every_s, clock)
        self._pending = None
        self.off = False

    def poll(self) -> dict[str, dict[str, Any]] | None:
        if self.off:
            return None
        try:
            if self._pending is not None:
                ready, _ = ray.wait([self._pending], timeout=0)
                if not ready:
                    return None
                pending, self._pending = self._pending, None
                return ray.get(pending)
            if self.reads.due():
                self._pending = self.actor.read.remote()
        except Exception:  # noqa: BLE001 - the board gone: the view goes on per epoch
            self.off = True
        return None

    def close(self, timeout_s: float = 2.0) -> None:
        """Collect a read still under way (so that no answer is left unread when the board goes)."""
        pending, self._pending, self.off = self._pending, None, True
        if pending is not None:
            with contextlib.suppress(Exception):
                ray.get(pending, timeout=timeout_s)


@contextlib.contextmanager
def progress_board(view) -> Iterator[str]:
    """A board for one run (Ray connected): its name yielded for the trials; with `view` (a
    `nas.engine.progress.TrialsView`) enabled, the board itself, attached to the view and killed at the end.
    The name is the run's in any case: the run's stop flag is named after it (`nas.engine.stopping`), and a
    trial that finds no board there (a quiet run, or one the board could not be made for) posts nothing."""
    name = f"nas-progress-{uuid.uuid4().hex[:12]}"
    actor = None
    if view is not None and view.enabled:
        try:
            actor = ray.remote(num_cpus=0, max_restarts=0)(Board).options(name=name).remote()
        except Exception:  # noqa: BLE001 - no in-epoch progress, the search runs as before
            actor = None
    if actor is None:
        yield name
        return
    reader = BoardReader(actor)
    view.attach(reader)
    try:
        yield name
    finally:
        view.attach(None)
        reader.close()
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)


class TrialReporter:
    """A trial's side: `post(pace)` sends the pace's snapshot to the board `name` under `key` (the
    trial's id) at most every `every_s` (the first at once); never raises, never waits."""

    def __init__(self, name: str | None, key: str | None, every_s: float = POST_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.key = name, key
        self.posts = AtMostEvery(every_s, clock)
        self._actor = None
        self.off = name is None or key is None

    def post(self, pace: TrainingPace) -> None:
        if self.off or not self.posts.due():
            return
        try:
            if self._actor is None:
                self._actor = ray.get_actor(self.name)
            self._actor.post.remote(self.key, pace.snapshot())
        except Exception:  # noqa: BLE001 - no board (gone, unreachable): train on, per epoch only
            self.off = True


def trial_id() -> str | None:
    """The id of the Tune trial running here (None outside one)."""
    try:
        return tune.get_context().get_trial_id()
    except Exception:  # noqa: BLE001
        return None


def trial_progress(board: str | None, settings, train_size: int, val_size: int,
                   done_epochs: int = 0) -> Callable[..., None] | None:
    """A trial's batch hook ``(phase, epoch, done, total, loss)`` (see `nas.train.loop.tagged`) that keeps
    a pace and posts it to `board` (when the board is there), and ends the trial (`TrialStopped`) once the
    run's stop flag is raised (`nas.engine.stopping`); None without a board name (then the loop runs
    without a hook)."""
    if board is None:
        return None
    pace = TrainingPace.for_run(settings, train_size, val_size, done_epochs=done_epochs)
    reporter = TrialReporter(board, trial_id())
    stop = StopCheck(flag_name(board))

    def on_batch(phase: str, epoch: int, done: int, total: int, loss) -> None:
        stop()
        if reporter.off:
            return
        if epoch != pace.epoch:
            if pace.epoch > pace.completed:
                pace.end_epoch()
            pace.start_epoch(epoch)
        pace.batch(phase, done, total)
        reporter.post(pace)

    return on_batch
