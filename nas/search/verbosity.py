"""Ray's, Optuna's and matplotlib's own output kept from the user unless asked for (``--verbose``).

    with libraries_quiet(not verbose):
        ray.init(**ray_init_options())    # Ray's start-up lines at ERROR level only
        tuner.fit()

Quiet means: the loggers of Ray (``ray``, ``ray.tune``, ...), Optuna, matplotlib and tensorboardX at
ERROR, Optuna's own verbosity too; warnings raised from those libraries (and deprecation
notices) ignored. Ray Tune's progress reporter is off anyway (``RunConfig(verbose=0)``,
``RAY_AIR_NEW_OUTPUT=0``) and trial processes do not print to the driver (``log_to_driver=False``).
Everything is put back as it was on leaving.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air", "ray.data", "matplotlib", "tensorboardX", "filelock")
QUIET_MODULES = r"(ray|optuna|matplotlib|tensorboardX|pyarrow)(\.|$)"
_STATE = {"quiet": False}


def ray_init_options() -> dict[str, Any]:
    """Keyword arguments for `ray.init` under the current setting (Ray resets its logger's level there)."""
    return {"logging_level": logging.ERROR} if _STATE["quiet"] else {}


@contextlib.contextmanager
def libraries_quiet(quiet: bool = True) -> Iterator[None]:
    """Within: the libraries' logs and warnings hidden when `quiet` (else left as they are)."""
    if not quiet:
        yield
        return
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    previous = _STATE["quiet"]
    optuna_level = _set_optuna_verbosity()
    _STATE["quiet"] = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=QUIET_MODULES)
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category)
            for name in LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            yield
    finally:
        _STATE["quiet"] = previous
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        _set_optuna_verbosity(optuna_level)


def _set_optuna_verbosity(level: int | None = None) -> int | None:
    """Set Optuna's verbosity (ERROR by default) if Optuna is importable; return the previous one."""
    try:
        import optuna
    except ImportError:
        return None
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR if level is None else level)
    return previous
