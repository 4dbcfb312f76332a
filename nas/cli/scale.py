"""`nas scale SOURCE --width W --depth D`: write the genome scaled in width, depth and resolution."""
from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.common import add_source, load_source
from nas.scaling import scale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    parser.add_argument("--width", type=float, default=1.0, metavar="W", help="channel multiplier (default 1.0)")
    parser.add_argument("--depth", type=float, default=1.0, metavar="D", help="stage-depth multiplier (default 1.0)")
    parser.add_argument("--resolution", type=int, default=None, metavar="R", help="input size (default: keep)")
    parser.add_argument("--name", default=None, help="name of the scaled genome (default: SOURCE's name with the factors)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write the genome here (.yaml/.yml, or .json); default: YAML on stdout")


def run(args: argparse.Namespace) -> int:
    genome = scale(load_source(args.source), width=args.width, depth=args.depth, resolution=args.resolution,
                   name=args.name)
    if args.output is None:
        print(genome.to_yaml(), end="")
    else:
        path = genome.save(Path(args.output))
        print(f"wrote {genome.name} to {path}")
    return 0
