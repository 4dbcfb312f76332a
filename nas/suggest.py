"""A "did you mean" for a mistyped name (a strategy, data set, space, op, template, baseline, ...)."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``"; did you mean 'evolution'?"`` for the known names closest to `name` (the standard library's
    difflib), or "" when none is close."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=2, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
