"""`nas export GENOME --format F -o FILE`: the genome's network (with trained weights) as a file to deploy.

    nas export best_genome.yaml --weights best_weights.pt --format onnx -o model.onnx  # from the checkout: pip install -e '.[onnx]'
    nas export resnet20 --format exported -o resnet20.pt2 # torch.export.load(...).module()
    nas export results/runs/evo/best_genome.yaml --weights results/runs/evo/best_weights.pt \\
        --format exported --include-preprocessing -o model.pt2   # takes pixels / 255 (0..1)

The weights' input contract (shape, pixel scale, mean/std, class names), read from the train.json or
best_input.json beside them (or --contract FILE), is stored in the file and printed. Prefer onnx or
exported (.pt2): PyTorch has deprecated TorchScript, and torch.jit.load warns. An existing FILE is
replaced only with --force.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from nas.cli.common import add_source, load_source
from nas.engine.folder import check_output_file
from nas.errors import NasError

FORMAT_NAMES = ("torchscript", "exported", "onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    parser.add_argument("--format", required=True, choices=FORMAT_NAMES,
                        help="onnx (needs the onnx extra) or exported (torch.export, .pt2), preferred; torchscript "
                             "(torch.jit) is deprecated by PyTorch")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--weights", metavar="W",
                        help="trained weights (a state_dict file: a run's best_weights.pt, nas train's weights.pt); "
                             "default: freshly initialised")
    parser.add_argument("--contract", metavar="JSON",
                        help="the weights' input contract: a train.json, best_input.json or contract file "
                             "(default: the one beside --weights)")
    parser.add_argument("--include-preprocessing", action="store_true",
                        help="put the normalisation in the file: it then takes pixels / pixel_max (0..1)")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")


PREFERRED = {"torchscript": "note: PyTorch has deprecated TorchScript (torch.jit.load warns); prefer --format onnx "
                            "or exported (docs/export.md)"}


def run(args: argparse.Namespace) -> int:
    from nas.cli.checks import check_file, check_genome_source  # deferred: numpy (keeps `nas export --help` fast)
    from nas.train.contract import describe, find_contract, read_contract  # deferred: numpy (as above)

    check_genome_source(args.source)
    check_file(args.weights, "weights file")
    check_output_file(Path(args.output), args.force)
    if args.format == "onnx" and importlib.util.find_spec("onnx") is None:
        raise NasError("--format onnx needs the onnx package: from the checkout, pip install -e '.[onnx]'")
    source = Path(args.contract) if args.contract else find_contract(args.weights) if args.weights else None
    contract = read_contract(source) if source is not None else None
    genome = load_source(args.source)  # (its validation imports torch)
    from nas.export import export  # torch: after the checks above

    path = export(genome, args.output, args.format, weights=args.weights, force=args.force, contract=contract,
                  include_preprocessing=args.include_preprocessing)
    c = genome.input.channels
    height, width = genome.input.size
    print(f"{args.format}: {genome.name} ({'trained weights' if args.weights else 'untrained'}), "
          f"input N x {c} x {height} x {width} -> {path}")
    if contract is not None:
        shown = {**contract, "normalization_included": contract["normalization_included"] or args.include_preprocessing}
        for line in describe(shown):
            print(f"  {line}")
        print(f"  (recorded in the file; from {source})")
    elif args.weights:
        print("  input contract unknown (no train.json or best_input.json beside the weights; --contract FILE "
              "gives one): feed what the weights were trained on")
    if args.format in PREFERRED:
        print(PREFERRED[args.format])
    return 0
