"""Ray's, Optuna's and matplotlib's own output kept from the user unless asked for (``--verbose``).

    with libraries_quiet(not verbose):
        ray.init(**ray_init_options())    # Ray's start-up lines at ERROR level only
        tuner.fit()

Quiet means: the loggers of Ray (``ray``, ``ray.tune``, ...), Optuna, matplotlib and tensorboardX at
ERROR, Optuna's own verbosity too; warnings raised from those libraries (and deprecation
notices) ignored. Ray Tune's progress reporter is off anyway (``RunConfig(verbose=0)``,
``RAY_AIR_NEW_OUTPUT=0``) and trial processes do not print to the driver (``log_to_driver=False``).
Everything is put back as it was on leaving.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air", "ray.data", "matplotlib", "tensorboardX", "filelock")
# Ray's messages that repeat what the run's own output says: the failed trials (the live lines and the
# summary name them, with their reasons)
REPEATED = {"ray.tune.tune": ("Trials did not complete",)}
RAY_ERROR_LISTENER = "ray_listen_error_messages"  # the driver thread that prints "(raylet) A worker died ..."
QUIET_MODULES = r"(ray|optuna|matplotlib|tensorboardX|pyarrow)(\.|$)"
_STATE = {"quiet": False}


def ray_init_options() -> dict[str, Any]:
    """Keyword arguments for `ray.init` under the current setting (Ray resets its logger's level there)."""
    return {"logging_level": logging.ERROR} if _STATE["quiet"] else {}


@contextlib.contextmanager
def libraries_quiet(quiet: bool = True) -> Iterator[None]:
    """Within: the libraries' logs and warnings hidden when `quiet` (else left as they are)."""
    if not quiet:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    previous = _STATE["quiet"]
    optuna_level = _set_optuna_verbosity()
    _STATE["quiet"] = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=QUIET_MODULES)
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category)
            for name in LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            with _without_repeats():
                yield
    finally:
        _STATE["quiet"] = previous
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        _set_optuna_verbosity(optuna_level)


def _set_optuna_verbosity(level: int | None = None) -> int | None:
    """Set Optuna's verbosity (ERROR by default) if Optuna is importable; return the previous one."""
    try:
        import optuna  # optional, and a second to import: only when a run quiets the libraries
    except ImportError:
        return None
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR if level is None else level)
    return previous


class _DropRepeats(logging.Filter):
    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


@contextlib.contextmanager
def _without_repeats() -> Iterator[None]:
    filters = {name: _DropRepeats(starts) for name, starts in REPEATED.items()}
    for name, dropped in filters.items():
        logging.getLogger(name).addFilter(dropped)
    try:
        yield
    finally:
        for name, dropped in filters.items():
            logging.getLogger(name).removeFilter(dropped)


class _MutedThread:
    """A text stream that drops what one thread writes and passes on the rest."""

    def __init__(self, stream, thread_name: str):
        self._stream, self._thread_name = stream, thread_name

    def write(self, text: str) -> int:
        if threading.current_thread().name == self._thread_name:
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def ray_listener_muted(quiet: bool = True) -> Iterator[None]:
    """Within (when `quiet`): what Ray's error listener prints to the driver's stdout and stderr ("(raylet)
    A worker died or was killed ...", many lines per death) is dropped; the trial's failure and its reason
    are recorded and shown by the run itself. Enter it inside any display that redirects stdout (rich's
    Live), so that the listener's writes meet it first."""
    if not quiet:
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _MutedThread(sys.stdout, RAY_ERROR_LISTENER), _MutedThread(sys.stderr, RAY_ERROR_LISTENER)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
