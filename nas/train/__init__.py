"""Training child networks: data sets as in-memory tensors, the Ray Tune trainable, checkpoints, failures;
and `train` (`nas.train(genome, data, ...)`): one genome trained or fine-tuned outside a search.

The package itself is callable: ``nas.train(...)`` is `nas.train.fit.train` (see `nas.callable_module`).
"""
from nas.train.datasets import DatasetError, DatasetSplits, Split, dataset_names, load_dataset
from nas.train.failures import TrialFailure, failure_reason
from nas.train.fit import TrainError, TrainResult, train
from nas.train.settings import SettingsError, TrainSettings

__all__ = ["DatasetError", "DatasetSplits", "SettingsError", "Split", "TrainError", "TrainResult", "TrainSettings",
           "TrialFailure", "dataset_names", "failure_reason", "load_dataset", "train"]
