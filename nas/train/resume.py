"""A `nas train` output folder that can be continued: what the training was asked (``run.json``) and
where it stands (``state.pt``, `nas.train.checkpointing.TrainingState`, written after every epoch).

    run.json     the genome, data set and its splits, the settings and recipe, written when training starts
    state.pt     the whole training state after the last finished epoch (atomic: a temporary file renamed)
    train.json   written when training ends (with genome.yaml and weights.pt); state.pt then goes

A folder with run.json and no train.json is an unfinished training: ``nas train --resume OUT`` (or
``nas.fit(..., out=OUT, resume=True)``) continues it from state.pt, or from the start when it was
stopped before its first epoch ended; a folder with train.json is finished and is not retrained.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nas.errors import NasError

RUN_FILE = "run.json"
RESULT_FILE = "train.json"  # as nas.train.fit writes it
FORMAT = 1


class ResumeError(NasError):
    """A folder that `--resume` cannot continue."""


def write_run(folder: Path, spec: dict[str, Any]) -> None:
    """run.json (atomically); `spec` is plain data."""
    partial = folder / f".{RUN_FILE}.partial"
    partial.write_text(json.dumps({"format": FORMAT, **spec}, indent=2) + "\n")
    os.replace(partial, folder / RUN_FILE)


def read_run(folder: str | Path) -> dict[str, Any]:
    """The run.json of an unfinished or finished `nas train` folder; one ResumeError line otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResumeError(f"--resume {folder}: no such folder")
    path = folder / RUN_FILE
    if not path.is_file():
        raise ResumeError(f"--resume {folder}: not a folder `nas train` wrote (no {RUN_FILE})")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ResumeError(f"{path}: unreadable ({error})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT or not isinstance(spec.get("genome"), dict) \
            or not isinstance(spec.get("settings"), dict):
        raise ResumeError(f"{path}: not a training record this version of nas can continue")
    return spec


def finished(folder: str | Path) -> dict[str, Any] | None:
    """The train.json record of a finished training in `folder`, or None."""
    path = Path(folder) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ResumeError(f"{path}: unreadable ({error})") from None
