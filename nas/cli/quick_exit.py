"""The `nas` program's exit without the interpreter's teardown of every module.

When the program is done, Python normally finishes its other threads, runs the `atexit` callbacks, and
then takes apart every module and object it loaded; with torch and Ray loaded that last part alone costs
about 0.7-0.9 s of CPU (measured on a 2-core machine), paid after the last line of output. Here the
first two happen as usual; then stdout and stderr are flushed and the process ends at once
(`os._exit`) with the command's exit code. The callback is registered before the command runs, so it
runs after every callback registered later (torch's, Ray's); logging's, registered when it was
imported, is called by it (`logging.shutdown`: every handler flushed and closed). A command that ends by
an exception (argparse's --help, a traceback) exits the normal way.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Callable, Sequence

_code: list[int] = []  # the command's exit code, once it has returned


def _leave() -> None:
    if not _code:
        return
    logging.shutdown()  # its own atexit callback was registered before ours (at its import), so it would not run
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone away, a closed stream: nothing more can be said
            pass
    os._exit(_code[0])


def run_then_exit_quickly(command: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """`command(argv)`'s exit code; the process will end right after the `atexit` callbacks (see above)."""
    atexit.register(_leave)
    code = int(command(argv))
    _code.append(code)
    return code
