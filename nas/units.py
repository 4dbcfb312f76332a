"""Numbers for people: counts of parameters and FLOPs with an SI prefix, durations; and which values are numbers."""
from __future__ import annotations

import math


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


def duration(seconds: float | None) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``; None -> ``"-"``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def finite(value: object) -> float | None:
    """`value` as a float when it is a finite int or float (not a bool: True is no metric), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
