"""`nas baselines`: every baseline genome with its parameters, FLOPs and MACs at its default input.

FLOPs and MACs are per image: FLOPs as torch.utils.flop_counter counts them (2 per multiply-add),
MACs the multiply-adds (what torchvision's tables call GFLOPS), so FLOPs = 2 x MACs.
"""
from __future__ import annotations

import argparse
import json
import sys

from nas import baselines
from nas.cli.common import shape_text, table
from nas.errors import NasError
from nas.units import si


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")


def run(args: argparse.Namespace) -> int:
    from nas.summary import summary  # torch: imported only to run

    records, failed = [], []
    for name in baselines.names():
        try:
            genome = baselines.get(name)
            result = summary(genome)
        except NasError as error:  # one broken baseline must not hide the others
            failed.append(name)
            print(f"nas baselines: error: baseline {name!r}: {error}", file=sys.stderr)
            continue
        records.append({
            "name": name,
            "params": result.params,
            "flops": result.flops,
            "macs": result.macs,
            "input_shape": list(result.input_shape),
            "num_classes": result.output_shape[0],
            "stages": len(genome.stages),
            "fingerprint": genome.fingerprint(),
        })
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        rows = [(r["name"], f"{r['params']:,}", si(r["params"]), si(r["flops"]), si(r["macs"]),
                 shape_text(r["input_shape"]), r["num_classes"]) for r in records]
        print(table(("baseline", "params", "", "FLOPs", "MACs", "input", "classes"), rows, right=(1, 2, 3, 4, 6)))
    return 1 if failed else 0
