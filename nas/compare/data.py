"""The data set a comparison trains on and its splits: the runs' own on the data set they searched, so that
their validation images (which chose the genomes) never reach the test split."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nas.compare.config import CompareConfig
from nas.compare.plan import PlanError, SearchRun
from nas.train.datasets import DatasetSplits


@dataclass(frozen=True)
class DataChoice:
    dataset: str
    data_dir: str | None
    split_seed: int
    val_fraction: float
    note: str  # why these splits
    run_seeds: tuple[int, ...] = ()  # the split seeds of the runs that searched this data set

    def check_test_split(self, data: DatasetSplits) -> None:
        """Runs made with different split seeds can share a test split only when the data set brings its
        own test images (then each run's validation images are training images of another, never test)."""
        if len(self.run_seeds) > 1 and not data.official_test:
            raise PlanError(f"the runs split {self.dataset} differently (seeds {list(self.run_seeds)}) and it has no "
                            "test images of its own: a test split shared by all of them does not exist; compare "
                            "runs made with the same --seed")


def choose_data(config: CompareConfig, runs: Sequence[SearchRun]) -> DataChoice:
    """The data set and its splits: the runs' own on the data set they searched (so their validation
    images, which chose the genomes, never reach the test split); otherwise the given or default ones.
    Runs with different split seeds are accepted here; `DataChoice.check_test_split` decides once the data
    set is loaded (they need a data set with its own test images)."""
    searched = sorted({str(run.config.get("dataset")) for run in runs})
    dataset = config.dataset or (searched[0] if len(searched) == 1 else None) or "digits"
    if config.dataset is None and len(searched) > 1:
        raise PlanError(f"the runs searched different data sets ({', '.join(searched)}); choose one with --dataset")
    same = [run for run in runs if run.config.get("dataset") == dataset]
    if not same:
        return DataChoice(dataset, config.data_dir, config.split_seed or 0,
                          config.val_fraction if config.val_fraction is not None else 0.1,
                          "no run searched this data set: splits from the given (or default) seed")
    seeds = sorted({int(run.config.get("seed", 0)) for run in same})
    shares = sorted({float(run.config.get("val_fraction", 0.1)) for run in same})
    if len(shares) > 1:
        raise PlanError(f"the runs held out different validation shares of {dataset} ({shares}); compare runs "
                        "made with the same --val-fraction")
    if len(seeds) == 1 and config.split_seed is not None and config.split_seed != seeds[0]:
        raise PlanError(f"--split-seed {config.split_seed} differs from the runs' seed {seeds[0]}: their validation "
                        "images (which chose the genomes) would reach the test split")
    if config.val_fraction is not None and config.val_fraction != shares[0]:
        raise PlanError(f"--val-fraction {config.val_fraction} differs from the runs' {shares[0]}")
    data_dir = config.data_dir or next((run.config.get("data_dir") for run in same if run.config.get("data_dir")), None)
    if len(seeds) == 1:
        return DataChoice(dataset, data_dir, seeds[0], shares[0],
                          f"the split seed ({seeds[0]}) and validation share ({shares[0]}) of the search runs",
                          tuple(seeds))
    seed = config.split_seed if config.split_seed is not None else seeds[0]
    return DataChoice(dataset, data_dir, seed, shares[0],
                      f"the data set's own test images; the runs' validation share ({shares[0]}); split seed {seed} "
                      f"(the runs used {', '.join(map(str, seeds))}: each run's validation images may be training "
                      "images here, never test images)", tuple(seeds))
