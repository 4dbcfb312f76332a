"""The classes of a run's small Ray actors: the progress board (`nas.engine.board`) and the stop flag
(`nas.engine.stopping`).

In a module of their own that imports nothing but the standard library: an actor's worker process imports
the module that defines its class, and `nas.engine.board` imports Ray Tune (with pandas) and torch's
training code, about a second and a half of CPU in every run's board process for a dict.
"""
from __future__ import annotations

from typing import Any


class Board:
    """The latest snapshot of each trial (trial id -> plain dict); run as a Ray actor."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}

    def post(self, key: str, snapshot: dict[str, Any]) -> None:
        self.snapshots[key] = snapshot

    def read(self) -> dict[str, dict[str, Any]]:
        return dict(self.snapshots)


class StopFlag:
    """Nothing but a name: the actor exists once a run is interrupted, and its trials look it up."""
