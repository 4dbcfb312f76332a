"""`nas scale SOURCE --width W --depth D`: write the genome scaled in width, depth and resolution."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from nas.cli.common import add_source, load_source
from nas.errors import NasError
from nas.scale_genome import scale
from nas.engine.folder import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    parser.add_argument("--width", type=float, default=1.0, metavar="W", help="channel multiplier (default 1.0)")
    parser.add_argument("--depth", type=float, default=1.0, metavar="D", help="stage-depth multiplier (default 1.0)")
    parser.add_argument("--resolution", type=int, default=None, metavar="R", help="input size (default: keep)")
    parser.add_argument("--name", default=None, help="name of the scaled genome (default: SOURCE's name with the factors)")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write the genome here (.yaml/.yml, or .json); default: YAML on stdout")
    parser.add_argument("--force", action="store_true", help="replace the -o file if it exists")


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--width", args.width), ("--depth", args.depth)):
        if not (math.isfinite(value) and value > 0):
            raise NasError(f"{flag}: must be a finite positive number, got {value}")
    if args.output is not None:
        check_output_file(Path(args.output), args.force)
    genome = scale(load_source(args.source), width=args.width, depth=args.depth, resolution=args.resolution,
                   name=args.name)
    if args.output is None:
        print(genome.to_yaml(), end="")
    else:
        path = genome.save(Path(args.output))
        print(f"wrote {genome.name} to {path}")
    return 0
