"""Augmentation policies as text (``auto``, ``none``, ``crop[=PAD],flip,cutout[=SIDE]``): their syntax,
checked without torch (the command line checks ``--augment`` before it imports it). What a policy
does to a batch is `nas.train.augment`.
"""
from __future__ import annotations

import re

from nas.errors import NasError

AUTO, NONE = "auto", "none"
KINDS = ("crop", "flip", "cutout")
_PART = re.compile(r"^(crop|flip|cutout)(?:=(\d+))?$")


class AugmentError(NasError, ValueError):
    """An augmentation policy cannot be parsed."""


def parse_parts(text: str) -> dict[str, int | None]:
    """``"crop=2,flip"`` -> ``{"crop": 2, "flip": None}``; ``"none"`` -> ``{}``. Checks the syntax only."""
    if not isinstance(text, str) or not text.strip():
        raise AugmentError(f"augment must be auto, none or a comma list of crop[=PAD], flip, cutout[=SIDE]; got {text!r}")
    text = text.strip().lower()
    if text == NONE:
        return {}
    parts: dict[str, int | None] = {}
    for item in text.split(","):
        match = _PART.match(item.strip())
        if not match:
            raise AugmentError(f"augment: unknown part {item.strip()!r} in {text!r} "
                               "(expected auto, none or a comma list of crop[=PAD], flip, cutout[=SIDE])")
        kind, value = match.group(1), match.group(2)
        if kind in parts:
            raise AugmentError(f"augment: {kind} given twice in {text!r}")
        if kind == "flip" and value is not None:
            raise AugmentError(f"augment: flip takes no value, got {item.strip()!r}")
        if value is not None and int(value) < 1:
            raise AugmentError(f"augment: {kind} needs a positive number of pixels, got {item.strip()!r}")
        parts[kind] = int(value) if value is not None else None
    return parts


def check_setting(text: str) -> None:
    """Raise AugmentError unless `text` is ``auto`` or a valid policy."""
    if isinstance(text, str) and text.strip().lower() == AUTO:
        return
    parse_parts(text)
