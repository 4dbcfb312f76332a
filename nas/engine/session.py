"""Ray Tune ready for a run: Tune's environment knobs, and Ray started (or a cluster joined) for its length.

    with tune_session(address):     # address None: a Ray of our own, stopped at the end
        tuner.fit()
"""
from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import ray

from nas.engine.interrupts import Interrupted
from nas.engine.progress import status
from nas.engine.verbosity import ray_init_options

# Ray Tune knobs (environment; a value already set wins). Snapshots of the experiment state are
# forced at every trial checkpoint (CheckpointConfig.num_to_keep), so the warning about frequent
# snapshots is noise here; Tune's automatic loggers are replaced by the explicit ones of
# `nas.engine.loggers` (JSON, CSV, TensorBoard); trials need not chdir into a per-trial working directory.
TUNE_ENVIRONMENT = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # SIGINT and SIGTERM both go through nas.engine.interrupts
}


@contextlib.contextmanager
def tune_environment() -> Iterator[None]:
    """`TUNE_ENVIRONMENT` set (where not set already) for the length of a run, then put back as it was,
    so that a run leaves the process (a notebook, a test session) as it found it."""
    added = [name for name in TUNE_ENVIRONMENT if name not in os.environ]
    os.environ.update({name: TUNE_ENVIRONMENT[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def ray_address(address: str | None) -> str | None:
    """The cluster to connect to: `address` (--address), else Ray's own RAY_ADDRESS variable; None: start a
    Ray of our own (never join a cluster merely because `ray start` left its address in Ray's temp folder)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def ensure_ray(address: str | None) -> bool:
    """Connect to `address` (a cluster), or start a local Ray with this machine's CPUs; True if started here."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, **ray_init_options())
    else:  # "local": a new instance, whatever other Ray clusters run on this machine
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 **ray_init_options())
    return True


_STARTED_HERE = {"now": False}  # the Ray this process is connected to was started by `tune_session`


def ray_started_here() -> bool:
    """True while a `tune_session` runs on a Ray that it started itself (not a cluster joined, nor a Ray started
    before it, as a test session's)."""
    return _STARTED_HERE["now"]


@contextlib.contextmanager
def tune_session(address: str | None) -> Iterator[None]:
    """Ray Tune ready for a run: `tune_environment`, and Ray connected to `address` (or started
    locally, `ensure_ray`); a Ray started here is shut down at the end."""
    address = ray_address(address)
    with tune_environment():
        status(f"starting Ray ({'connecting to ' + address if address else 'local'})")
        try:
            started_here = ensure_ray(address)
        except SystemExit as stop:  # a signal met the handler ray.init installs while it starts: sys.exit(signum)
            if stop.code not in (signal.SIGTERM, signal.SIGINT):
                raise
            if ray.is_initialized():
                ray.shutdown()
            raise Interrupted(int(stop.code)) from None
        status("waiting for the first trial to start", until_running=True)
        _STARTED_HERE["now"] = started_here
        try:
            yield
        finally:
            _STARTED_HERE["now"] = False
            if started_here:
                status("stopping Ray")
                ray.shutdown()
            status(None)
