"""`nas build SOURCE`: build a genome and print its parameters, FLOPs, MACs and per-stage output shapes."""
from __future__ import annotations

import argparse
import json

from nas.cli.common import add_input, add_source, load_source, parse_input, shape_text, table
from nas.errors import NasError
from nas.units import si


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    parser.add_argument("--classes", type=int, default=None, metavar="N", help="number of classes (default: the genome's)")
    add_input(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from nas.summary import summary  # torch: imported only to run

    genome = load_source(args.source)
    if args.classes is not None and args.classes < 1:
        raise NasError(f"--classes: must be a positive integer, got {args.classes}")
    channels, size = parse_input(args.input)
    result = summary(genome, num_classes=args.classes, in_channels=channels, input_size=size)
    if args.json:
        print(json.dumps({**result.to_dict(), "fingerprint": genome.fingerprint()}, indent=2))
        return 0
    shapes = dict(result.stage_shapes)
    rows = [("input", "", "", "", shape_text(result.input_shape)), ("stem", "", "", "", shape_text(shapes["stem"]))]
    for i, stage in enumerate(genome.stages):
        name = f"stage{i + 1}"
        rows.append((name, stage.cell, stage.repeats, stage.stride, shape_text(shapes[name])))
    rows.append(("head", "", "", "", shape_text(shapes["head"])))
    rows.append(("output", "", "", "", shape_text(result.output_shape)))
    print(f"{result.name}  (fingerprint {genome.fingerprint()[:12]})")
    print(f"params  {result.params:,}  ({si(result.params)})")
    print(f"FLOPs   {result.flops:,}  ({si(result.flops, 'FLOPs')} per image, 2 per multiply-add)")
    print(f"MACs    {result.macs:,}  ({si(result.macs, 'MACs')} per image, multiply-adds = FLOPs / 2)")
    print()
    print(table(("part", "cell", "repeats", "stride", "output shape"), rows, right=(2, 3)))
    return 0
