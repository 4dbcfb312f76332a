"""Training child networks: data sets as in-memory tensors, the Ray Tune trainable, checkpoints, failures."""
from nas.train.datasets import DatasetError, DatasetSplits, Split, dataset_names, load_dataset
from nas.train.failures import TrialFailure, failure_reason
from nas.train.settings import SettingsError, TrainSettings

__all__ = ["DatasetError", "DatasetSplits", "SettingsError", "Split", "TrainSettings", "TrialFailure",
           "dataset_names", "failure_reason", "load_dataset"]
