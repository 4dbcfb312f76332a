"""`nas export GENOME --format F -o FILE`: the genome's network (with trained weights) as a file to deploy.

    nas export results/runs/evo/best_genome.yaml --weights results/runs/evo/best_weights.pt \\
        --format torchscript -o model.pt                  # torch.jit.load("model.pt")
    nas export resnet20 --format exported -o resnet20.pt2 # torch.export.load(...).module()
    nas export best_genome.yaml --format onnx -o model.onnx  # from the checkout: pip install -e '.[onnx]'

An existing FILE is replaced only with --force.
"""
from __future__ import annotations

import argparse

from nas.cli.common import add_source, load_source

FORMAT_NAMES = ("torchscript", "exported", "onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    parser.add_argument("--format", required=True, choices=FORMAT_NAMES,
                        help="torchscript (torch.jit), exported (torch.export, .pt2) or onnx (needs the onnx extra)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--weights", metavar="W",
                        help="trained weights (a state_dict file: a run's best_weights.pt, nas train's weights.pt); "
                             "default: freshly initialised")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")


def run(args: argparse.Namespace) -> int:
    from nas.export import export

    genome = load_source(args.source)
    path = export(genome, args.output, args.format, weights=args.weights, force=args.force)
    c = genome.input.channels
    height, width = genome.input.size
    print(f"{args.format}: {genome.name} ({'trained weights' if args.weights else 'untrained'}), "
          f"input N x {c} x {height} x {width} -> {path}")
    return 0
