"""Architecture search: strategies as Ray Tune searchers (`nas.search.strategies`) and the run loop.

The package itself is callable: ``nas.search(config, folder, ...)`` is `nas.search.run.run_search`
(imported on first call: Ray Tune takes seconds to import).
"""
import sys

from nas import CallableModule

sys.modules[__name__].__class__ = CallableModule
__call_target__ = ("nas.search.run", "run_search")
