"""An evaluator's name, read and checked without torch: how a search scores each candidate.

    train          train it from scratch with the search's recipe (a Ray Tune trial; the default)
    proxy:NAME     a zero-cost proxy at initialisation (nas.evaluate.proxies: synflow, naswot, ...)
    table:PATH     look its trained accuracy up in a ground-truth table (`nas bench build`)
    supernet:RUN   its path's validation accuracy with the weights of a one-shot run's trained supernet,
                   BN statistics recalibrated (nas.evaluate.inherited)

`metric` is what a trial of that evaluator reports for the strategy to maximise: ``val_accuracy`` for
`train` and `table`, ``score`` for a proxy and a supernet (an estimate, never called a trained accuracy).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.errors import NasError
from nas.evaluate.registry import PROXIES, builtin_names
from nas.suggest import did_you_mean

KINDS = ("train", "proxy", "table", "supernet")
# the built-in proxies (nas.evaluate.proxies registers them; listed here so that --help needs no torch)
BUILTIN_PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "fisher", "params", "flops")


class EvaluatorError(NasError, ValueError):
    """An evaluator's name is invalid (unknown kind or proxy, a missing table)."""


@dataclass(frozen=True)
class Evaluator:
    kind: str  # train, proxy, table or supernet
    argument: str | None = None  # the proxy's name, the table's path, the one-shot run's folder

    @property
    def metric(self) -> str:
        return "score" if self.kind in ("proxy", "supernet") else "val_accuracy"

    def __str__(self) -> str:
        return self.kind if self.argument is None else f"{self.kind}:{self.argument}"


def parse_evaluator(text: str, check: bool = True) -> Evaluator:
    """`text` (train, proxy:NAME, table:PATH, supernet:RUN) as an `Evaluator`; with `check`, a proxy name is
    looked up in the registry (plug-ins' too), a table's file and a run's folder must exist. Bad input: one
    `EvaluatorError` line."""
    if not isinstance(text, str) or not text:
        raise EvaluatorError(f"--evaluate: expected train, proxy:NAME, table:PATH or supernet:RUN, got {text!r}")
    kind, sep, argument = text.partition(":")
    if kind not in KINDS:
        raise EvaluatorError(f"--evaluate {text}: unknown evaluator {kind!r} (known: train, proxy:NAME, table:PATH, "
                             "supernet:RUN)" + did_you_mean(kind, KINDS))
    if kind == "train":
        if sep:
            raise EvaluatorError(f"--evaluate {text}: train takes no argument")
        return Evaluator("train")
    if not argument:
        needs = {"proxy": "a proxy name, e.g. proxy:synflow", "table": "a table file, e.g. table:bench/table.json",
                 "supernet": "a one-shot run folder, e.g. supernet:results/runs/spos-1"}[kind]
        raise EvaluatorError(f"--evaluate {text}: {kind} needs {needs}")
    if check and kind == "proxy":
        if argument not in builtin_names() and argument not in PROXIES:
            raise EvaluatorError(f"--evaluate {text}: unknown proxy {argument!r} (known: {', '.join(PROXIES.names())})"
                                 + did_you_mean(argument, PROXIES.names()))
    if check and kind == "table":
        from nas.evaluate.table import table_file  # deferred: networkx, yaml (nas.genome); SearchConfig imports us

        if not table_file(Path(argument)).is_file():
            raise EvaluatorError(f"--evaluate {text}: no table at {argument} (make one with nas bench build)")
    if check and kind == "supernet":
        check_run_folder(argument, f"--evaluate {text}")
    return Evaluator(kind, argument)


def check_run_folder(folder: str | Path, where: str) -> None:
    """A supernet evaluator's run: a folder of `nas search` (its search.json there); one line naming `where`
    (the option that gave it) if not. What kind of search it was is checked where it is read."""
    if not Path(folder).is_dir():
        raise EvaluatorError(f"{where}: no run folder at {folder} (make one with nas search --strategy spos)")
    if not (Path(folder) / "search.json").is_file():
        raise EvaluatorError(f"{where}: {folder} is not a run folder of nas search (no search.json)")


def check_predictor_size(n: int, archs: int) -> None:
    """`predictor@n` on a table of `archs` architectures: it learns from n (at least 2) and is judged on the
    others (at least 3); one `EvaluatorError` line if not."""
    if not 2 <= n <= archs - 3:
        raise EvaluatorError(f"--predictor {n}: between 2 and {archs - 3} architectures of the {archs} in the "
                             "table (3 or more are left to judge it on)")
