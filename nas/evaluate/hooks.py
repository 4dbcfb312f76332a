"""What a search (`nas.search.run`) asks of its evaluator (`SearchConfig.evaluate`): a check before anything
is written, the metric its strategy maximises, the trial, the live view's figure, and the end of the run.

The end of a proxy-scored search is honest about what a proxy is: the best-scored genome is trained from
scratch with the search's recipe (its epochs, optimizer, seed; the same loop as `nas train`) before any
accuracy is reported, and its validation and test accuracy, weights (best_weights.pt) and training cost go
into summary.json beside its proxy score. An interrupted proxy search trains nothing: the summary keeps the
score and the command that trains the genome. A supernet-scored search (`supernet:RUN`) ends the same way:
its score is an accuracy with inherited weights, an estimate, so its best is trained from scratch before
an accuracy is reported. A table-scored search reports the table's test accuracy of
its best genome (the table trained it; the search itself only read validation accuracies).
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

from nas.engine.records import BEST_GENOME, BEST_WEIGHTS, SUMMARY_JSON, replace_file
from nas.evaluate.spec import Evaluator, EvaluatorError, parse_evaluator
from nas.evaluate.table import Table
from nas.evaluate.warmup import warm_samples
from nas.errors import NasError
from nas.genome import Genome
from nas.units import plural


def evaluator_of(config) -> Evaluator:
    return parse_evaluator(getattr(config, "evaluate", "train") or "train", check=False)


def check(config) -> None:
    """The evaluator as written (proxy known, table readable and for the search's data set); one line if not."""
    evaluator = parse_evaluator(getattr(config, "evaluate", "train") or "train")
    if evaluator.kind != "train" and config.scheduler:
        raise EvaluatorError(f"--scheduler {config.scheduler} stops trials between training epochs; "
                             f"--evaluate {evaluator} does not train")
    if getattr(config, "warmup_proxy", None):
        parse_evaluator(f"proxy:{config.warmup_proxy}")
    if evaluator.kind == "table":
        table = Table.load(evaluator.argument)
        if table.meta.get("dataset") != config.dataset:
            raise EvaluatorError(f"--evaluate {evaluator}: the table was trained on {table.meta.get('dataset')}, "
                                 f"the search is on {config.dataset}")
    if evaluator.kind == "supernet":
        check_supernet_run(evaluator, config)


def check_supernet_run(evaluator: Evaluator, config) -> None:
    """A supernet evaluator's run: a one-shot search over the search's space and data set."""
    from nas.search.run_folder import read_config  # deferred: a cycle (nas.search.config imports nas.evaluate)
    from nas.search.strategies import strategy_class  # deferred: the same cycle

    try:
        run = read_config(Path(evaluator.argument))
    except NasError as error:
        raise EvaluatorError(f"--evaluate {evaluator}: {error}") from None
    if not getattr(strategy_class(run.strategy), "oneshot", False):
        raise EvaluatorError(f"--evaluate {evaluator}: a {run.strategy} search trains no supernet "
                             "(one-shot strategies: darts, pcdarts, spos, rsws, enas)")
    for what, theirs, ours in (("space", run.space, config.space), ("data set", run.dataset, config.dataset)):
        if theirs != ours:
            raise EvaluatorError(f"--evaluate {evaluator}: the supernet was trained over the {what} {theirs}, "
                                 f"the search is over {ours}")


def warm_start(config, data, searcher, restoring: bool) -> None:
    """`--warmup-proxy NAME --warmup N`: the strategy's random proposals start with the best of N random
    candidates by the proxy (`nas.evaluate.warmup`); nothing when the run is restored (its saved strategy
    keeps what is left of them)."""
    if restoring or not getattr(config, "warmup", 0) or not hasattr(searcher, "warm_start"):
        return
    searcher.warm_start(warm_samples(searcher.space, data, config.warmup_proxy, config.warmup, config.seed,
                                     config.settings.batch_size))


def metric(config) -> str:
    """The metric the strategy maximises: val_accuracy (train, table) or score (a proxy)."""
    return evaluator_of(config).metric


def trainable(config, data):
    """The trial of a proxy, table or supernet evaluator; None for `train` (the search's own trainable)."""
    evaluator = evaluator_of(config)
    if evaluator.kind == "train":
        return None
    from nas.evaluate.trainables import evaluator_trainable  # deferred: torch and Ray (`nas search --help` imports us)

    return evaluator_trainable(evaluator, data, config.resources())


def view_options(config) -> dict[str, Any]:
    """`TrialsView` options: a proxy or supernet search shows and tracks the score under the evaluator's name."""
    evaluator = evaluator_of(config)
    if evaluator.kind not in ("proxy", "supernet"):
        return {}
    return {"metrics": (("score", evaluator.argument if evaluator.kind == "proxy" else "supernet"),),
            "best": ("score", "max")}


def train_command(folder: Path, config) -> str:
    words = ["nas", "train", str(folder / "best_genome.yaml"), "--dataset", config.dataset,
             "--epochs", str(config.settings.epochs), "--seed", str(config.seed)]
    if config.train_limit:
        words += ["--train-limit", str(config.train_limit)]
    if config.data_dir:
        words += ["--data-dir", str(config.data_dir)]
    return shlex.join(words)


def finish(folder: Path, config, data, summary: dict[str, Any], interrupted: int | None) -> dict[str, Any]:
    """Complete summary.json for a proxy, table or supernet evaluator (see the module's docstring); `summary` as
    is for train."""
    evaluator = evaluator_of(config)
    if evaluator.kind == "train":
        return summary
    summary["evaluator"] = str(evaluator)
    best = summary.get("best")
    if evaluator.kind in ("proxy", "supernet"):
        summary["best_by"] = f"score ({evaluator})"
        if best is not None:
            best["train_command"] = train_command(folder, config)
            if interrupted is None:
                best.update(train_from_scratch(folder / BEST_GENOME, folder / BEST_WEIGHTS, config, data))
                best["weights_file"] = BEST_WEIGHTS
    elif evaluator.kind == "table" and best is not None:
        entry = Table.load(evaluator.argument).lookup(Genome.load(folder / BEST_GENOME))
        if entry is not None:
            best["test_accuracy"] = entry.test_accuracy
            best["test_accuracy_from"] = f"the table ({evaluator.argument})"
    replace_file(folder / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def train_from_scratch(genome_file: Path, weights_file: Path, config, data) -> dict[str, Any]:
    """Train the genome with the search's recipe (`nas.train`), save its weights; its accuracies and cost."""
    import torch  # deferred: torch (`nas search --help` imports this module)

    from nas.engine.progress import announce  # deferred: Ray (`nas search --help` imports this module)
    from nas.train.fit import train  # deferred: torch (`nas search --help` imports this module)

    announce(f"training the best-scored genome from scratch ({plural(config.settings.epochs, 'epoch')}) before reporting "
             "an accuracy")
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(Genome.load(genome_file), data, settings=config.settings, device="cpu")
    torch.save(result.model.state_dict(), weights_file)
    return {"val_accuracy": result.val_accuracy, "test_accuracy": result.test_accuracy,
            "trained_from_scratch": {"epochs": result.settings.epochs, "wall_s": round(time.perf_counter() - wall, 3),
                                     "cpu_s": round(time.process_time() - cpu, 3),
                                     "history": result.history}}


def summary_lines(summary: dict[str, Any]) -> list[str] | None:
    """The leaderboard's closing lines for a proxy, table or supernet evaluator (None: train, the usual lines)."""
    evaluator = summary.get("evaluator")
    best = summary.get("best")
    if not evaluator or evaluator == "train" or not best:
        return None
    files = f" -> {best.get('genome_file')}" + (f", {best['weights_file']}" if best.get("weights_file") else "")
    if evaluator.startswith(("proxy:", "supernet:")):
        head = f"best by {evaluator}: trial {best['index'] + 1}, score {best.get('score'):.6g}"
        if best.get("val_accuracy") is None:
            what = ("a proxy score, not an accuracy" if evaluator.startswith("proxy:")
                    else "an accuracy with inherited weights, not a trained one")
            return [head + files + f" ({what}; not trained)",
                    f"train it from scratch: {best.get('train_command')}"]
        trained = best.get("trained_from_scratch") or {}
        return [head, f"trained from scratch ({plural(trained.get('epochs') or 0, 'epoch')}): val {best['val_accuracy']:.4f}, "
                      f"test {best['test_accuracy']:.4f}" + files]
    test = best.get("test_accuracy")
    return [f"best by {evaluator}: trial {best['index'] + 1}, val {best['val_accuracy']:.4f}"
            + (f", test {test:.4f} (from the table)" if test is not None else "") + files]
