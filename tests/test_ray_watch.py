"""The watcher that ends a run whose signal stopped Ray's own processes too (`nas.engine.ray_watch`), on its own:
a listening socket stands for a live control store, a closed port for one that is gone."""
import signal
import socket
import threading
import time

import pytest

from nas.engine.interrupts import Interrupts
from nas.engine.ray_watch import RayWatch, lost_line, refuses_connections


@pytest.fixture
def live_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[:2]


@pytest.fixture
def dead_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = server.getsockname()[:2]
    return address  # closed: a connection is refused


class Ended(Exception):
    pass


def watch(address, on_lost, signum=signal.SIGTERM, grace_s=0.01):
    """A watcher of a run that has had `signum` (None: no signal), its exit recorded instead of taken."""
    interrupts = Interrupts()
    interrupts.signal = signum
    exits, exited = [], threading.Event()

    def exit(code):
        exits.append(code)
        exited.set()

    return RayWatch(interrupts, address, on_lost, exit=exit, poll_s=0.01, grace_s=grace_s), exits, exited


def test_a_port_that_listens_is_alive_and_a_closed_one_is_gone(live_port, dead_port):
    assert not refuses_connections(live_port)
    assert refuses_connections(dead_port)


def test_once_the_control_store_is_gone_the_records_are_written_the_command_said_and_the_process_ends(
        dead_port, capsys):
    written = []
    watcher, exits, exited = watch(dead_port, lambda: written.append("records") or "nas search --resume --out r")
    watcher.start()
    assert exited.wait(30)
    watcher.end()
    assert written == ["records"] and exits == [143]  # 128 + SIGTERM
    printed = capsys.readouterr()
    assert printed.out.splitlines() == ["nas search --resume --out r"]
    assert printed.err.strip() == lost_line(signal.SIGTERM, "nas search --resume --out r")
    assert "whole process group" in printed.err and printed.err.strip().endswith("to continue:")


def test_records_that_cannot_be_written_are_said_in_one_line_and_the_process_ends_all_the_same(dead_port, capsys):
    def fails():
        raise ValueError("No experiment snapshot file\nsecond line")

    watcher, exits, exited = watch(dead_port, fails, signum=signal.SIGINT)
    watcher.start()
    assert exited.wait(30)
    watcher.end()
    assert exits == [130]
    err = capsys.readouterr().err.splitlines()
    assert err == ["the run's records could not be written: No experiment snapshot file",
                   lost_line(signal.SIGINT, None)]
    assert err[1].endswith("the run ends now.")


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


def test_a_run_that_ends_by_itself_within_the_grace_is_left_alone(dead_port):
    interrupts, calls = Watched(signal.SIGTERM), []
    watcher = RayWatch(interrupts, dead_port, lambda: calls.append("records"), exit=calls.append, poll_s=0.01,
                       grace_s=600)
    watcher.start()
    wait_for_looks(interrupts, 1)  # it has seen the signal; the port refuses: it waits out its grace
    time.sleep(0.1)
    watcher.end()  # Tune's loop returned meanwhile
    assert calls == [] and interrupts.looks == 1


@pytest.mark.parametrize("signum", [None, signal.SIGTERM])
def test_nothing_happens_without_a_signal_or_while_the_control_store_listens(signum, live_port, dead_port):
    interrupts, calls = Watched(signum), []
    watcher = RayWatch(interrupts, dead_port if signum is None else live_port, lambda: calls.append("records"),
                       exit=calls.append, poll_s=0.01, grace_s=0.01)
    watcher.start()
    wait_for_looks(interrupts, 5)  # four rounds done, the port asked in each when there is a signal
    watcher.end()
    assert calls == []
