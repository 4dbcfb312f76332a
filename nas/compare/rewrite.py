"""Write a finished comparison's report again from what its folder stores, without training or measuring.

    python -m nas.compare.rewrite results/compare-digits [results/compare-fashion-mnist ...]

Reads compare.json (the comparison), models.json and genomes/ (the plan), trials.json (every trial's
per-seed results), summary.json (the aggregates: rows, recipe, latencies, sessions) and the search run
folders compare.json names, and calls `nas.compare.report.write_report` with them: report.md,
report.html and figures/ are rewritten, nothing else is touched. For a report whose wording or
statistics changed after the comparison ran; running `nas compare` again does the same but loads the
data set and starts Ray.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from nas.compare.config import CompareConfig, PlanError
from nas.compare.plan import Model, read_run
from nas.compare.records import read_trials
from nas.compare.report import write_report
from nas.genome import Genome

CONFIG_FILE, MODELS_FILE, SUMMARY_FILE, GENOMES_DIR = "compare.json", "models.json", "summary.json", "genomes"


def _json(path: Path):
    if not path.is_file():
        raise PlanError(f"{path}: missing; not a finished comparison folder")
    return json.loads(path.read_text())


def rewrite_report(folder: str | Path) -> Path:
    """Rewrite `folder`'s report from its stored results; return the Markdown report's path."""
    folder = Path(folder)
    config = CompareConfig(**_json(folder / CONFIG_FILE))
    models = [Model(m["label"], m["kind"], Genome.load(folder / GENOMES_DIR / f"{m['label']}.yaml"), m["source"],
                    m.get("details") or {}) for m in _json(folder / MODELS_FILE)]
    summary = _json(folder / SUMMARY_FILE)
    records = read_trials(folder)
    runs = [read_run(path) for path in config.runs]  # as nas.compare.run reads them
    return write_report(folder, config, models, runs, records, summary["models"], summary)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for folder in argv:
        print(f"rewrote {rewrite_report(folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
