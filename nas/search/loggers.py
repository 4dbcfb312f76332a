"""Ray Tune's own loggers, written for every trial of a search or comparison in ``RUN/tune``:
``result.json`` (every report), ``progress.csv`` (the same as a table) and TensorBoard event files
(``events.out.tfevents.*``, through tensorboardX, which ``ray[tune]`` installs), so that

    tensorboard --logdir RUN/tune

shows every trial's curves. They are given explicitly (Tune's automatic loggers are switched off
with TUNE_DISABLE_AUTO_CALLBACK_LOGGERS, see `nas.search.run`), so the files do not depend on Ray's
version or on the environment (Ray 2.60 adds the same three itself unless that variable is set;
Ray 2.60 reads no RAY_AIR_DEFAULT_LOGGERS).
"""
from __future__ import annotations

from ray.tune import Callback


def tune_loggers() -> list[Callback]:
    """JSON, CSV and TensorBoard logger callbacks for a Tune `RunConfig`."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    loggers: list[Callback] = [JsonLoggerCallback(), CSVLoggerCallback()]
    try:
        loggers.append(TBXLoggerCallback())
    except ImportError:  # tensorboardX missing (ray[tune] installs it): no event files, the rest works
        pass
    return loggers
