"""Channel rounding, a leaf module: cell templates (`nas.templates.mbconv`) and genome transforms
(`nas.scale_genome`, `nas.compare.transplant`) both round widths, and neither may import the other."""
from __future__ import annotations

__all__ = ["round_channels"]


def round_channels(value: float, divisor: int = 8) -> int:
    """`value` rounded to the nearest multiple of `divisor` (at least `divisor`), bumped up by one
    `divisor` if that fell below 90% of `value` (the EfficientNet / MobileNet ``make_divisible`` rule)."""
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
