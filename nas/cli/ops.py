"""`nas ops [NAME ...]`: every op a cell node can carry, with its parameters, their types and defaults,
and one line of meaning: all read from the op registry, so the list cannot go stale.

`describe` and `render` serve `nas templates` as well (the template registry has the same shape).
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

from nas.errors import NasError
from nas.frozen import thaw
from nas.params import REQUIRED
from nas.suggest import did_you_mean


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these ops, with their whole description")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    import nas.ops  # noqa: F401  (registers the ops; deferred: torch, keeps `nas ops --help` torch-free)
    from nas import cellgraph as cell  # deferred: networkx (keeps `nas ops --help` fast)
    from nas.ops.registry import OPS  # deferred: torch (keeps `nas ops --help` torch-free)

    entries = [describe(OPS.get(name)) for name in select(OPS, args.names, "op")]
    node_fields = [{"name": name, "type": "int" if name == "column" else param_type(default), "default": default,
                    "required": False, "meaning": cell.NODE_FIELD_MEANINGS[name]}
                   for name, default in cell.NODE_FIELDS.items()]
    for entry in entries:  # a node's `out` is checked as a channel count whatever the op
        for param in entry["params"]:
            if param["name"] == "out" and param["type"] == "any":
                param["type"] = cell.OUT_TYPE
    if args.json:
        print(json.dumps({"ops": entries, "node_fields": node_fields}, indent=2, default=str))
        return 0
    print(render(entries, "op", full=bool(args.names)))
    if not args.names:
        print("\nEvery node also takes:")
        print(param_table(node_fields, with_meaning=True))
    return 0


def select(registry: Iterable[str], names: list[str], kind: str) -> list[str]:
    """`names` (all of the registry's if empty), each checked to be registered."""
    known = list(registry)
    for name in names:
        if name not in known:
            raise NasError(f"unknown {kind} {name!r} (known: {', '.join(known)})" + did_you_mean(name, known))
    return list(dict.fromkeys(names)) or known


def param_type(default: Any) -> str:
    """The type a parameter takes, as `nas.params` checks it from the default (``any`` when unchecked)."""
    if default is None or default is REQUIRED:
        return "any"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float (or int)"
    if isinstance(default, (list, tuple)):
        return "list"
    if isinstance(default, Mapping):
        return "mapping"
    return type(default).__name__


def type_of(spec: Any, key: str, default: Any) -> str:
    """What parameter `key` of a registry entry takes: its own words where it has them, else its default's type."""
    words = spec.type_of(key) if hasattr(spec, "type_of") else None
    return words or param_type(default)


def describe(spec: Any) -> dict[str, Any]:
    """A registry entry (an OpSpec or a TemplateSpec) as plain data."""
    doc = spec.doc.strip()
    entry = {
        "name": spec.name,
        "meaning": " ".join(doc.split("\n\n")[0].split()) if doc else "",
        "doc": doc,
        "params": [{"name": key, "type": type_of(spec, key, default), "required": default is REQUIRED,
                    "default": None if default is REQUIRED else thaw(default)} for key, default in spec.defaults.items()],
    }
    if hasattr(spec, "widths"):  # a cell template: what `nas scale` multiplies
        entry["scale_widths"] = list(spec.widths)
        entry["scale_depth"] = spec.depth
    return entry


def default_text(param: Mapping[str, Any]) -> str:
    if param["required"]:
        return "required"
    return json.dumps(param["default"], default=str)


def param_table(params: list[Mapping[str, Any]], with_meaning: bool = False) -> str:
    rows = [(p["name"], p["type"], default_text(p), *([p["meaning"]] if with_meaning else [])) for p in params]
    if not rows:
        return "    (no parameters)"
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("    " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def render(entries: list[dict[str, Any]], kind: str, full: bool) -> str:
    """Text: per entry, its name and meaning (the whole description if `full`), then its parameters."""
    blocks = []
    for entry in entries:
        text = entry["doc"] if full else entry["meaning"]
        lines = [f"{entry['name']}: {text}" if text else entry["name"], param_table(entry["params"])]
        if "scale_widths" in entry:
            widths = ", ".join(entry["scale_widths"]) or "the stage's out only"
            lines.append(f"    scaling: width multiplies {widths}; depth multiplies {entry['scale_depth'] or 'nothing'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
