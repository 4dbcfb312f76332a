"""nas: neural architecture search over graph genomes.

The public names below are imported on first use (PEP 562), so that `import nas` and the command
line's `--help` do not pay for torch; `from nas import build` works as usual.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Genome": "nas.genome", "Stage": "nas.genome",
    "GenomeError": "nas.errors", "NasError": "nas.errors",
    "Summary": "nas.summary", "summary": "nas.summary",
    "TransferError": "nas.transfer", "transfer_weights": "nas.transfer",
    "build": "nas.compiler",
    "scale": "nas.scaling",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = sorted(_EXPORTS)
