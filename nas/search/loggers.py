"""The place `nas.engine.loggers.TrialBoard` had before `nas.engine`: Ray Tune experiments saved then pickled it by
this path, and `Tuner.restore` (`nas search --resume`, a rerun of `nas compare`) looks it up here."""
from nas.engine.loggers import TrialBoard  # noqa: F401
