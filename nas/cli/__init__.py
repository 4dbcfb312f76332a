"""The `nas` command line. Each subcommand is a module of this package with
``add_arguments(parser)`` and ``run(args) -> int``; `COMMANDS` lists them."""
from __future__ import annotations

import argparse
import importlib
import sys

from nas.errors import NasError

# subcommand -> (module under nas.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "baselines": ("baselines", "list the baseline genomes with their parameters and FLOPs"),
    "build": ("build", "build a genome; print its parameters, FLOPs and per-stage output shapes"),
    "scale": ("scale", "scale a genome's width, depth and input resolution; write the new genome"),
    "draw": ("draw", "draw a genome: network overview and each distinct cell graph (PNG or SVG)"),
    "search": ("search", "search architectures on Ray Tune (random, evolution, rl, scaling, optuna); resumable"),
    "compare": ("compare", "retrain searched and hand-designed networks (same data, recipe, seeds); report with significance"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="nas", description="Neural architecture search over graph genomes.")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"nas.cli.{module_name}")
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NasError as error:
        print(f"nas {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the safety net for file errors the commands do not check first: one line, the path
        where = f"{error.filename}: " if error.filename else ""
        print(f"nas {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # nas.search.interrupts.Interrupted carries SIGTERM's code (143)
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return int(getattr(error, "exit_code", 130))


if __name__ == "__main__":
    sys.exit(main())
