"""The progress board's store: the class the board's Ray actor runs (see `nas.engine.board`).

In a module of its own that imports nothing but the standard library: the actor's worker process imports
the module that defines the class, and `nas.engine.board` imports Ray Tune (with pandas) and torch's
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
