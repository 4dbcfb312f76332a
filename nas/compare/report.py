"""The comparison report: report.md and report.html (the same content, images embedded) plus figures/.

Every number in it is computed here from the trial records (`trials.json`, read back from Ray Tune's
results) and the plan; the significance statement is generated from Welch's t-tests
(`nas.compare.stats`), never written by hand.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.compare.document import (Block, Bullets, Code, Figure, Heading, Image, Paragraph, Table, to_html,
                                  to_markdown)
from nas.compare.figures import draw_cells, plot_search_curves, plot_tradeoff
from nas.compare.plan import Model, SearchRun, comparison_pairs
from nas.compare.records import CompareTrial
from nas.compare.stats import Comparison, compare_pairs, pareto_front
from nas.compare.verdict import detail_lines, matched_size, summary_line
from nas.engine.records import TrialStatus

REPORT_MD, REPORT_HTML, FIGURES = "report.md", "report.html", "figures"
MAIN_HEADERS = ("model", "kind", "test acc. % (mean ± std)", "seeds", "val acc. %", "params", "FLOPs (2 per MAC)",
                "latency ms (batch 1)", "train time s", "Pareto")


# ----- number formats (the test reads the table back with these) -----
def percent(mean: float, std: float | None = None) -> str:
    if mean is None or math.isnan(mean):
        return "-"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def mega(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f} M"


def seconds(mean: float, std: float) -> str:
    return "-" if mean is None or math.isnan(mean) else f"{mean:.1f} ± {std:.1f}"


def p_text(p: float) -> str:
    if math.isnan(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


# ----- statements -----
def verdict(c: Comparison) -> str:
    if c.reason:
        return f"not testable ({c.reason})"
    if c.significant:
        return f"**{c.better}** better"
    return "not significant"


def sentence(c: Comparison) -> str:
    """One computed sentence about one difference."""
    diff = f"{100 * c.difference:+.2f} pp"
    stats = f"Welch t = {c.t:.2f}, p = {p_text(c.p)}, Holm-adjusted p = {p_text(c.p_adjusted)}"
    if c.reason:
        return f"**{c.a}** vs **{c.b}**: {diff}; no test possible ({c.reason})."
    if c.significant:
        worse = c.b if c.better == c.a else c.a
        return f"**{c.better}** is more accurate than **{worse}** by {abs(100 * c.difference):.2f} pp ({stats})."
    return f"**{c.a}** vs **{c.b}**: {diff}, not significant ({stats})."


def headline(models: Sequence[Model], rows: Mapping[str, Mapping[str, Any]], tests: Mapping[tuple[str, str], Comparison]
             ) -> list[str]:
    """Per searched model: against the most accurate baseline; per transplant: against its own skeleton."""
    baselines = [m.label for m in models if m.kind == "baseline" and rows[m.label]["n"] > 0]
    lines = []
    if baselines:
        best = max(baselines, key=lambda label: rows[label]["test_mean"])
        for model in (m for m in models if m.kind == "searched"):
            test = tests.get((model.label, best))
            if test is not None:
                lines.append(f"Searched **{model.label}** against the most accurate hand-designed network "
                             f"(**{best}**, {percent(rows[best]['test_mean'])}%): {_outcome(test)}")
    for model in (m for m in models if m.kind == "transplant"):
        skeleton = model.details.get("skeleton_label")
        test = tests.get((model.label, skeleton))
        if test is not None:
            lines.append(f"Cell transplant **{model.label}** (parameters {model.details['params_ratio']:.3f}x "
                         f"{skeleton}'s) against **{skeleton}** with its own cells: {_outcome(test)}")
    return lines


def _outcome(c: Comparison) -> str:
    if c.reason:
        return f"difference {100 * c.difference:+.2f} pp, not testable ({c.reason})."
    if c.significant:
        return (f"{'better' if c.difference > 0 else 'worse'} by {abs(100 * c.difference):.2f} pp, significant "
                f"(Holm-adjusted p = {p_text(c.p_adjusted)}).")
    return (f"difference {100 * c.difference:+.2f} pp, not significant (Holm-adjusted p = {p_text(c.p_adjusted)}): "
            "the seeds cannot tell them apart.")


# ----- sections -----
def _main_table(rows: Sequence[Mapping[str, Any]], fronts: Mapping[str, Sequence[str]]) -> Table:
    body = []
    for r in rows:
        pareto = ", ".join(name for name, front in fronts.items() if r["model"] in front)
        body.append([f"`{r['model']}`", r["kind"], percent(r["test_mean"], r["test_std"]),
                     f"{r['n']}" + (f" ({r['failed']} failed)" if r["failed"] else ""),
                     percent(r["val_mean"], r["val_std"]), count(r["params"]), mega(r["flops"]),
                     "-" if r["latency_ms"] is None else f"{r['latency_ms']:.2f}",
                     seconds(r["train_time_mean"], r["train_time_std"]), pareto or "-"])
    return Table(MAIN_HEADERS, body, right=(2, 3, 4, 5, 6, 7, 8))


def _runs_section(runs: Sequence[SearchRun], figure: str | None) -> list[Block]:
    if not runs:
        return []
    body = []
    for run in runs:
        records = run.records
        done = [r for r in records if r["status"] == TrialStatus.TERMINATED and isinstance(r.get("val_accuracy"), (int, float))]
        best = max(done, key=lambda r: r["val_accuracy"], default=None)
        summary_file = run.folder / "summary.json"
        timings = json.loads(summary_file.read_text()).get("timings", {}) if summary_file.is_file() else {}
        body.append([f"`{run.label}`", run.strategy, str(run.config.get("space")), str(len(records)),
                     str(len(done)), percent(best["val_accuracy"]) if best else "-",
                     str(best["index"] + 1) if best else "-",
                     f"{timings['search_s']:.0f}" if "search_s" in timings else "-", f"`{run.best.name}`"])
    blocks: list[Block] = [
        Heading(2, "Search runs"),
        Table(("run", "strategy", "space", "trials", "completed", "best val acc. %", "found at trial", "search time s",
               "best genome"), body, right=(3, 4, 5, 6, 7)),
    ]
    if figure:
        blocks.append(Image(figure, "any-time curves of the searches"))
    return blocks


def _significance(tests: Sequence[Comparison], alpha: float, seeds: int) -> list[Block]:
    significant = [t for t in tests if t.significant]
    untestable = [t for t in tests if t.reason]
    insignificant = [t for t in tests if not t.significant and not t.reason]
    blocks: list[Block] = [
        Heading(2, "Which differences are significant"),
        Paragraph(f"{len(tests)} differences in mean test accuracy were tested, each with Welch's two-sided t-test "
                  f"over the seeds (unequal variances), the p-values adjusted together with Holm's method; "
                  f"significant means Holm-adjusted p < {alpha:g}. Significant: {len(significant)}; not significant: "
                  f"{len(insignificant)}" + (f"; not testable: {len(untestable)}" if untestable else "") + "."),
    ]
    if significant:
        blocks += [Paragraph("Significant:"), Bullets([sentence(t) for t in significant])]
    if insignificant:
        blocks += [Paragraph(f"Not significant: with {seeds} seed{'s' if seeds != 1 else ''} per model these "
                             "differences cannot be told apart from the spread between seeds (no evidence of a "
                             "difference, which is not evidence that there is none):"),
                   Bullets([sentence(t) for t in insignificant])]
    if untestable:
        blocks += [Paragraph("Not testable:"), Bullets([sentence(t) for t in untestable])]
    blocks.append(Table(("model a", "model b", "a - b (pp)", "t", "p", "p (Holm)", "verdict"),
                        [[f"`{t.a}`", f"`{t.b}`", f"{100 * t.difference:+.2f}",
                          "-" if math.isnan(t.t) else f"{t.t:.2f}", p_text(t.p), p_text(t.p_adjusted), verdict(t)]
                         for t in tests], right=(2, 3, 4, 5)))
    return blocks


def cells_section(cells: Mapping[str, Sequence[tuple[str, str]]], searched: Sequence[str],
                  hand: Sequence[str]) -> list[Block]:
    """Each model's cell drawings (`cells`: label -> (title, image path)), each on its own at full width."""
    blocks: list[Block] = [
        Heading(2, "Cells"),
        Paragraph("One concrete cell per cell kind of each network (its largest occurrence), as `nas draw` draws it, "
                  "each at full width (click a drawing to see it at its natural size): the searched networks' "
                  "cells first, then the hand-designed cells they compete with."),
    ]
    for label in [*searched, *hand]:
        blocks.append(Heading(3, f"`{label}` ({'searched' if label in searched else 'hand-designed'})"))
        blocks += [Figure(path, f"`{label}`: {title}") for title, path in cells[label]]
    return blocks


def _models_section(models: Sequence[Model]) -> list[Block]:
    items = []
    for m in models:
        text = f"`{m.label}` ({m.kind}): {m.source}; genome `genomes/{m.label}.yaml`"
        if m.kind == "transplant":
            d = m.details
            text += (f"; unit widths x{d['width']:.3f}, {d['params']:,} parameters = {d['params_ratio']:.3f} x "
                     f"{d['skeleton_label']}'s {d['skeleton_params']:,}"
                     + ("" if d["matched"] else f" (NOT within the {100 * d['tolerance']:.0f}% tolerance)")
                     + "; stages: " + "; ".join(d["mapping"]))
        items.append(text)
    return [Heading(2, "Models"), Bullets(items)]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def _cost_lines(cost: Mapping[str, Any] | None) -> list[str]:
    """The compute spent, from the trials' own records (CPU seconds of their processes, GPU seconds)."""
    if not cost:
        return []
    gpu = cost["gpu_s"] > 0
    unit = "GPU" if gpu else "CPU"

    def spent(part: Mapping[str, Any]) -> str:
        return f"{hours(part['gpu_s' if gpu else 'cpu_s'])} {unit}-hours ({part['trials']} trials)"

    searches = cost["searches"]
    parts = [f"the searches {', '.join(f'`{label}` {spent(part)}' for label, part in searches.items())}"] \
        if searches else []
    parts.append(f"this comparison's training {spent(cost['training'])}")
    return [f"Compute: {'; '.join(parts)}; in all {hours(cost['gpu_s' if gpu else 'cpu_s'])} {unit}-hours "
            "(each trial's own process time, summed; trials that ran side by side each count in full)."]


def _recipe_section(summary: Mapping[str, Any], config: Any) -> list[Block]:
    recipe = summary["recipe"]
    lines = [
        f"Data: {summary['data']}; splits from {summary['data_choice']['note']}.",
        f"Training (identical for every model): {recipe['epochs']} epochs, batch {recipe['batch_size']}, "
        f"{recipe['optimizer']} (lr {recipe['lr'] if recipe['lr'] is not None else 'default'}, weight decay "
        f"{recipe['weight_decay'] if recipe['weight_decay'] is not None else 'default'}), {recipe['schedule']} "
        f"schedule, label smoothing {recipe['label_smoothing']}; seeds {', '.join(map(str, summary['seeds']))} "
        "(a seed sets the weights' initialisation and the batch order); test accuracy after the last epoch.",
        f"Ray Tune: one trial per model and seed, {config.cpus_per_trial:g} CPU"
        + (f" and {config.gpus_per_trial:g} GPU" if config.gpus_per_trial else "")
        + f" per trial, on a machine with {summary['cpus']} CPUs (training times are wall times of trials that "
        "ran side by side).",
        f"Latency: median of {summary['latency']['repeats']} forward passes of one image, "
        f"{summary['latency']['threads']} torch thread(s), eval mode, on {summary['machine']}.",
        "FLOPs: torch.utils.flop_counter (2 per multiply-add), one image. Standard deviations use n - 1.",
        *_cost_lines(summary.get("cost")),
        "Wall time of the command: " + "; ".join(
            (f"run {i} (resumed; trials already finished are not trained again): " if i > 1 else
             ("run 1: " if len(summary["sessions"]) > 1 else ""))
            + f"training {t['training_s']:.0f} s, latency {t['latency_s']:.0f} s, in all {t['total_s']:.0f} s"
            for i, t in enumerate(summary["sessions"], start=1)) + ".",
    ]
    blocks: list[Block] = [Heading(2, "Setup"), Bullets(lines)]
    if summary.get("command"):
        blocks += [Paragraph("Command:"), Code(summary["command"], "sh")]
    return blocks


def _interrupted(summary: Mapping[str, Any], records: Sequence[CompareTrial]) -> list[Block]:
    if not summary.get("interrupted"):
        return []
    finished = sum(r.finished for r in records)
    return [Paragraph(f"**Partial: the comparison was interrupted ({summary['interrupted']}) with {finished} of "
                      f"{len(summary['seeds']) * len(summary['models'])} trials finished; every figure below uses "
                      "those only. Run the same command again to finish it (finished trials are not trained "
                      "again).**")]


# ----- the report -----
def write_report(folder: Path, config: Any, models: Sequence[Model], runs: Sequence[SearchRun],
                 records: Sequence[CompareTrial], rows: Sequence[Mapping[str, Any]],
                 summary: Mapping[str, Any]) -> Path:
    """Write figures/, report.md and report.html into `folder`; return the Markdown report's path."""
    folder = Path(folder)
    figures = folder / FIGURES
    by_label = {r["model"]: r for r in rows}
    samples = {r["model"]: r["test_accuracies"] for r in rows}
    tests = compare_pairs(samples, comparison_pairs(models), alpha=config.alpha)
    test_of = {(t.a, t.b): t for t in tests}
    fronts = {}
    for cost, name in (("params", "params"), ("flops", "FLOPs")):
        fronts[name] = pareto_front({r["model"]: (float(r[cost]) if r[cost] else math.nan, r["test_mean"])
                                     for r in rows if r["n"] > 0})
    dataset = summary["data"].split(":")[0]
    plot_tradeoff(rows, "params", fronts["params"], figures / "accuracy_vs_params.png", "parameters (log scale)",
                  f"Test accuracy against parameters on {dataset}")
    plot_tradeoff(rows, "flops", fronts["FLOPs"], figures / "accuracy_vs_flops.png",
                  "FLOPs per image (log scale)", f"Test accuracy against FLOPs on {dataset}")
    curves = None
    if runs:
        plot_search_curves([(run.label, run.records) for run in runs], figures / "search_curves.png")
        curves = f"{FIGURES}/search_curves.png"
    input_shape = tuple(summary["input_shape"])
    num_classes = summary["num_classes"]
    cells = {}
    for model in models:
        if model.kind != "transplant":  # a transplant's cells are its searched model's
            drawn = draw_cells(model.genome, input_shape, num_classes, figures / "cells", model.label)
            cells[model.label] = [(title, f"{FIGURES}/cells/{path.name}") for title, path in drawn]

    searched = [m.label for m in models if m.kind == "searched"]
    hand = [m.label for m in models if m.kind == "baseline"]
    blocks: list[Block] = [
        Heading(1, f"Searched against hand-designed networks on {dataset}"),
        Paragraph(f"{len(models)} models, each trained {len(summary['seeds'])} times (seeds "
                  f"{', '.join(map(str, summary['seeds']))}) with the same recipe on the same data; test accuracy is "
                  "the mean ± sample standard deviation over those seeds. Pareto: on the front of mean test accuracy "
                  "against parameters and/or FLOPs."),
        *_interrupted(summary, records),
        _main_table(rows, fronts),
    ]
    answer = headline(models, by_label, test_of)
    verdicts = matched_size(searched, hand, by_label, test_of, fronts["params"])
    lead = summary_line(verdicts)
    if lead or answer:
        blocks.append(Heading(2, "The answer"))
    if lead:  # first: each searched network against the hand-designed ones of no more parameters
        blocks += [Paragraph(lead), Bullets(detail_lines(verdicts))]
    if answer:
        blocks += ([Paragraph("Against the most accurate hand-designed network, whatever its size, and each cell "
                              "transplant against its skeleton:")] if lead else []) + [Bullets(answer)]
    blocks += [
        Paragraph(f"Pareto front against parameters: {', '.join(f'`{n}`' for n in fronts['params']) or '-'}. "
                  f"Against FLOPs: {', '.join(f'`{n}`' for n in fronts['FLOPs']) or '-'}."),
        Image(f"{FIGURES}/accuracy_vs_params.png", "test accuracy against parameters"),
        Image(f"{FIGURES}/accuracy_vs_flops.png", "test accuracy against FLOPs"),
    ]
    failures = [f"`{r.model}` seed {r.seed}: {r.error or 'unknown error'}" for r in records if r.failed]
    if failures:
        blocks += [Paragraph(f"{len(failures)} trial(s) failed; their models' statistics use the remaining seeds:"),
                   Bullets(failures)]
    blocks += _significance(tests, config.alpha, len(summary["seeds"]))
    blocks += _runs_section(runs, curves)
    blocks += cells_section(cells, searched, hand)
    blocks += _models_section(models)
    blocks += _recipe_section(summary, config)
    blocks += [Heading(2, "Files"),
               Bullets(["`trials.json`, `trials.csv`: one record per trial (model, seed, test and validation "
                        "accuracy, training time, ...), as Ray Tune reported it",
                        "`summary.json`: the aggregates of this report; `models.json`, `genomes/`: the models; "
                        "`compare.json`: the comparison (run the same command again to resume it)"])]
    (folder / REPORT_MD).write_text(to_markdown(blocks))
    (folder / REPORT_HTML).write_text(to_html(blocks, folder, f"nas compare: {dataset}"))
    return folder / REPORT_MD
