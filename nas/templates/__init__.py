"""Cell templates, one file per family. Importing this package registers them all."""
from nas.templates import dense, fractal, inception, mbconv, regnet, residual, se, separable, sequence, shufflenet  # noqa: F401  (registers)
from nas.templates.registry import TEMPLATES, CellContext, get_template, template

__all__ = ["TEMPLATES", "CellContext", "get_template", "template"]
