"""A trial's result reported with its checkpoint, written through a scratch folder that does not outlive its
process.

`tune.report` copies the checkpoint's folder to the run's storage, then waits inside the call until Tune asks
for the next result. A trial that Tune stops there, or whose worker is killed, never returns from that wait,
so a temporary folder opened around the call would stay behind in the temp folder, one per stopped trial.
Instead each process keeps one scratch folder, ``nas-checkpoint-<host>-<pid>-<random>``, emptied before every
checkpoint is written and after it is reported; a process removes it when it exits, and the folders that
processes of the same host left when they were killed are removed when a process makes its own.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable

from ray import tune

PREFIX = "nas-checkpoint-"
_NAME = re.compile(re.escape(PREFIX) + r"(?P<host>[^-]+)-(?P<pid>\d+)-[^-]+")
_made: dict[int, Path] = {}  # process id -> its scratch folder (a forked child makes its own)


def host_tag() -> str:
    """This host's name as it appears in scratch folder names (no dashes, which separate the parts)."""
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_left_behind(root: Path) -> list[Path]:
    """Remove the scratch folders under `root` whose process, on this host, no longer runs; the removed ones."""
    removed = []
    for folder in root.glob(PREFIX + "*"):
        match = _NAME.fullmatch(folder.name)
        if match and match["host"] == host_tag() and not is_running(int(match["pid"])) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def scratch_folder() -> Path:
    """This process's scratch folder (made on first use, after clearing away those of processes that died)."""
    pid = os.getpid()
    folder = _made.get(pid)
    if folder is None or not folder.is_dir():
        root = Path(tempfile.gettempdir())
        remove_left_behind(root)
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{host_tag()}-{pid}-", dir=root))
        _made[pid] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def report_with_checkpoint(metrics: dict[str, Any], write: Callable[[Path], Any]) -> None:
    """`write(folder)` writes the checkpoint's files into an empty folder; they are reported with `metrics`."""
    folder = scratch_folder()
    empty(folder)
    write(folder)
    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
    empty(folder)  # copied to the run's storage by now
