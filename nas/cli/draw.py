"""`nas draw SOURCE -o FILE`: draw the network overview and each distinct cell to a PNG or SVG file."""
from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.common import add_input, add_source, load_source, parse_input
from nas.errors import NasError
from nas.engine.folder import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the figure: FILE.png or FILE.svg")
    parser.add_argument("--force", action="store_true", help="replace the -o file if it exists")
    add_input(parser)


def run(args: argparse.Namespace) -> int:
    from nas.draw import FORMATS, draw  # matplotlib loads only when drawing

    path = Path(args.output)
    if path.suffix.lower() not in FORMATS:
        raise NasError(f"-o {args.output}: the suffix must be one of {', '.join(FORMATS)}")
    check_output_file(path, args.force)
    genome = load_source(args.source)
    channels, size = parse_input(args.input)
    draw(genome, path, in_channels=channels, input_size=size)
    print(f"wrote {path}")
    return 0
