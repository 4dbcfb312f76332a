"""nas: neural architecture search over graph genomes.

    import nas
    outcome = nas.search(nas.SearchConfig(strategy="evolution", trials=16), "runs/evo")   # = nas.run_search
    result = nas.train(genome, "digits", epochs=10)                                        # = nas.train.train

`nas.search` and `nas.train` are both the subpackages (``nas.search.strategies``, ``nas.train.loop``,
...) and callables: calling the package calls its main function (`nas.search.run.run_search`,
`nas.train.fit.train`). `run_search`, `SearchConfig` and `SearchOutcome` are also attributes of
`nas`, imported on first use (Ray Tune takes seconds to import).
"""
import importlib
import types
from typing import Any

from nas.compiler import build
from nas.errors import GenomeError, NasError
from nas.genome import Genome, Stage
from nas.scaling import scale
from nas.summary import Summary, summary
from nas.transfer import TransferError, transfer_weights


class CallableModule(types.ModuleType):
    """A package whose call runs one of its functions, imported on first call (`__call_target__`)."""

    __call_target__: tuple[str, str]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self.__call_target__
        return getattr(importlib.import_module(module), name)(*args, **kwargs)


def callable_module(name: str, target: tuple[str, str]) -> types.ModuleType:
    """Make the imported module `name` callable: calling it calls `target` ((module, function))."""
    module = importlib.import_module(name)
    module.__class__ = CallableModule
    module.__call_target__ = target
    return module


search = callable_module("nas.search", ("nas.search.run", "run_search"))
train = callable_module("nas.train", ("nas.train.fit", "train"))

_LAZY = {"run_search": "nas.search.run", "SearchConfig": "nas.search.run", "SearchOutcome": "nas.search.run",
         "TrainResult": "nas.train.fit"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")


__all__ = ["Genome", "GenomeError", "NasError", "SearchConfig", "SearchOutcome", "Stage", "Summary", "TrainResult",
           "TransferError", "build", "run_search", "scale", "search", "summary", "train", "transfer_weights"]
__version__ = "0.1.0"
