"""The folder a run writes to (`nas search --out`, `nas compare --out`): claimed safely, one driver at a time.

    with own_folder(folder, "search.json", "search") as existing:
        ...  # existing: the folder already held a run of ours (search.json), else it is new or was empty

Rules (users never lose files):
- the folder is created with one atomic ``mkdir``; an existing folder is accepted only when it is empty
  or already holds a run of ours (its marker file, e.g. ``search.json``): a folder of the user's is refused;
- one driver per folder: an exclusive ``fcntl.flock`` on ``.nas.lock`` in the folder for as long as the run
  lasts. The operating system releases it when the process ends, however it ends, so a killed driver
  never leaves a stale lock. A second driver on the same folder is refused at once;
- every file error names the path in one line (`FolderError`).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from nas.errors import NasError

LOCK_FILE = ".nas.lock"


class FolderError(NasError):
    """A run folder cannot be used: not ours, in use, or not creatable."""


def describe_os_error(error: OSError, path: str | Path | None = None) -> str:
    """One line for an OSError: the path and the reason ("No space left on device", ...)."""
    where = path if path is not None else (error.filename or "")
    reason = error.strerror or str(error)
    return f"{where}: {reason}" if where else reason


def _blocking_file(path: Path) -> Path | None:
    """The first part of `path` (or one of its parents) that exists and is not a folder."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
    return None


def create(folder: Path) -> bool:
    """Create `folder` (and its parents) with one atomic mkdir; True if created here, False if it existed."""
    _refuse_a_file_in_the_way(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(folder)
        return True
    except FileExistsError:
        if not folder.is_dir():
            raise FolderError(f"{folder} is a file, not a folder") from None
        return False
    except OSError as error:
        raise FolderError(f"cannot create the folder {describe_os_error(error, folder)}") from None


def contents(folder: Path) -> list[str]:
    """The names in `folder`, our lock file left out."""
    return sorted(name for name in os.listdir(folder) if name != LOCK_FILE)


def claim(folder: Path, marker: str, what: str) -> bool:
    """Make `folder` a run folder of ours; True when it already holds a run (its `marker` file).
    A folder that exists, is not empty and holds no `marker` belongs to the user: refused."""
    if create(folder):
        return False
    if (folder / marker).is_file():
        return True
    _refuse_the_users_folder(folder, what)
    return False


def check_claimable(folder: Path, marker: str, what: str) -> None:
    """The refusals of `claim`, made without creating anything: for a command to call before slow work
    (loading or downloading data), so that a wrong --out is reported first. `claim` checks again."""
    _refuse_a_file_in_the_way(folder)
    if folder.is_dir() and not (folder / marker).is_file():
        _refuse_the_users_folder(folder, what)


def _refuse_a_file_in_the_way(folder: Path) -> None:
    blocking = _blocking_file(folder)
    if blocking is not None:
        where = "is a file" if blocking == folder else f"is under {blocking}, which is a file"
        raise FolderError(f"{folder} {where}, not a folder")


def _refuse_the_users_folder(folder: Path, what: str) -> None:
    """A folder that is not empty and holds no run of ours belongs to the user: refused, untouched."""
    names = contents(folder)
    if names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise FolderError(f"{folder} is not empty and holds no {what} ({shown}); choose a new or empty --out "
                          "folder (nothing there was changed)")


def check_not_in_use(folder: Path, what: str) -> None:
    """Refuse at once (before slow work such as loading the data) a folder whose lock another driver holds;
    creates nothing. `lock` checks again when the run takes the folder."""
    try:
        descriptor = os.open(folder / LOCK_FILE, os.O_RDWR)
    except OSError:
        return  # no lock file (or not ours to open): nothing holds the folder, or `lock` will say why
    try:
        _take(descriptor, folder, what)
    finally:
        os.close(descriptor)  # releases it again


def _take(descriptor: int, folder: Path, what: str) -> None:
    """Take the exclusive lock on the open lock file, or say who holds it."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        raise FolderError(f"{folder} is in use by another {what}" + (f" (process {holder})" if holder else "")
                          + "; wait for it to end or stop it first") from None


@contextlib.contextmanager
def lock(folder: Path, what: str) -> Iterator[None]:
    """Hold the folder's lock (exclusive, non-blocking) for the length of the block."""
    path = folder / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise FolderError(f"cannot write to the folder {describe_os_error(error, folder)}") from None
    try:
        _take(descriptor, folder, what)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock (the OS does the same when the process dies)


@contextlib.contextmanager
def own_folder(folder: Path, marker: str, what: str) -> Iterator[bool]:
    """`claim` the folder and hold its `lock`; yields whether it already held a run of ours (`marker`),
    checked again once the lock is held (another driver may have started a run there meanwhile)."""
    claim(folder, marker, what)
    with lock(folder, what):
        yield (folder / marker).is_file()


def check_output_file(path: Path, force: bool = False) -> None:
    """An output file a command is asked to write (``-o FILE``): refused in one line when it is a folder,
    when a file stands where a folder of its path should be, or when it exists (unless `force`)."""
    blocking = _blocking_file(path.parent) if path.parent != path else None
    if blocking is not None:
        raise FolderError(f"cannot write {path}: {blocking} is a file, not a folder")
    if path.is_dir():
        raise FolderError(f"cannot write {path}: it is a folder")
    if path.exists() and not force:
        raise FolderError(f"{path} exists; choose another file, or use --force to replace it")
