"""The command line's checks of its arguments that need neither torch nor Ray, made before a command
imports either: a typo, a missing file or a wrong folder is answered at once (`tests/test_cli_checks.py`
runs each such bad command and asserts that torch and Ray were not imported;
`benchmarks/cli_checks.py` times them). The full checks stay where the work is done (`nas.search.run`,
`nas.compare.run`, `nas.train.fit`): these only come first.
"""
from __future__ import annotations

from pathlib import Path

from nas import baselines
from nas.cli.common import GENOME_SUFFIXES
from nas.engine.records import CONFIG_JSON
from nas.errors import NasError
from nas.spaces.loader import check_space_name
from nas.suggest import did_you_mean
from nas.train.catalog import check_data_dir, check_dataset_name


def check_data(dataset: str | None, data_dir: str | None) -> None:
    """`--dataset` (a registered name or kind:PATH) and `--data-dir` (not a file)."""
    if dataset is not None:
        check_dataset_name(dataset)
    check_data_dir(data_dir)


def check_space(space: str) -> None:
    """`--space`: a shipped space, a space kind or an existing .yaml file (its contents are read later)."""
    check_space_name(space)


def check_genome_source(source: str) -> None:
    """SOURCE, a baseline name or a genome file: a missing file or an unknown name is said here, in the
    words `load_source` and `nas.compare.plan` use; the file's contents (and a known baseline, whose
    validation needs torch) are read later."""
    path = Path(source)
    if path.suffix.lower() in GENOME_SUFFIXES:
        if not path.exists():
            raise NasError(f"no such genome file: {source}")
    elif not path.exists() and source not in baselines.names():
        raise NasError(f"unknown baseline {source!r} (see `nas baselines`; or give a genome file)"
                       + did_you_mean(source, baselines.names()))


def check_run_folders(runs: list[str]) -> None:
    """`nas compare`'s RUN_DIRs: each a search run folder (holding search.json)."""
    for run in runs:
        if not (Path(run) / CONFIG_JSON).is_file():
            raise NasError(f"{run}: not a search run folder (no {CONFIG_JSON}; run `nas search` first)")


def check_file(path: str | None, what: str) -> None:
    """An input file that must exist (e.g. `--weights`)."""
    if path is not None and not Path(path).is_file():
        raise NasError(f"{path}: " + ("is a folder, not a file" if Path(path).is_dir() else f"no such {what}"))
