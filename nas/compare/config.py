"""`CompareConfig`: everything that defines a comparison (saved as compare.json).

Kept free of Ray and torch, so that the command line can show its defaults in `--help` at once;
`nas.compare.run` runs it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from nas.errors import NasError
from nas.train.settings import TrainSettings

DEFAULT_EPOCHS = 10
# one baseline per hand-designed family the search spaces draw from (see nas.compare.plan)
DEFAULT_BASELINES = ("resnet20", "densenet_40_12", "mobilenet_v2_cifar", "xception_cifar")


class PlanError(NasError):
    """A comparison cannot be planned (a run folder without a result, an unknown baseline, ...)."""


@dataclass
class CompareConfig:
    """Everything that defines a comparison (saved as compare.json)."""

    runs: list[str] = field(default_factory=list)  # search run folders
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))  # names or genome files
    skeletons: list[str] = field(default_factory=list)  # transplant each searched cell into these
    dataset: str | None = None  # None: the runs' data set (digits without runs)
    data_dir: str | None = None
    split_seed: int | None = None  # None: the runs' seed on their data set, else 0
    val_fraction: float | None = None  # None: the runs' share, else 0.1
    train_limit: int | None = None  # train every model on a stratified subset of this many images (None: all)
    val_limit: int | str | None = None  # validation images at most; "all"; None: as many as train_limit
    seeds: int = 3
    train: dict[str, Any] = field(default_factory=lambda: {"epochs": DEFAULT_EPOCHS})  # TrainSettings fields
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    tolerance: float = 0.05  # transplant parameter match
    latency_repeats: int = 50
    latency_threads: int = 1
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise PlanError(f"seeds must be a positive integer, got {self.seeds!r}")
        if not self.runs and not self.baselines:
            raise PlanError("nothing to compare: give search run folders and/or baselines")
        if "seed" in self.train:
            raise PlanError("the training seed is set per trial (seeds 0..K-1); leave it out of the recipe")
        if self.train_limit is not None and (not isinstance(self.train_limit, int) or isinstance(self.train_limit, bool)
                                             or self.train_limit < 1):
            raise PlanError(f"train_limit must be a positive integer, got {self.train_limit!r}")
        if self.val_limit is not None and self.val_limit != "all" and (
                isinstance(self.val_limit, bool) or not isinstance(self.val_limit, int) or self.val_limit < 1):
            raise PlanError(f"val_limit must be a positive integer or 'all', got {self.val_limit!r}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise PlanError("cpus per trial must be > 0 and GPUs per trial >= 0")
        if not 0 < self.tolerance < 1:
            raise PlanError(f"tolerance must be in (0, 1), got {self.tolerance}")
        self.recipe(0)  # validates the training settings

    def recipe(self, seed: int) -> TrainSettings:
        """The one training recipe, with `seed`; test accuracy is reported after the last epoch."""
        return TrainSettings.from_dict({**self.train, "seed": seed, "test_at_end": True})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
