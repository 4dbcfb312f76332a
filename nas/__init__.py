"""nas: neural architecture search over graph genomes.

    import nas
    outcome = nas.search(nas.SearchConfig(strategy="evolution", trials=16), "runs/evo")   # = nas.run_search
    result = nas.train(genome, "digits", epochs=10)                                        # = nas.train.train

The public names below are imported on first use (PEP 562), so that `import nas` and the command
line's `--help` do not pay for torch or Ray; `from nas import build` works as usual.

`nas.search` and `nas.train` are both the subpackages (``nas.search.strategies``, ``nas.train.loop``,
...) and callables: calling the package calls its main function (`nas.search.run.run_search`,
`nas.train.fit.train`; see `CallableModule`).
"""
from __future__ import annotations

import importlib
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A package whose call runs one of its functions, imported on first call (`__call_target__`).
    A package makes itself one with ``sys.modules[__name__].__class__ = CallableModule``, so that it is
    callable however it was first imported."""

    __call_target__: tuple[str, str]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self.__call_target__
        return getattr(importlib.import_module(module), name)(*args, **kwargs)


__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Genome": "nas.genome", "Stage": "nas.genome",
    "GenomeError": "nas.errors", "NasError": "nas.errors",
    "Summary": "nas.summary", "summary": "nas.summary",
    "TransferError": "nas.transfer", "transfer_weights": "nas.transfer",
    "build": "nas.compiler",
    "scale": "nas.scaling",
    "run_search": "nas.search.run", "SearchOutcome": "nas.search.run", "SearchConfig": "nas.search.config",
    "TrainResult": "nas.train.fit",
}
# callable subpackages (see CallableModule)
_PACKAGES = ("search", "train")


def __getattr__(name: str) -> Any:
    if name in _PACKAGES:
        return importlib.import_module(f"nas.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_PACKAGES})


__all__ = sorted([*_EXPORTS, *_PACKAGES])
