"""Training child networks: data sets as in-memory tensors, the Ray Tune trainable, checkpoints, failures;
and `train` (`nas.fit(genome, data, ...)`, `nas.train.fit.train`): one genome trained or fine-tuned outside a search.

The names below are imported on first use (PEP 562): `nas.train.settings`, `nas.train.failures`,
`nas.train.catalog` (the data sets by name) and `nas.train.contract` stay importable without torch (the
command line reads their defaults and checks names before it imports torch).
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "DatasetError": "nas.train.raw", "DatasetSplits": "nas.train.datasets", "Split": "nas.train.datasets",
    "dataset_names": "nas.train.catalog", "load_dataset": "nas.train.datasets",
    "TrialFailure": "nas.train.failures", "failure_reason": "nas.train.failures",
    "SettingsError": "nas.train.settings", "TrainSettings": "nas.train.settings",
    "TrainError": "nas.train.fit", "TrainResult": "nas.train.fit", "train": "nas.train.fit",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nas.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = sorted(_EXPORTS)
