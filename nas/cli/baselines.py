"""`nas baselines`: every baseline genome with its parameters, FLOPs and MACs at its default input.

FLOPs and MACs are per image: FLOPs as torch.utils.flop_counter counts them (2 per multiply-add),
MACs the multiply-adds (what torchvision's tables call GFLOPS), so FLOPs = 2 x MACs.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, TextIO

from nas import baselines
from nas.cli.common import shape_text, table
from nas.errors import NasError
from nas.units import si


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")


def run(args: argparse.Namespace) -> int:
    from nas.summary import summary  # torch: imported only to run

    records, failed = [], []
    stream = JsonListWriter(sys.stdout) if args.json else None  # each record as soon as it is computed
    for name in baselines.names():
        try:
            genome = baselines.get(name)
            result = summary(genome)
        except NasError as error:  # one broken baseline must not hide the others
            failed.append(name)
            print(f"nas baselines: error: baseline {name!r}: {error}", file=sys.stderr)
            continue
        record = {
            "name": name,
            "params": result.params,
            "flops": result.flops,
            "macs": result.macs,
            "input_shape": list(result.input_shape),
            "num_classes": result.output_shape[0],
            "stages": len(genome.stages),
            "fingerprint": genome.fingerprint(),
        }
        records.append(record)
        if stream is not None:
            stream.write(record)
    if stream is not None:
        stream.close()
    else:
        rows = [(r["name"], f"{r['params']:,}", si(r["params"]), si(r["flops"]), si(r["macs"]),
                 shape_text(r["input_shape"]), r["num_classes"]) for r in records]
        print(table(("baseline", "params", "", "FLOPs", "MACs", "input", "classes"), rows, right=(1, 2, 3, 4, 6)))
    return 1 if failed else 0


class JsonListWriter:
    """Writes a JSON list one item at a time (the same text as json.dumps(items, indent=2)), so that a
    reader sees each item at once and a closed pipe stops the command at its first write."""

    def __init__(self, file: TextIO):
        self.file, self.count = file, 0

    def write(self, item: Any) -> None:
        text = textwrap.indent(json.dumps(item, indent=2), "  ")
        self.file.write(("[\n" if self.count == 0 else ",\n") + text)
        self.file.flush()
        self.count += 1

    def close(self) -> None:
        self.file.write("\n]\n" if self.count else "[]\n")
        self.file.flush()
