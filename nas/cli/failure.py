"""What the command line says when it fails on something other than bad input (a fault of ours, or of a library).

One line on stderr naming what failed and where, and the path of a log file holding the whole traceback
(in the system's temporary folder, a file of its own: nothing of the user's is touched):

    nas search: internal error in write_trials (report.py:171): KeyError: 'index'; traceback: /tmp/nas-search-....log
"""
from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

EXIT_CODE = 70  # EX_SOFTWARE: an internal error, unlike bad input (2)


def write_log(command: str, argv: Sequence[str], error: BaseException) -> Path | None:
    """The traceback (and the command line) in a new file; None if it cannot be written."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        descriptor, path = tempfile.mkstemp(prefix=f"nas-{command}-{time.strftime('%Y%m%d-%H%M%S')}-",
                                            suffix=".log")
        with os.fdopen(descriptor, "w") as file:
            file.write(f"nas {' '.join(argv)}\n\n{text}")
        return Path(path)
    except OSError:
        return None


def where(error: BaseException) -> str:
    """The innermost frame the error passed through, ``function (file.py:line)``; "" without a traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f"{frame.name} ({Path(frame.filename).name}:{frame.lineno})"


def internal_error_line(command: str, argv: Sequence[str], error: BaseException) -> str:
    """One line for an unexpected exception, after writing its traceback to a log file."""
    log = write_log(command, argv, error)
    message = " ".join(str(error).split())
    if len(message) > 160:
        message = message[:157] + "..."
    place = where(error)
    reason = f"{type(error).__name__}: {message}" if message else type(error).__name__
    line = f"nas {command}: internal error" + (f" in {place}" if place else "") + f": {reason}"
    return line + (f"; traceback: {log}" if log else "; (the traceback could not be written to a log file)")
