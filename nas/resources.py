"""Where the data files that ship with `nas` (baseline genomes, search spaces, training recipes) live."""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (``baselines``, ``search_spaces`` or ``recipes``): inside an installed wheel, or at the repo root."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name!r} folder of nas (looked in {_PACKAGE / '_data'} and {_PACKAGE.parent})")


def space_names() -> list[str]:
    """The shipped search spaces (files in ``search_spaces/``)."""
    return sorted(path.stem for path in data_dir("search_spaces").glob("*.yaml"))
