"""Numbers for people: counts of parameters and FLOPs with an SI prefix."""
from __future__ import annotations


def si(value: float | None, unit: str = "") -> str:
    """``8178368512`` -> ``"8.18 G"`` (``"8.18 GFLOPs"`` with `unit` "FLOPs"): three significant figures
    and an SI prefix; None -> ``"-"``."""
    if value is None:
        return "-"
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def plural(count: int, noun: str) -> str:
    """``1 trial``, ``3 trials``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")
