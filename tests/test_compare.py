"""`nas compare`: statistics on known answers, the report's rendering, and an end-to-end comparison at a tiny
budget whose report is checked against Ray Tune's own per-trial records."""
from __future__ import annotations

import json
import math
import random
import re
import statistics
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from nas import cellgraph
from nas.cli import main
from nas.compare.document import Code, Image, Paragraph, Table, to_html, to_markdown
from nas.compare.plan import PlanError, comparison_pairs, plan_models, read_run
from nas.compare.report import p_text
from nas.compare.stats import compare_pairs, holm, pareto_front, spread, welch
from nas.genome import Genome


# ----- statistics, on answers known in advance -----
def test_clearly_separated_samples_differ_significantly():
    high, low = [0.95, 0.96, 0.955], [0.80, 0.81, 0.79]
    t, p, reason = welch(high, low)
    assert reason == "" and t > 0 and p < 1e-3
    (test,) = compare_pairs({"high": high, "low": low}, [("low", "high")])
    assert test.significant and test.better == "high" and test.difference == pytest.approx(statistics.fmean(low) - 0.955)


def test_samples_of_one_distribution_do_not_differ():
    same = [0.91, 0.93, 0.92]
    t, p, reason = welch(same, list(same))
    assert (t, p, reason) == (0.0, 1.0, "")
    rng = random.Random(3)
    a = [rng.gauss(0.9, 0.01) for _ in range(5)]
    b = [rng.gauss(0.9, 0.01) for _ in range(5)]
    (test,) = compare_pairs({"a": a, "b": b}, [("a", "b")])
    assert not test.significant and test.better is None
    assert test.p == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_degenerate_samples_are_reported_not_tested():
    assert welch([0.9], [0.8, 0.7])[2] == "fewer than 2 seeds"
    t, p, reason = welch([0.9, 0.9], [0.8, 0.8])
    assert math.isnan(p) and reason == "no spread in either sample"
    (test,) = compare_pairs({"a": [0.9, 0.9], "b": [0.8, 0.8]}, [("a", "b")])
    assert not test.significant and test.reason


def test_holm_adjustment_and_pareto_front():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2, math.nan]) == [0.2, pytest.approx(math.nan, nan_ok=True)]
    points = {"small": (1.0, 0.80), "mid": (2.0, 0.90), "worse_mid": (2.5, 0.85), "big": (4.0, 0.95),
              "tie_big": (4.0, 0.95), "dominated": (5.0, 0.90)}
    assert pareto_front(points) == ["small", "mid", "big", "tie_big"]
    assert spread([0.5]).std == 0.0 and spread([0.4, 0.6]).std == pytest.approx(math.sqrt(0.02))


def test_document_renders_markdown_and_self_contained_html(tmp_path):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1])
    figure.savefig(tmp_path / "plot.png")
    blocks = [Paragraph("a `code` and **bold** <tag>"), Table(("a|b", "n"), [["x", "1"]], right=(1,)),
              Image("plot.png", "a plot"), Code("nas compare x")]
    markdown = to_markdown(blocks)
    assert "| a\\|b | n |\n| --- | ---: |\n| x | 1 |" in markdown and "![a plot](plot.png)" in markdown
    page = to_html(blocks, tmp_path, "t")
    assert "<code>code</code>" in page and "<strong>bold</strong>" in page and "&lt;tag&gt;" in page
    assert 'src="data:image/png;base64,' in page and "plot.png" not in page


# ----- end to end -----
TINY_SKELETON = {  # a small hand-designed residual network, as a genome file
    "name": "tiny_resnet", "input": {"channels": 3, "size": 32}, "num_classes": 10,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [{"cell": "basic", "out": 8}, {"cell": "basic", "out": 16, "stride": 2}],
    "head": [{"op": "global_avgpool"}],
}


def stage_searched() -> Genome:
    return Genome.from_dict({
        "name": "macro-tiny", "input": {"channels": 1, "size": 8}, "num_classes": 10,
        "stem": [{"op": "conv", "out": 8, "kernel": 3}],
        "stages": [{"cell": "mbconv", "out": 8, "params": {"expansion": 3.0}},
                   {"cell": "basic", "out": 16, "stride": 2, "params": {"se": 0.25}}],
        "head": [{"op": "global_avgpool"}],
    })


def cell_searched() -> Genome:
    """A micro-space-like network (explicit normal and reduction cells), small enough to train in a second."""
    def cell(op_b: dict) -> dict:
        return {"nodes": {"pre": {"op": "conv", "kernel": 1, "out": "@out"},
                          "a": {"op": "sepconv", "kernel": 3, "out": "@out", "stride": "@stride"},
                          "b": {**op_b, "stride": "@stride"},
                          "out": {"op": "identity", "merge": "add"}},
                "edges": [["in", "pre"], ["pre", "a"], ["pre", "b"], ["a", "out"], ["b", "out"]]}

    return Genome.from_dict({
        "name": "cells-tiny", "input": {"channels": 1, "size": 8}, "num_classes": 10,
        "stem": [{"op": "conv", "out": 8, "kernel": 3}],
        "stages": [{"cell": "normal", "out": 8}, {"cell": "reduce", "out": 16, "stride": 2},
                   {"cell": "normal", "out": 16}],
        "head": [{"op": "global_avgpool"}],
        "cells": {"normal": cell({"op": "skip_connect", "out": "@out"}),
                  "reduce": cell({"op": "maxpool", "kernel": 3, "padding": 1})},
    })


def fake_run(folder: Path, strategy: str, best: Genome, accuracies: list[float], best_file: bool = True,
             seed: int = 0, val_fraction: float = 0.1) -> Path:
    """A run folder as `nas search` writes it (its own config and trial writers), without the training."""
    from nas.engine.records import write_trials
    from nas.search.run import CONFIG_FILE, SearchConfig

    folder.mkdir(parents=True)
    config = SearchConfig(strategy=strategy, space="cells", dataset="digits", seed=seed, trials=len(accuracies),
                          val_fraction=val_fraction)
    (folder / CONFIG_FILE).write_text(json.dumps(config.to_dict()))
    top = accuracies.index(max(accuracies))
    records = [{"index": i, "trial_id": f"t{i}", "status": "TERMINATED", "fingerprint": f"f{i}", "val_accuracy": a,
                "cpu_s": 1.5, "gpu_s": 0.0, "genome": best.to_dict() if i == top else None}
               for i, a in enumerate(accuracies)]
    write_trials(folder, records)
    if best_file:
        best.save(folder / "best_genome.yaml")
    return folder


def test_a_run_folder_without_its_best_genome_file_gives_the_best_trial(tmp_path):
    run = read_run(fake_run(tmp_path / "rl", "rl", stage_searched(), [0.3, 0.6, 0.5], best_file=False))
    assert run.best == stage_searched() and run.strategy == "rl" and len(run.records) == 3
    with pytest.raises(PlanError, match="not a search run folder"):
        read_run(tmp_path)


def test_plan_labels_are_unique_and_transplants_name_their_parts(tmp_path):
    first = read_run(fake_run(tmp_path / "a" / "evolution", "evolution", stage_searched(), [0.5]))
    second = read_run(fake_run(tmp_path / "b" / "evolution", "evolution", cell_searched(), [0.6]))
    skeleton = tmp_path / "tiny_resnet.yaml"
    Genome.from_dict(TINY_SKELETON).save(skeleton)
    models = plan_models([first, second], [str(skeleton)], [str(skeleton)], (1, 8, 8), 10)
    assert [(m.label, m.kind) for m in models] == [
        ("evolution", "searched"), ("evolution-2", "searched"), ("evolution@tiny_resnet", "transplant"),
        ("evolution-2@tiny_resnet", "transplant"), ("tiny_resnet", "baseline")]
    assert models[3].details["searched_label"] == "evolution-2" and set(models[3].genome.cells) == {"normal", "reduce"}
    assert models[4].genome.input.size == (8, 8) and models[4].genome.input.channels == 1
    assert comparison_pairs(models) == [(a, "tiny_resnet") for a in [m.label for m in models[:4]]] + [
        ("evolution", "evolution-2")]
    with pytest.raises(PlanError, match="unknown baseline"):
        plan_models([], ["no_such_net"], [], (1, 8, 8), 10)
    with pytest.raises(PlanError, match="does not fit 1x8x8"):
        plan_models([], ["lenet5"], [], (1, 8, 8), 10)


def test_runs_split_with_different_seeds_are_compared_only_on_a_data_set_with_its_own_test_images(tmp_path):
    from types import SimpleNamespace

    from nas.compare.config import CompareConfig
    from nas.compare.run import choose_data
    from nas.train.datasets import load_dataset

    runs = [read_run(fake_run(tmp_path / f"s{seed}", "random", stage_searched(), [0.5], seed=seed)) for seed in (2, 3)]
    choice = choose_data(CompareConfig(runs=["s2", "s3"]), runs)
    assert (choice.dataset, choice.split_seed, choice.run_seeds) == ("digits", 2, (2, 3))
    assert "own test images" in choice.note
    choice.check_test_split(SimpleNamespace(official_test=True))  # e.g. Fashion-MNIST's 10,000 test images
    assert load_dataset("digits").official_test is False  # digits' test split is carved by the seed
    with pytest.raises(PlanError, match=r"split digits differently \(seeds \[2, 3\]\) and it has no test images"):
        choice.check_test_split(load_dataset("digits"))
    assert choose_data(CompareConfig(runs=["s2", "s3"], split_seed=3), runs).split_seed == 3
    # one seed: the runs' own splits, and no other seed
    same = choose_data(CompareConfig(runs=["s2"]), runs[:1])
    assert same.split_seed == 2 and same.run_seeds == (2,)
    same.check_test_split(load_dataset("digits"))
    with pytest.raises(PlanError, match="--split-seed 0 differs from the runs' seed 2"):
        choose_data(CompareConfig(runs=["s2"], split_seed=0), runs[:1])
    other_share = read_run(fake_run(tmp_path / "v", "random", stage_searched(), [0.5], val_fraction=0.2))
    with pytest.raises(PlanError, match="different validation shares"):
        choose_data(CompareConfig(runs=["s2", "v"]), [runs[0], other_share])
    for bad in (0, -3, 2.5, True):
        with pytest.raises(PlanError, match="train_limit must be a positive integer"):
            CompareConfig(train_limit=bad)


def ray_records(folder: Path) -> list[dict]:
    """Each trial's config and last report, read from Ray Tune's own per-trial files."""
    records = []
    for result_file in sorted((folder / "tune").glob("*/result.json")):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        records.append({**lines[-1], "config": json.loads((result_file.parent / "params.json").read_text())})
    return records


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with `header`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header}"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split(" | ")])
    return rows


@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on a constant sample
def test_compare_end_to_end_report_matches_the_trials(ray_session, tmp_path, capsys):
    evolution = fake_run(tmp_path / "runs" / "evolution", "evolution", stage_searched(), [0.4, 0.7, 0.6])
    rl = fake_run(tmp_path / "runs" / "rl", "rl", cell_searched(), [0.5, 0.45])
    skeleton = tmp_path / "tiny_resnet.yaml"
    Genome.from_dict(TINY_SKELETON).save(skeleton)
    out = tmp_path / "report"
    argv = ["compare", str(evolution), str(rl), "--no-default-baselines", "--baselines", "resnet20",
            "--skeleton", str(skeleton), "--epochs", "1", "--seeds", "2", "--train-limit", "300",
            "--latency-repeats", "3", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "train 300 / " in summary["data"]
    assert "--train-limit 300" in summary["command"]

    models = json.loads((out / "models.json").read_text())
    assert [(m["label"], m["kind"]) for m in models] == [
        ("evolution", "searched"), ("rl", "searched"), ("evolution@tiny_resnet", "transplant"),
        ("rl@tiny_resnet", "transplant"), ("resnet20", "baseline"), ("tiny_resnet", "baseline")]
    for transplant in models[2:4]:
        assert transplant["details"]["matched"] and abs(transplant["details"]["params_ratio"] - 1) <= 0.05
    planned = Genome.load(out / "genomes" / "rl@tiny_resnet.yaml")
    assert cellgraph.to_dict(planned.stem) == cellgraph.to_dict(Genome.load(out / "genomes" / "tiny_resnet.yaml").stem)
    assert set(planned.cells) == {"normal", "reduce"}

    # the trials, as Ray Tune recorded them: every model x seed, each with a test accuracy after its one epoch
    trials = ray_records(out)
    assert sorted((t["config"]["model"], t["config"]["seed"]) for t in trials) == sorted(
        (m["label"], s) for m in models for s in (0, 1))
    assert all(t["epoch"] == 1 and 0.0 <= t["test_accuracy"] <= 1.0 for t in trials)
    assert all(t["config"]["train"]["seed"] == t["config"]["seed"] and t["config"]["train"]["epochs"] == 1
               for t in trials)
    accuracy = {m["label"]: [t["test_accuracy"] for t in sorted(trials, key=lambda t: t["config"]["seed"])
                             if t["config"]["model"] == m["label"]] for m in models}

    # the report's table holds exactly those numbers
    markdown = (out / "report.md").read_text()
    rows = {row[0]: row for row in table_rows(markdown, "model | kind")}
    assert list(rows) == [m["label"] for m in models]
    for label, values in accuracy.items():
        mean, std = re.fullmatch(r"([\d.]+) ± ([\d.]+)", rows[label][2]).groups()
        assert float(mean) == pytest.approx(100 * statistics.fmean(values), abs=0.005 + 1e-9)
        assert float(std) == pytest.approx(100 * statistics.stdev(values), abs=0.005 + 1e-9)
        assert rows[label][3] == "2"
        params = {t["params"] for t in trials if t["config"]["model"] == label}
        assert len(params) == 1 and rows[label][5] == f"{params.pop():,}"

    # the significance statement: Welch's test recomputed from the trials gives the same p-values
    tests = table_rows(markdown, "model a | model b")
    candidates = [m["label"] for m in models if m["kind"] != "baseline"]
    assert len(tests) == len(candidates) * 2 + 1  # each against both baselines; the two searched ones
    for a, b, difference, _, p, _, verdict in tests:
        if len(set(accuracy[a])) > 1 or len(set(accuracy[b])) > 1:  # else: the degenerate case, tested above
            expected = scipy_stats.ttest_ind(accuracy[a], accuracy[b], equal_var=False).pvalue
            assert p == p_text(float(expected))
        assert float(difference) == pytest.approx(100 * (statistics.fmean(accuracy[a]) - statistics.fmean(accuracy[b])),
                                                  abs=0.005 + 1e-9)
        assert verdict in ("not significant", f"**{a}** better", f"**{b}** better")
    assert re.search(r"\d+ differences in mean test accuracy were tested", markdown)
    # the compute: the searches' trials as their records say (3 and 2 trials of 1.5 CPU seconds), and ours
    cost = summary["cost"]
    assert cost["searches"] == {"evolution": {"trials": 3, "cpu_s": 4.5, "gpu_s": 0.0},
                                "rl": {"trials": 2, "cpu_s": 3.0, "gpu_s": 0.0}}
    assert cost["training"]["trials"] == len(trials) and cost["training"]["cpu_s"] == pytest.approx(
        sum(t["cpu_s"] for t in trials), abs=0.1)
    assert cost["cpu_s"] == pytest.approx(7.5 + cost["training"]["cpu_s"], abs=0.1)
    assert f"in all {cost['cpu_s'] / 3600:.2f} CPU-hours" in markdown

    # figures, and one HTML page with them embedded
    for name in ("accuracy_vs_params", "accuracy_vs_flops", "search_curves"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    assert sorted({p.stem.rsplit("-", 1)[0] for p in (out / "figures" / "cells").glob("*.png")}) == [
        "evolution", "resnet20", "rl", "tiny_resnet"]  # one image per cell: LABEL-1.png, LABEL-2.png, ...
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == markdown.count("](figures/") and 'src="figures' not in page
    assert json.loads((out / "trials.json").read_text())["trials"][0]["test_accuracy"] == accuracy["evolution"][0]

    # the same command again resumes: nothing is retrained, the report is rewritten from the same trials
    before = {p: p.read_text() for p in (out / "tune").glob("*/result.json")}
    assert main(argv) == 0
    assert {p: p.read_text() for p in (out / "tune").glob("*/result.json")} == before
    assert table_rows((out / "report.md").read_text(), "model | kind") == list(rows.values())
    # a different comparison in the same folder is refused
    capsys.readouterr()
    assert main([*argv[:-3], "--seeds", "3", "--out", str(out), "--quiet"]) == 2
    assert "holds a different comparison" in capsys.readouterr().err


def test_an_interrupted_comparison_records_its_trials_and_the_same_command_resumes_it(
        ray_session, tmp_path, capsys, monkeypatch, terminal_sigint):
    """SIGINT while one trial has finished and the other is held mid-way (`held_trials`): exit 130, the
    rerun command last, the unfinished trial INTERRUPTED, a partial report; the same command then finishes it.
    In this process, on the session's Ray (Ctrl-C to a search from a shell, with a Ray of its own, is
    test_interrupts.py's; a comparison stops through the same `nas.engine.interrupts`)."""
    import signal

    import held_trials
    import nas.compare.run

    skeleton = tmp_path / "tiny_resnet.yaml"
    Genome.from_dict(TINY_SKELETON).save(skeleton)
    out, gate = tmp_path / "report", tmp_path / "gate"
    argv = ["compare", "--no-default-baselines", "--baselines", str(skeleton), "--epochs", "2", "--seeds", "2",
            "--train-limit", "200", "--latency-repeats", "2", "--out", str(out)]
    with monkeypatch.context() as patch:
        patch.setattr(nas.compare.run, "make_trainable",
                      held_trials.holding_trainable(gate, resources=held_trials.compare_resources))
        patch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")  # the snapshot the watcher reads, every second
        with held_trials.signal_once_held(signal.SIGINT, gate, held_trials.wait_for_snapshot, out / "tune") as seen:
            code = main(argv)
    stdout, stderr = capsys.readouterr()
    assert seen and code == 130, stderr[-3000:]
    (held,) = seen
    assert stdout.strip().splitlines()[-1] == f"nas compare --no-default-baselines --baselines {skeleton} " \
                                              f"--train-limit 200 --epochs 2 --seeds 2 --out {out}"
    assert "Tuner.restore" not in stdout + stderr and "Traceback" not in stderr
    statuses = sorted(t["status"] for t in json.loads((out / "trials.json").read_text())["trials"])
    assert statuses == ["INTERRUPTED", "TERMINATED"] and len(held) == 1
    # a partial report of the finished trial, saying so; the interrupted one is not listed as failed
    partial = (out / "report.md").read_text()
    assert "**Partial: the comparison was interrupted (SIGINT) with 1 of 2 trials finished;" in partial
    assert "failed" not in partial.split("## Which differences")[0]
    assert json.loads((out / "summary.json").read_text())["interrupted"] == "SIGINT"
    assert table_rows(partial, "model | kind")[0][3] == "1"  # one seed behind the figures
    finished = {p: p.read_text() for p in (out / "tune").glob("*/result.json")
                if json.loads(p.read_text().splitlines()[0])["trial_id"] not in held}
    assert len(finished) == 1

    assert main(argv + ["--quiet"]) == 0
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert [(t["seed"], t["status"]) for t in trials] == [(0, "TERMINATED"), (1, "TERMINATED")]
    assert all(p.read_text() == text for p, text in finished.items())  # the finished trial was not trained again
    complete = (out / "report.md").read_text()
    assert "Partial" not in complete and table_rows(complete, "model | kind")[0][3] == "2"
    assert json.loads((out / "summary.json").read_text())["interrupted"] is None
