"""A search's run folder before and after Ray Tune runs in it: its saved configuration (search.json, what
`--resume` reads back: `nas.search.config.read_config`, free of torch and Ray), whether the search got going,
and `begin` (a new search written, or one to restore).

The folder itself is claimed and locked by `nas.engine.folder`; its records are `nas.engine.records`'.
"""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from nas.engine.experiment import can_restore
from nas.engine.recording import TUNE_DIR
from nas.engine.records import CONFIG_JSON, TRIALS_JSON, RecordsError, read_records, replace_file
from nas.search.config import SearchConfig, SearchError, read_config

CONFIG_FILE = CONFIG_JSON


def started(folder: Path) -> bool:
    """Did the search in `folder` get going (recorded trials, or a Ray Tune experiment to restore)? The records
    first: a file's existence, where `can_restore` reads Tune's snapshot."""
    return (folder / TRIALS_JSON).exists() or can_restore(folder)


def check_records(folder: Path) -> None:
    """A damaged trials.json stops a resume with one line (instead of being read half-way later)."""
    try:
        read_records(folder)
    except RecordsError as error:
        raise SearchError(f"{error}; remove it to rebuild it from Ray Tune's experiment state") from None


def begin(folder: Path, config: SearchConfig, resume: bool, existing: bool) -> bool:
    """Under the folder's lock: write search.json for a new search; True when Ray Tune's experiment is to be
    restored. A folder whose search never got going (its start failed or was interrupted) starts again."""
    if resume and started(folder):
        check_records(folder)
        if not can_restore(folder):
            raise SearchError(f"{folder}: no Ray Tune experiment to resume in {folder / TUNE_DIR}")
        return True
    if existing and not resume and started(folder):
        raise SearchError(f"{folder} already holds a search; resume it with --resume or choose another --out")
    shutil.rmtree(folder / TUNE_DIR, ignore_errors=True)  # ours: what a failed start left
    replace_file(folder / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")
    return False


def prepare_folder(folder: Path, config: SearchConfig | None, resume: bool) -> SearchConfig:
    """The run's config, checked before anything is written: `config`, or for `resume` the saved one."""
    if resume:
        if not folder.is_dir():
            raise SearchError(f"{folder}: no such run folder to resume")
        return read_config(folder)
    if config is None:
        raise SearchError("a new search needs a SearchConfig")
    return config


def resume_command(folder: Path) -> str:
    """The command that continues the search in `folder`."""
    return shlex.join(["nas", "search", "--resume", "--out", str(folder)])
