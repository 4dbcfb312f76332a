"""Which models a comparison trains: the searched genomes, the hand-designed baselines, the transplants.

Every genome is fitted to the data set the same way (`nas.spaces.layout.fit_genome`: the data set's
channels, input size and classes; stage reductions that would start below 4x4 pixels are kept at
stride 1, the rule the search spaces use), so a baseline written for 32x32 CIFAR stays a valid
network on 8x8 digits: resnet20 runs 8 -> 8 -> 4 -> 2, mobilenet_v2_cifar keeps two of its three
reductions (8 -> 4 -> 2).

Default baselines (`DEFAULT_BASELINES`): one per hand-designed family the search spaces draw their
cells from (residual, dense, MBConv, separable), each the small-input (CIFAR) variant. On 8x8 digits
with one CPU core per trial they train in about 2 (resnet20), 5 (xception_cifar), 15 (densenet_40_12)
and 18 (mobilenet_v2_cifar) seconds an epoch (results/compare-digits, batch 32). Left out by default:
resnet56/110 (resnet20's cell again at 3-6x the time), densenet_bc_100_12 (slower than densenet_40_12
with fewer parameters), efficientnet_b0_cifar (the MBConv family again, at about twice the time of
mobilenet_v2_cifar); name any of them with ``--baselines``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas import baselines
from nas.compare.config import DEFAULT_BASELINES, PlanError  # noqa: F401 (re-exported)
from nas.compare.transplant import transplant
from nas.errors import GenomeError
from nas.genome import Genome
from nas.engine.ranking import ranked
from nas.engine.records import BEST_GENOME, CONFIG_JSON, TRIALS_JSON  # a search run folder's files
from nas.spaces.layout import fit_genome
from nas.suggest import did_you_mean



@dataclass(frozen=True)
class SearchRun:
    """A finished (or stopped) search's run folder, as `nas search` writes it."""

    folder: Path
    label: str
    config: Mapping[str, Any]  # search.json
    records: list[dict[str, Any]]  # trials.json, one record per trial
    best: Genome

    @property
    def strategy(self) -> str:
        return str(self.config.get("strategy", "?"))


def _ranked(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return ranked(list(records))


def read_run(folder: str | Path, label: str | None = None) -> SearchRun:
    """Read a run folder: its config, its trial records and its best genome (best_genome.yaml, or the
    best completed trial's genome when the search stopped before writing it)."""
    folder = Path(folder)
    if not (folder / CONFIG_JSON).is_file():
        raise PlanError(f"{folder}: not a search run folder (no {CONFIG_JSON}; run `nas search` first)")
    config = json.loads((folder / CONFIG_JSON).read_text())
    trials = folder / TRIALS_JSON
    records = json.loads(trials.read_text())["trials"] if trials.is_file() else []
    if (folder / BEST_GENOME).is_file():
        best = Genome.load(folder / BEST_GENOME)
    else:
        ranked = _ranked(records)
        if not ranked:
            raise PlanError(f"{folder}: the search has no completed trial to compare")
        best = Genome.from_dict(ranked[0]["genome"])
    return SearchRun(folder, label or folder.name, config, records, best)


@dataclass(frozen=True)
class Model:
    """One row of the comparison: a genome fitted to the data set, and where it comes from."""

    label: str  # unique in the comparison; names trials, files and table rows
    kind: str  # searched | transplant | baseline
    genome: Genome
    source: str  # run folder, baseline name or genome file, "searched in skeleton"
    details: Mapping[str, Any] = field(default_factory=dict)  # transplant: params ratio, width, mapping

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "source": self.source, "genome_name": self.genome.name,
                "fingerprint": self.genome.fingerprint(), "details": dict(self.details)}


def slug(text: str) -> str:
    """`text` as a file-name-safe label."""
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "-", text).strip("-") or "model"


def unique_labels(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        result.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return result


def fit(genome: Genome, input_shape: tuple[int, int, int], num_classes: int, source: str) -> Genome:
    channels, height, width = input_shape
    if height != width:
        raise PlanError(f"{source}: only square inputs are supported, got {height}x{width}")
    try:
        return fit_genome(genome, channels, height, num_classes)
    except GenomeError as error:
        raise PlanError(f"{source} does not fit {channels}x{height}x{width} inputs: {error}") from None


def resolve_baseline(source: str) -> tuple[str, Genome]:
    """(label, genome) of a baseline name or a genome file."""
    path = Path(source)
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        return slug(path.stem), Genome.load(path)
    if source not in baselines.names():
        raise PlanError(f"unknown baseline {source!r} (see `nas baselines`; or give a genome file)"
                        + did_you_mean(source, baselines.names()))
    return source, baselines.get(source)


def plan_models(runs: Sequence[SearchRun], baseline_sources: Sequence[str], skeletons: Sequence[str],
                input_shape: tuple[int, int, int], num_classes: int, *, tolerance: float = 0.05) -> list[Model]:
    """The models of a comparison, in report order: searched, transplanted (each searched genome's cells in
    each skeleton, parameters matched to the skeleton's), then baselines (skeletons included)."""
    sources = list(dict.fromkeys([*baseline_sources, *skeletons]))
    resolved = {source: resolve_baseline(source) for source in sources}
    labels = unique_labels([slug(run.label) for run in runs] + [label for label, _ in resolved.values()])
    run_labels, hand_labels = labels[:len(runs)], dict(zip(sources, labels[len(runs):]))
    searched = [Model(label, "searched", fit(run.best, input_shape, num_classes, str(run.folder)), str(run.folder),
                      {"strategy": run.strategy, "space": run.config.get("space"), "search_genome": run.best.name})
                for label, run in zip(run_labels, runs)]
    fitted = {source: fit(genome, input_shape, num_classes, source) for source, (_, genome) in resolved.items()}
    hand = [Model(hand_labels[source], "baseline", fitted[source], source) for source in sources]
    transplanted = []
    for skeleton in skeletons:
        for model in searched:
            label = f"{model.label}@{hand_labels[skeleton]}"
            result = transplant(model.genome, fitted[skeleton], tolerance=tolerance, input_shape=input_shape,
                                num_classes=num_classes, name=f"{model.genome.name}@{hand_labels[skeleton]}")
            details = {**result.to_dict(), "searched_label": model.label, "skeleton_label": hand_labels[skeleton]}
            transplanted.append(Model(label, "transplant", result.genome,
                                      f"cells of {model.label} in {hand_labels[skeleton]}", details))
    return searched + transplanted + hand


def comparison_pairs(models: Sequence[Model]) -> list[tuple[str, str]]:
    """The differences a report tests: every searched or transplanted model against every baseline, and
    searched models against each other. A transplant's test against its own skeleton is the one that
    isolates the cell."""
    candidates = [m.label for m in models if m.kind in ("searched", "transplant")]
    hand = [m.label for m in models if m.kind == "baseline"]
    searched = [m.label for m in models if m.kind == "searched"]
    pairs = [(c, b) for c in candidates for b in hand]
    pairs += [(a, b) for i, a in enumerate(searched) for b in searched[i + 1:]]
    return pairs
