"""The place `nas.engine.progress.ProgressCallback` had before `nas.engine`: Ray Tune experiments saved then pickled it by
this path, and `Tuner.restore` (`nas search --resume`, a rerun of `nas compare`) looks it up here."""
from nas.engine.progress import ProgressCallback  # noqa: F401
