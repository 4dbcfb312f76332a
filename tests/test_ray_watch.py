"""The watcher that ends a run whose signal ended Ray's own processes too (`nas.engine.ray_watch`), on its own:
a listening socket stands for a live control store, a socket bound but not listening for one that is gone."""
import io
import signal
import socket
import threading
import time

import pytest

from nas.engine.interrupts import Interrupts
from nas.engine.ray_watch import RayWatch, lost_line, refuses_connections

RESUME = "nas search --resume --out r"


@pytest.fixture
def live_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[:2]


@pytest.fixture
def dead_port():
    """A port that refuses connections for the whole test: bound (no one else can take it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[:2]


class Watched(Interrupts):
    """A run's interrupts whose signal is fixed, counting how often the watcher has looked at it."""

    def __init__(self, signum):
        self.signum, self.looks = signum, 0
        super().__init__()

    @property
    def signal(self):
        self.looks += 1
        return self.signum

    @signal.setter
    def signal(self, value):
        pass


def wait_for_looks(interrupts, count):
    deadline = time.monotonic() + 30
    while interrupts.looks < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert interrupts.looks >= count


def watch(address, on_lost, signum=signal.SIGTERM, resume=RESUME, grace_s=0.01):
    """A watcher of a run that has had `signum`, its exit recorded instead of taken."""
    exits, exited = [], threading.Event()

    def exit(code):
        exits.append(code)
        exited.set()

    watcher = RayWatch(Watched(signum), address, on_lost, resume, exit=exit, poll_s=0.01, grace_s=grace_s)
    return watcher, exits, exited


def test_a_port_that_listens_is_alive_and_a_bound_one_that_does_not_is_gone(live_port, dead_port):
    assert not refuses_connections(live_port)
    assert refuses_connections(dead_port)


def test_once_the_control_store_is_gone_the_records_are_written_the_command_said_and_the_process_ends(
        dead_port, capsys):
    written = []
    watcher, exits, exited = watch(dead_port, lambda: written.append("records"))
    watcher.start()
    assert exited.wait(30)
    watcher.end()
    assert written == ["records"] and exits == [143]  # 128 + SIGTERM
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [RESUME]
    assert printed.err.strip() == lost_line(signal.SIGTERM, RESUME)
    assert "SIGTERM ended Ray's own processes too" in printed.err and printed.err.strip().endswith("to continue:")


def test_records_that_cannot_be_written_are_said_in_one_line_and_the_process_ends_all_the_same(dead_port, capsys):
    def fails():
        raise ValueError("No experiment snapshot file\nsecond line")

    watcher, exits, exited = watch(dead_port, fails, signum=signal.SIGINT, resume=None)
    watcher.start()
    assert exited.wait(30)
    watcher.end()
    assert exits == [130]
    err = capsys.readouterr().err.splitlines()
    assert err == ["the run's records could not be written: No experiment snapshot file",
                   lost_line(signal.SIGINT, None)]
    assert err[1].endswith("as Ray Tune last saved it.")


def test_a_closed_pipe_to_print_to_does_not_keep_the_process(dead_port, monkeypatch):
    """The reader of the run's output (`| tee`) ended with the same signal: printing fails, the exit comes."""

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    monkeypatch.setattr("sys.stderr", ClosedPipe())
    written = []
    watcher, exits, exited = watch(dead_port, lambda: written.append("records"))
    watcher.start()
    assert exited.wait(30)
    watcher.end()
    assert written == ["records"] and exits == [143]


def test_the_main_thread_waits_while_the_watcher_ends_the_run(dead_port):
    """Tune's loop returning while the watcher writes the records: `end` waits for the watcher (which ends the
    process), instead of going on beside it."""
    writing, release, order = threading.Event(), threading.Event(), []

    def on_lost():
        writing.set()
        release.wait(30)
        order.append("records")

    watcher, exits, exited = watch(dead_port, on_lost)
    watcher.start()
    assert writing.wait(30)
    ending = threading.Thread(target=lambda: (watcher.end(), order.append("end returned")))
    ending.start()
    ending.join(0.2)
    assert ending.is_alive() and order == []  # waiting for the watcher
    release.set()
    ending.join(30)
    assert order == ["records", "end returned"] and exits == [143]


def test_a_run_that_ends_by_itself_within_the_grace_is_left_alone(dead_port):
    calls = []
    watcher, exits, _ = watch(dead_port, lambda: calls.append("records"), grace_s=600)
    watcher.start()
    wait_for_looks(watcher.interrupts, 1)  # it has seen the signal; the port refuses: it waits out its grace
    time.sleep(0.1)
    watcher.end()  # Tune's loop returned meanwhile
    assert calls == [] and exits == [] and watcher.interrupts.looks == 1


@pytest.mark.parametrize("signum", [None, signal.SIGTERM])
def test_nothing_happens_without_a_signal_or_while_the_control_store_listens(signum, live_port, dead_port):
    calls = []
    watcher, exits, _ = watch(dead_port if signum is None else live_port, lambda: calls.append("records"),
                              signum=signum)
    watcher.start()
    wait_for_looks(watcher.interrupts, 5)  # four rounds done, the port asked in each when there is a signal
    watcher.end()
    assert calls == [] and exits == []
