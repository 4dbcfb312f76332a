"""A ground-truth table: architectures of a space trained from scratch with one recipe, looked up exactly.

    table = Table.load("bench/digits-cells")           # a folder holding table.json, or the file itself
    entry = table.lookup(genome)                       # an Entry, or None when the genome is not in it
    entry.val_accuracy[-1], entry.test_accuracy, entry.params

`nas bench build` makes one (`nas.evaluate.bench`): a seeded random sample of a space, each architecture
trained by a search's trials (random strategy, `test_at_end`), stored as ``table.json``: per architecture
its genome (realized for the data set), fingerprint, sample, validation accuracy after every epoch, final
test accuracy, parameters, FLOPs, cost (CPU and GPU seconds, training time) and seed, with what made the
table (space, data set, recipe, seed). A lookup matches the genome's fingerprint and confirms it with `==`
(genome equality: the same network), as a search's dedupe does; it is a dictionary lookup, not a search.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas.engine.records import read_trials, replace_file
from nas.errors import NasError
from nas.genome import Genome
from nas.units import finite, plural

TABLE_FILE = "table.json"
FORMAT = "nas-bench-table"
VERSION = 1


class TableError(NasError):
    """A table cannot be read, or does not answer for a genome."""


def table_file(path: str | Path) -> Path:
    """The table's JSON file: `path` itself, or ``path/table.json`` for a folder."""
    path = Path(path)
    return path / TABLE_FILE if path.is_dir() else path


@dataclass(frozen=True)
class Entry:
    """One trained architecture of a table."""

    fingerprint: str
    genome: Mapping[str, Any]
    sample: Mapping[str, Any] | None
    val_accuracy: Sequence[float]  # after every epoch, 1 to `epochs`
    test_accuracy: float | None
    params: int
    flops: int
    cpu_s: float
    gpu_s: float
    train_time: float
    seed: int

    @property
    def final_val_accuracy(self) -> float:
        return float(self.val_accuracy[-1])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Table:
    meta: dict[str, Any]  # space, dataset, data (val_fraction, train_limit, seed), epochs, seed, recipe, archs
    entries: list[Entry]
    _index: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _genomes: dict[int, Genome] = field(default_factory=dict, repr=False)  # built on first lookup

    def __post_init__(self) -> None:
        for i, entry in enumerate(self.entries):
            self._index.setdefault(entry.fingerprint, []).append(i)

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, genome: Genome, written: Mapping[str, Any] | None = None) -> Entry | None:
        """The entry of `genome` (same fingerprint, confirmed equal), None if the table has none.

        `written`: the genome as the dict it was built from (what a trial receives), when at hand. A stored
        genome written exactly the same is the same genome, so the isomorphism check of `==` (some
        milliseconds for a cells network) runs only for a genome written differently."""
        for i in self._index.get(genome.fingerprint(), ()):
            if written is not None and written == self.entries[i].genome:
                return self.entries[i]
            stored = self._genomes.get(i)
            if stored is None:
                stored = self._genomes[i] = Genome.from_dict(self.entries[i].genome)
            if stored == genome:
                return self.entries[i]
        return None

    def space(self):
        """The search space the table sampled, for its data set's images (as its genomes say)."""
        from nas.spaces import load_space  # deferred: the spaces' modules (`nas bench --help` imports us)

        first = self.entries[0].genome
        return load_space(self.meta["space"], input_channels=first["input"]["channels"],
                          input_size=first["input"]["size"], num_classes=first["num_classes"])

    def describe(self) -> str:
        m = self.meta
        so_far = f" (an unfinished build: {len(self)} of {m.get('requested')})" if m.get("complete") is False else ""
        return (f"{plural(len(self), 'architecture')} of space {m.get('space')!r} on {m.get('dataset')}, "
                f"{plural(int(m.get('epochs') or 0), 'epoch')}, seed {m.get('seed')}{so_far}")

    def missing_line(self, genome: Genome, where: str) -> str:
        """The one line said when `genome` is not in the table."""
        return (f"genome {genome.fingerprint()[:12]} ({genome.name}) is not in the table {where} "
                f"({self.describe()}): build a table with more --archs, or evaluate with train or a proxy")

    # ----- files -----
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **self.meta, "entries": [e.to_dict() for e in self.entries]}

    def save(self, path: str | Path) -> Path:
        path = table_file(path)
        replace_file(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @staticmethod
    def load(path: str | Path) -> "Table":
        path = table_file(path)
        try:
            spec = json.loads(path.read_text())
        except FileNotFoundError:
            raise TableError(f"{path}: no such table (make one with nas bench build)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TableError(f"{path}: not a readable table ({type(error).__name__}: {error})") from None
        return Table.from_dict(spec, str(path))

    @staticmethod
    def from_dict(spec: Any, path: str = "table") -> "Table":
        """A table from its JSON form (`to_dict`); one `TableError` line when it is not one."""
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise TableError(f"{path}: not a table of nas bench build (no \"format\": \"{FORMAT}\")")
        if spec.get("version") != VERSION:
            raise TableError(f"{path}: table version {spec.get('version')!r}, this nas reads version {VERSION}")
        try:
            entries = [Entry(**entry) for entry in spec["entries"]]
        except (KeyError, TypeError) as error:
            raise TableError(f"{path}: damaged entry ({type(error).__name__}: {error})") from None
        meta = {k: v for k, v in spec.items() if k not in ("format", "version", "entries")}
        return Table(meta, entries)


# ----- from a finished search's run folder -----
def trial_history(run_folder: Path, trial_id: str) -> list[dict[str, Any]]:
    """Every result a trial reported, in order (Ray Tune's result.json of ``tune/trial_<n>_<id>``, or
    ``tune/trial_<id>`` in run folders written before trials were numbered)."""
    folders = [*sorted((run_folder / "tune").glob(f"trial_*_{trial_id}")), run_folder / "tune" / f"trial_{trial_id}"]
    path = next((folder / "result.json" for folder in folders if (folder / "result.json").is_file()), None)
    if path is None:
        return []
    results = []
    for line in path.read_text().splitlines():
        if line.strip():
            results.append(json.loads(line))
    return results


def table_from_run(run_folder: str | Path, meta: Mapping[str, Any]) -> Table:
    """The table of the completed trials of a search run with `test_at_end` (their per-epoch validation
    accuracies from Ray Tune's per-trial results), in the order the sample was drawn."""
    run_folder = Path(run_folder)
    entries = []
    for record in sorted(read_trials(run_folder), key=lambda r: r["index"]):
        if record["status"] != "TERMINATED" or record.get("duplicate_of") is not None:
            continue
        history = trial_history(run_folder, record["trial_id"])
        by_epoch: dict[int, float] = {}
        for result in history:  # a resumed trial may report an epoch twice: the last report of it counts
            epoch, value = result.get("epoch"), finite(result.get("val_accuracy"))
            if isinstance(epoch, int) and value is not None:
                by_epoch[epoch] = value
        last = history[-1] if history else {}
        curve = [by_epoch[e] for e in sorted(by_epoch)]
        if not curve:
            continue
        entries.append(Entry(
            fingerprint=record["fingerprint"], genome=record["genome"], sample=record.get("sample"),
            val_accuracy=curve, test_accuracy=finite(last.get("test_accuracy")),
            params=int(record.get("params") or 0), flops=int(record.get("flops") or 0),
            cpu_s=finite(record.get("cpu_s")) or 0.0, gpu_s=finite(record.get("gpu_s")) or 0.0,
            train_time=finite(record.get("train_time")) or 0.0, seed=int(meta.get("seed", 0))))
    return Table({**meta, "archs": len(entries)}, entries)
