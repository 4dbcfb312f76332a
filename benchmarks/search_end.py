"""How long a search keeps the user waiting outside its trials: its first line, Ray's start, and the end
(from the last trial's line to the exit), with each part of the end.

Runs one small `nas search` on Fashion-MNIST (Debian's files, or --data-dir) as a user would, in a
subprocess, stamps each line of its output as it arrives, and prints (seconds):

    first_line_s         command start -> its first line of output
    ray_to_first_trial_s "starting Ray" -> "waiting for the first trial to start" (Ray's start) and on to
                         the first trial's line (ray_start_s, first_trial_line_s)
    end_s                the last trial's line -> the process has exited (the goal: under 10 s on an idle
                         2-core machine); of it, from summary.json's timings: ray_stop_s, best_test_s (the
                         best network on the 10,000 test images), plots_s, finish_s (all of the report)
    load                 the 1-minute load average before and after (the machine may be shared: read the
                         figures with it)

With --repeat N the search runs N times (a new run folder each) and the median and the maximum of each
figure are printed after the runs' figures.

    python benchmarks/search_end.py                        # 2 trials of 1 epoch on 1,000 images, compact space
    python benchmarks/search_end.py --repeat 3             # three runs: each run's figures, median and max
    python benchmarks/search_end.py --trials 4 --space macro --keep /tmp/run
"""
from __future__ import annotations

import argparse
import json
import statistics
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=1000)
    parser.add_argument("--space", default="compact")
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--keep", metavar="DIR", help="run folder to keep (default: a temporary one; with "
                        "--repeat, DIR/run1, DIR/run2...)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the search (default 1)")
    return parser.parse_args()


def stamped_run(command: list[str]) -> tuple[float, list[tuple[float, str]], float, int]:
    """(start, [(time, line)], exit time, return code) of `command`, its stdout stamped line by line."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    lines = [(time.perf_counter(), line.rstrip("\n")) for line in process.stdout]
    code = process.wait()
    return start, lines, time.perf_counter(), code


def one_run(args: argparse.Namespace, keep: Path | None) -> dict | None:
    """The figures of one search (None if it failed), its stamped output printed."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        out = keep if keep else Path(scratch) / "run"
        command = [sys.executable, "-m", "nas", "search", "--strategy", args.strategy, "--space", args.space,
                   "--dataset", "fashion_mnist", "--trials", str(args.trials), "--epochs", str(args.epochs),
                   "--train-limit", str(args.train_limit), "--out", str(out),
                   *(["--data-dir", args.data_dir] if args.data_dir else [])]
        start, lines, end, code = stamped_run(command)
        for stamp, line in lines:
            print(f"{stamp - start:7.1f}  {line}")
        if code != 0:
            print(f"the search failed (exit {code})", file=sys.stderr)
            return None
        summary = json.loads((out / "summary.json").read_text())

    def when(prefix: str) -> float | None:
        return next((stamp - start for stamp, line in lines if line.startswith(prefix)), None)

    trial_lines = [stamp - start for stamp, line in lines if line.startswith("[")]
    ray, waiting = when("starting Ray"), when("waiting for the first trial")
    figures = {
        "first_line_s": lines[0][0] - start if lines else None,
        "ray_start_s": (waiting - ray) if ray is not None and waiting is not None else None,
        "first_trial_line_s": (trial_lines[0] - waiting) if trial_lines and waiting is not None else None,
        "end_s": (end - start) - trial_lines[-1] if trial_lines else None,
        **{name: summary["timings"].get(name) for name in ("ray_stop_s", "best_test_s", "plots_s", "finish_s")},
        "best_params": (summary.get("best") or {}).get("params"),
        "test_accuracy": (summary.get("best") or {}).get("test_accuracy"),
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }
    return {k: round(v, 4 if k == "test_accuracy" else 2) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> int:
    args = parse()
    if args.repeat < 1:
        print(f"--repeat must be at least 1, got {args.repeat}", file=sys.stderr)
        return 2
    runs = []
    for number in range(1, args.repeat + 1):
        keep = None if not args.keep else Path(args.keep) / f"run{number}" if args.repeat > 1 else Path(args.keep)
        figures = one_run(args, keep)
        if figures is None:
            return 1
        print(json.dumps(figures, indent=1), flush=True)
        runs.append(figures)
    if len(runs) > 1:
        names = [name for name, value in runs[0].items() if isinstance(value, (int, float)) and name != "cpus"]
        table = {name: [run[name] for run in runs] for name in names if all(run[name] is not None for run in runs)}
        print(json.dumps({"runs": len(runs), "end_s": table.get("end_s"),
                          "median": {name: round(statistics.median(values), 4) for name, values in table.items()},
                          "max": {name: max(values) for name, values in table.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
