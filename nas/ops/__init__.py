"""The op registry and every built-in op. Importing this package registers them all."""
from nas.ops import attention, channels, conv, layernorm, misc, nasnet, pool, regularization, search_ops, shortcut, subsample  # noqa: F401  (registers the ops)
from nas.ops.registry import OPS, REQUIRED, OpSpec, get_op, op

__all__ = ["OPS", "REQUIRED", "OpSpec", "get_op", "op"]
