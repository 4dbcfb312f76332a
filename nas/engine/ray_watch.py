"""A run whose signal stopped its Ray too: it ends at once, its records written, instead of hanging on Ray.

A signal sent to the whole process group (`timeout`, `kill -TERM -PGID`, a batch scheduler or a service
manager stopping a job) reaches the Ray that a run started for itself as well as the run: its control store
(GCS) and raylet end with it, while the run asks Ray Tune to stop cleanly (`nas.engine.interrupts`). Tune
then writes its last experiment snapshot and waits on the control store to release the trials' resources;
it waits 60 s before Ray's core worker ends the whole process (exit code 1, a line from Ray's C++ code).
(Ctrl-C does not do this: Ray's processes ignore SIGINT.)

So while Ray Tune runs (`nas.engine.experiment.fit`) on a Ray that the run started itself
(`nas.engine.session.ray_started_here`), once the run has a signal, a watcher thread asks the control store's
port whether it still takes connections. If it refuses them, and still does after `GRACE_S` in which Tune has
not ended, the watcher ends the run as the process would have ended anyway, only sooner and in order: every
live view is closed, the caller's `on_lost` writes the run's records from Tune's last snapshot (the unfinished
trials INTERRUPTED), and the command that continues the run is printed; the process then exits
at once with the signal's code (128 + signal), whatever fails on the way (a closed pipe to print to). The main
thread cannot be woken from Ray's call, so the process ends with `os._exit`; the run folder's lock goes with
it, and its files are written atomically, as after a kill. A cluster joined with ``--address`` (or a Ray
started before the run) is not watched: its control store is not the run's to lose.

Not covered: Ray's core worker in this process may end it first, when it finds the object store of the
ended raylet gone while it tries to recover the run's objects (exit code 1; "The connection to the plasma store
is failed. Terminate the process." in Ray's driver log). Measured here with SIGTERM to the group of a running
`nas search` (14 runs) and `nas compare` (19 runs) on digits: every search ended through this watcher, while
6 of the 19 comparisons were ended by Ray's core worker first, within 0.15 s. The run folder is then as after
a kill, which the next command (`--resume`, or a comparison's same command) continues all the same.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

import ray

from nas.engine.interrupts import Interrupts, exit_code
from nas.engine.progress import close_views
from nas.engine.session import ray_started_here

POLL_S = 0.25  # how often the watcher looks, once the run has a signal
GRACE_S = 2.0  # how long Tune may still take to end by itself once the control store is gone
CONNECT_TIMEOUT_S = 1.0


def control_store_address() -> tuple[str, int] | None:
    """The (host, port) of the control store of the Ray this process is connected to; None if unknown."""
    try:
        host, port = ray.get_runtime_context().gcs_address.rsplit(":", 1)
        return host.strip("[]"), int(port)
    except Exception:  # noqa: BLE001 - no address, no watcher: the run stops as Tune stops it
        return None


def refuses_connections(address: tuple[str, int]) -> bool:
    """True when nothing listens at `address` any more (a refused connection); a timeout is not an answer."""
    try:
        with socket.create_connection(address, timeout=CONNECT_TIMEOUT_S):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def lost_line(signum: int, resume: str | None) -> str:
    """What the run says on stderr as it ends without Ray (`resume`: the command that continues it, printed next)."""
    head = (f"{signal.Signals(signum).name} ended Ray's own processes too (a signal to the whole process group?), "
            "so the trials cannot be stopped through Ray: the run ends now, as Ray Tune last saved it")
    return f"{head}; to continue:" if resume else f"{head}."


def first_line(error: BaseException) -> str:
    """An error's message in one line (its first), or its type's name when it has none."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class RayWatch:
    """The watcher of one `tuner.fit()` (see the module). `on_lost()` writes the run's records; `resume` is the
    command that continues the run (None: none); `exit` ends the process (a test passes its own)."""

    def __init__(self, interrupts: Interrupts, address: tuple[str, int], on_lost: Callable[[], None],
                 resume: str | None = None, exit: Callable[[int], None] = os._exit, poll_s: float = POLL_S,
                 grace_s: float = GRACE_S):
        self.interrupts, self.address, self.on_lost, self.resume, self.exit = interrupts, address, on_lost, resume, exit
        self.poll_s, self.grace_s = poll_s, grace_s
        self._ended = threading.Event()  # Tune's loop returned (or raised)
        self._claim = threading.Lock()  # held by whichever ends the run: the watcher, or `end` on the main thread
        self._thread = threading.Thread(target=self._watch, name="nas-ray-watch", daemon=True)

    def start(self) -> "RayWatch":
        """Watch from now on, in a thread of its own."""
        self._thread.start()
        return self

    def end(self) -> None:
        """Tune's loop is over: the watcher stops, or, if it has already taken the run over, this waits for it
        (through a second signal too: the process is ending already)."""
        self._ended.set()
        while True:
            try:
                self._claim.acquire()  # blocks only while the watcher holds it, ending the process
            except KeyboardInterrupt:
                continue
            self._claim.release()
            break
        self._thread.join()

    def _watch(self) -> None:
        """Look every `poll_s` until Tune's loop ends; end the run once its control store is gone for good."""
        while not self._ended.wait(self.poll_s):
            if self.interrupts.signal is None or not refuses_connections(self.address):
                continue
            if self._ended.wait(self.grace_s) or not refuses_connections(self.address):
                continue  # Tune ended by itself after all (the loop stops), or the store answers again
            if not self._claim.acquire(blocking=False):
                return
            if self._ended.is_set():  # Tune ended just now: `end` sets it before it takes the claim
                self._claim.release()
                return
            try:
                self._end_run(self.interrupts.signal)
            finally:
                self._claim.release()  # only reached when `exit` returns (a test's)
            return

    def _end_run(self, signum: int) -> None:
        """Close the views, write the records, say why and how to go on, and end the process, whatever fails."""
        try:
            with contextlib.suppress(BaseException):  # a view that cannot be closed must not keep the process
                close_views()
            try:
                self.on_lost()
            except Exception as error:  # noqa: BLE001 - the records could not be written: say so, end all the same
                with contextlib.suppress(BaseException):
                    print(f"the run's records could not be written: {first_line(error)}", file=sys.stderr)
            with contextlib.suppress(BaseException):  # a closed pipe (a `| tee` ended by the same signal)
                print(lost_line(signum, self.resume), file=sys.stderr, flush=True)
                if self.resume:
                    print(self.resume, flush=True)
        finally:
            self.exit(exit_code(signum))


def no_records() -> None:
    """A run with no records of its own to write (`nas train --seeds`)."""


@contextlib.contextmanager
def ending_without_ray(interrupts: Interrupts, on_lost: Callable[[], None] = no_records,
                       resume: str | None = None) -> Iterator[None]:
    """While Ray Tune runs: `RayWatch` over the Ray this process started for the run (nothing on a cluster
    joined, on a Ray started before the run, or if the control store's address is unknown)."""
    address = control_store_address() if ray_started_here() else None
    if address is None:
        yield
        return
    watch = RayWatch(interrupts, address, on_lost, resume).start()
    try:
        yield
    finally:
        watch.end()
