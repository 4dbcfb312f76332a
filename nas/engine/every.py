"""`AtMostEvery`: the throttle of the run's calls to its small Ray actors (the board's reads and posts, the
trials' look for the stop flag), so that a batch loop or Tune's loop can ask on every turn."""
from __future__ import annotations

import math
import time
from collections.abc import Callable


class AtMostEvery:
    """`due()` is True at most once every `every_s` seconds of `clock`, the first time at once."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic):
        self.every_s, self.clock = every_s, clock
        self._last = -math.inf

    def due(self) -> bool:
        now = self.clock()
        if now - self._last < self.every_s:
            return False
        self._last = now
        return True
