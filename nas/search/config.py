"""`SearchConfig`: everything that defines a search (saved as search.json in the run folder).

Kept free of Ray and torch, so that the command line can show its defaults in `--help` at once;
`nas.search.run` runs it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from nas.engine.records import CONFIG_JSON
from nas.engine.schedulers import SCHEDULERS
from nas.errors import NasError
from nas.evaluate.spec import parse_evaluator
from nas.plugins import check_installed
from nas.search.strategies import STRATEGIES
from nas.train.settings import TrainSettings
from nas.suggest import did_you_mean


class SearchError(NasError):
    """A search cannot start or resume (bad options, an existing run folder, a missing one)."""


@dataclass
class SearchConfig:
    """Everything that defines a search (saved as search.json in the run folder)."""

    strategy: str
    space: str = "macro"
    dataset: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.1
    train_limit: int | None = None
    val_limit: int | str | None = None  # validation images at most; "all"; None: as many as train_limit
    trials: int = 16
    concurrent: int | None = None  # None: as many as the resources allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    scheduler: str | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # strategy options
    train: dict[str, Any] = field(default_factory=dict)  # TrainSettings fields (others: defaults)
    reuse_actors: bool = True
    max_failures: int = 0  # times a failed trial is retried from its last checkpoint (Tune's FailureConfig)
    searcher: str | None = None  # "module:class" of a searcher given from Python (then `strategy` is its name)
    plugins: list[dict[str, Any]] = field(default_factory=list)  # plug-ins the run uses (nas.plugins.Origin)
    evaluate: str = "train"  # how a candidate is scored: train, proxy:NAME, table:PATH, supernet:RUN (nas.evaluate.spec)
    warmup_proxy: str | None = None  # score `warmup` random candidates with this proxy; the best go first
    warmup: int = 0

    def __post_init__(self) -> None:
        if self.searcher is None and self.strategy not in STRATEGIES:
            raise SearchError(f"unknown strategy {self.strategy!r} (known: {', '.join(STRATEGIES)})"
                              + did_you_mean(self.strategy, STRATEGIES))
        if not isinstance(self.trials, int) or self.trials < 1:
            raise SearchError(f"trials must be a positive integer, got {self.trials!r}")
        if self.concurrent is not None and self.concurrent < 1:
            raise SearchError(f"concurrent must be a positive integer, got {self.concurrent}")
        if not isinstance(self.max_failures, int) or self.max_failures < 0:
            raise SearchError(f"max_failures must be a whole number >= 0, got {self.max_failures!r}")
        if not (_finite(self.cpus_per_trial) and self.cpus_per_trial > 0 and _finite(self.gpus_per_trial)
                and self.gpus_per_trial >= 0):
            raise SearchError(f"cpus per trial must be > 0 and GPUs per trial >= 0, got {self.cpus_per_trial!r} "
                              f"and {self.gpus_per_trial!r}")
        if not (_finite(self.val_fraction) and 0 < self.val_fraction < 1):
            raise SearchError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.train_limit is not None and (not isinstance(self.train_limit, int) or self.train_limit < 1):
            raise SearchError(f"train_limit must be a positive integer, got {self.train_limit!r}")
        if self.val_limit is not None and self.val_limit != "all" and (
                isinstance(self.val_limit, bool) or not isinstance(self.val_limit, int) or self.val_limit < 1):
            raise SearchError(f"val_limit must be a positive integer or 'all', got {self.val_limit!r}")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise SearchError(f"unknown scheduler {self.scheduler!r} (known: {', '.join(SCHEDULERS)})"
                              + did_you_mean(self.scheduler, SCHEDULERS))
        self.settings = TrainSettings.from_dict({"seed": self.seed, **self.train})
        parse_evaluator(self.evaluate, check=False)  # the form only (no torch): nas.evaluate.hooks.check does the rest
        if not isinstance(self.warmup, int) or self.warmup < 0 or bool(self.warmup) != bool(self.warmup_proxy):
            raise SearchError(f"--warmup-proxy NAME and --warmup N (N >= 1) go together, got {self.warmup_proxy!r} "
                              f"and {self.warmup!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(spec: Mapping[str, Any]) -> "SearchConfig":
        known = {f.name for f in fields(SearchConfig)}
        if "val_limit" not in spec and spec.get("train_limit") is not None:
            spec = {**spec, "val_limit": "all"}  # saved before validation followed the train limit: as it ran
        try:
            return SearchConfig(**{k: v for k, v in spec.items() if k in known})
        except TypeError as error:  # a required field missing
            raise SearchError(f"not a search configuration: {error}") from None

    def resources(self) -> dict[str, float]:
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def default_folder(strategy: str, root: str | Path = "results/runs") -> Path:
    return Path(root) / f"{strategy}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def read_config(folder: Path) -> SearchConfig:
    """The saved config of the run in `folder` (search.json), or one line saying why there is none (or which
    of the plug-ins it used is not installed here). Here, beside the config, and not with the run folder's
    other readers: it imports neither torch nor Ray, so `--resume` of a damaged run folder says so at once."""
    saved = Path(folder) / CONFIG_JSON
    if not saved.is_file():
        raise SearchError(f"{folder}: nothing to resume (no {CONFIG_JSON}); start the search without --resume")
    try:
        spec = json.loads(saved.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SearchError(f"{saved}: damaged, not valid JSON ({error}); the run cannot be resumed") from None
    if not isinstance(spec, dict):
        raise SearchError(f"{saved}: damaged, not a search configuration")
    check_installed(spec.get("plugins", []), str(saved))
    return SearchConfig.from_dict(spec)
