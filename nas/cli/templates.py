"""`nas templates [NAME ...]`: every cell template a stage can use, with its parameters, their types and
defaults, what `nas scale` multiplies, and one line of meaning, all read from the template registry."""
from __future__ import annotations

import argparse
import json

from nas.cli.ops import describe, render, select


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these templates, with their whole description")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    import nas.templates  # noqa: F401  (registers the templates; deferred: networkx, keeps --help fast)
    from nas.templates.registry import TEMPLATES  # deferred: networkx (as above)
    from nas.expand import TOKENS  # deferred: torch (keeps `nas templates --help` torch-free)
    from nas.genome import STAGE_FIELDS  # deferred: networkx and yaml (keeps `nas templates --help` fast)

    entries = [describe(TEMPLATES.get(name)) for name in select(TEMPLATES, args.names, "cell template")]
    if args.json:
        print(json.dumps({"templates": entries, "stage_fields": list(STAGE_FIELDS), "tokens": list(TOKENS)},
                         indent=2, default=str))
        return 0
    print(render(entries, "cell template", full=bool(args.names)))
    if not args.names:
        print(f"\nA stage is {{{', '.join(STAGE_FIELDS)}}}; 'cell' names a template above or a cell under the "
              f"genome's 'cells', whose node parameters may use the tokens {', '.join(TOKENS)}.")
    return 0
