"""Ctrl-C (SIGINT) and SIGTERM during a run: stop Ray Tune cleanly instead of dying mid-write.

    with Interrupts() as interrupts:
        ...                              # start-up: a signal raises `Interrupted` (nothing is running yet)
        with interrupts.tuning():
            tuner.fit()                  # a signal asks Ray Tune to stop: it snapshots the experiment and returns
        if interrupts.signal: ...        # record the unfinished trials as interrupted; exit 128 + signal

During `tuning`, the first signal is handed to Ray Tune's own stop handler (the one it installs for
SIGUSR1, which ends the run loop after one last experiment snapshot, so `Tuner.restore` continues it);
Tune's own SIGINT handler is kept out (``TUNE_DISABLE_SIGINT_HANDLER``) so that SIGINT and SIGTERM
take the same path, and its "Resume experiment with: Tuner.restore(...)" hint is filtered out: the
command prints its own resume command. A second signal raises `Interrupted` at once. Outside the
main thread (where Python cannot install signal handlers) nothing is changed, and a signal the
process ignores (``nohup``, a shell's background job) stays ignored.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)
TUNE_STOP_SIGNAL = signal.SIGUSR1  # Ray Tune's run loop stops on it (tune.run installs the handler)
TUNE_LOGGERS = ("ray.tune.tune", "ray.tune.execution.tune_controller")  # "interrupted ... Tuner.restore(...)"


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal before (or while) Ray Tune could stop it cleanly."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


# What the first signal prints at once: Ray Tune then snapshots the experiment and stops the running trials, which
# end between two batches (`nas.engine.stopping`); a trial that does not look for the stop flag (`nas train
# --seeds`, a proxy's or a table's scoring) answers at its next report, or Tune kills its worker after 5 + 10 s.
STOPPING = ("\n{} received: stopping the run. Running trials stop between two batches (at the latest after "
            "about 15 s, Ray Tune's limit); each resumes from its last checkpoint. A second signal quits at once.\n")


def _say(text: str) -> None:
    """Write to stderr from a signal handler: to the file descriptor, not through `sys.stderr`, whose buffer
    the interrupted code may be in the middle of writing (a reentrant write raises)."""
    try:
        os.write(2, text.encode())
    except OSError:
        pass


class _QuietWhenInterrupted(logging.Filter):
    def __init__(self, interrupts: "Interrupts"):
        super().__init__()
        self.interrupts = interrupts

    def filter(self, record: logging.LogRecord) -> bool:
        return self.interrupts.signal is None


class Interrupts:
    def __init__(self) -> None:
        self.signal: int | None = None
        self._tuning = False
        self._saved: dict[int, object] = {}
        self._filter = _QuietWhenInterrupted(self)

    # ----- the handler -----
    def _handle(self, signum: int, frame) -> None:
        first = self.signal is None
        if first:
            self.signal = signum
        stop_tune = signal.getsignal(TUNE_STOP_SIGNAL)
        if first and self._tuning and callable(stop_tune):
            stop_tune(signum, frame)  # Tune ends its loop after this step and snapshots the experiment
            _say(STOPPING.format(signal.Signals(signum).name))
            return
        raise Interrupted(signum)

    def stop_tuning(self) -> None:
        """End Ray Tune's loop as a first signal does (after one last experiment snapshot), without a signal:
        for a fault the run cannot go on with (the records cannot be written)."""
        stop_tune = signal.getsignal(TUNE_STOP_SIGNAL)
        if self._tuning and callable(stop_tune):
            stop_tune(TUNE_STOP_SIGNAL, None)

    def arm(self) -> None:
        """(Re)install the handlers; call again after anything that installs its own (`ray.init` sets one for SIGTERM)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            if self._saved.get(signum) is not signal.SIG_IGN:  # ignored on purpose (nohup, a background job): kept so
                signal.signal(signum, self._handle)

    @contextlib.contextmanager
    def tuning(self) -> Iterator[None]:
        """While Ray Tune runs: a first signal stops Tune's loop instead of raising."""
        if self.signal is not None:
            raise Interrupted(self.signal)
        self._tuning = True
        try:
            yield
        finally:
            self._tuning = False

    # ----- the context -----
    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._saved = {signum: signal.getsignal(signum) for signum in (*HANDLED, TUNE_STOP_SIGNAL)}
            self.arm()
        for name in TUNE_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for name in TUNE_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)
