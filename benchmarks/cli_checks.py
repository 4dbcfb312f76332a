"""Seconds the command line takes to refuse bad arguments, each in a fresh process, next to the floor
(`python -c pass`) and `python -c "import torch"` (what a check that imports torch pays at least).

    python benchmarks/cli_checks.py                 # every bad command, median of 3 runs each
    python benchmarks/cli_checks.py --repeats 5

Each bad command must exit with status 2 and one error line; the script says so when one does not.
Runs alternate between commands (round robin), so a busy machine slows them all alike; compare the
columns as ratios to the floor.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BAD = [  # {file}: an existing file, {tmp}: a scratch folder
    "search --strategy random --epochs 0",
    "search --strategy random --trials -1",
    "search --strategy random --dataset digts",
    "search --strategy random --data-dir {file}",
    "search --strategy nope",
    "search --strategy random --space macor",
    "train {tmp}/missing.yaml",
    "train resnet20 --epochs 0",
    "train resnet20 --dataset fashion-mnist",
    "compare --epochs 0",
    "compare --baselines nonesuch",
    "export {tmp}/missing.yaml --format exported -o {tmp}/m.pt2",
    "export resnet20 --format exported -o {tmp}/m.pt2 --weights {tmp}/w.pt",
]


def timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command; the median is printed")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "a-file.txt"
        file.write_text("not a folder\n")
        commands = {"python -c pass (floor)": [sys.executable, "-c", "pass"],
                    "python -c 'import torch'": [sys.executable, "-c", "import torch"]}
        for line in BAD:
            commands[f"nas {line.format(tmp='TMP', file='FILE')}"] = [
                sys.executable, "-m", "nas", *line.format(tmp=tmp, file=file).split()]
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        problems: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, argv in commands.items():
                elapsed, code, err = timed(argv, env, tmp)
                seconds[name].append(elapsed)
                if name.startswith("nas ") and (code != 2 or len(err.splitlines()) != 1):
                    problems[name] = f"exit {code}: {err[-200:]}"
    floor = statistics.median(seconds["python -c pass (floor)"])
    width = max(map(len, commands))
    print(f"{'command':<{width}}  {'median s':>8}  {'x floor':>7}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:<{width}}  {median:8.2f}  {median / floor:7.1f}")
    for name, problem in problems.items():
        print(f"NOT A ONE-LINE REFUSAL: {name}: {problem}")


if __name__ == "__main__":
    main()
