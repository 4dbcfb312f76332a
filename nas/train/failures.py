"""Why a trial failed, in one line.

A trial fails alone: its exception ends that trial (Ray Tune marks it ERROR) and the search goes on.
`TrialFailure` is what the trainable raises for the failures it detects itself (a loss that is no
longer finite, running out of memory, a genome over the size caps); `failure_reason` turns whatever
a trial raised into one line for the run folder.
"""
from __future__ import annotations

from nas.errors import NasError


class TrialFailure(NasError, RuntimeError):
    """A trial cannot go on; the message is the reason recorded for it."""


OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or any(marker in text for marker in OUT_OF_MEMORY)


def _root_cause(error: BaseException) -> BaseException:
    """The user exception inside Ray's wrappers (RayTaskError keeps it as `cause`)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        cause = getattr(error, "cause", None) or error.__cause__
        if not isinstance(cause, BaseException):
            break
        error = cause
    return error


def failure_reason(error: BaseException | str | None) -> str:
    """One line: ``TypeName: message`` (the message alone for a TrialFailure)."""
    if error is None:
        return ""
    if isinstance(error, str):
        lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""
    cause = _root_cause(error)
    message = " ".join(str(cause).split())
    if isinstance(cause, TrialFailure):
        return message
    text = str(cause).strip().splitlines()
    if type(cause).__name__.startswith("Ray") and text:  # a wrapper whose cause did not survive: its last line
        return failure_reason(str(cause))
    return f"{type(cause).__name__}: {message}" if message else type(cause).__name__
