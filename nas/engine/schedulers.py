"""Ray Tune trial schedulers a search can use (`nas search --scheduler NAME`), by name.

    SCHEDULERS                    # the names, known without importing Ray (for --help and SearchConfig)
    make_scheduler("asha", epochs=12)   # the Ray Tune scheduler object

- ``asha``: asynchronous successive halving (Li et al. 2020) over training epochs: rungs at 1, 2, 4, ...
  epochs up to the recipe's, the best half of the trials at a rung go on (`AsyncHyperBandScheduler`).
"""
from __future__ import annotations

from typing import Any

SCHEDULERS = ("asha",)


def make_scheduler(name: str, *, epochs: int) -> Any:
    """The Ray Tune scheduler `name` for trials of `epochs` epochs."""
    if name == "asha":
        from ray.tune.schedulers import AsyncHyperBandScheduler  # deferred: Ray (the names above are Ray-free)

        return AsyncHyperBandScheduler(time_attr="epoch", max_t=epochs, grace_period=1, reduction_factor=2)
    raise ValueError(f"unknown scheduler {name!r} (known: {', '.join(SCHEDULERS)})")
