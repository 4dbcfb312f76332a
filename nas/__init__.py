"""nas: neural architecture search over graph genomes.

    import nas
    outcome = nas.run_search(nas.SearchConfig(strategy="evolution", trials=16), "runs/evo")
    result = nas.fit(genome, "digits", epochs=10)            # one genome trained (nas.train.fit.train)
    cost = nas.summarize(genome)                             # params, FLOPs, shapes (nas.summary.summary)

The public names below (`__all__`, listed in docs/python-api.md) are imported on first use (PEP 562), so
that `import nas` and the command line's `--help` do not pay for torch or Ray; `from nas import build`
works as usual. `nas.search`, `nas.train`, ... are plain subpackages (imported on first attribute use).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module that defines it, its name there)
_EXPORTS = {
    "Genome": ("nas.genome", "Genome"), "Stage": ("nas.genome", "Stage"),
    "GenomeError": ("nas.errors", "GenomeError"), "NasError": ("nas.errors", "NasError"),
    "Summary": ("nas.summary", "Summary"), "summarize": ("nas.summary", "summary"),
    "TransferError": ("nas.transfer", "TransferError"), "transfer_weights": ("nas.transfer", "transfer_weights"),
    "build": ("nas.compiler", "build"),
    "scale": ("nas.scale_genome", "scale"),
    "run_search": ("nas.search.run", "run_search"), "SearchOutcome": ("nas.search.run", "SearchOutcome"),
    "SearchConfig": ("nas.search.config", "SearchConfig"),
    "fit": ("nas.train.fit", "train"), "TrainResult": ("nas.train.fit", "TrainResult"),
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    try:  # a subpackage or module (nas.search, nas.train, ...): imported on first use, like the names above
        return importlib.import_module(f"nas.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"nas.{name}":
            raise
        raise AttributeError(f"module 'nas' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = sorted(_EXPORTS)
