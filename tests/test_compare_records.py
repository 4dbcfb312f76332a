"""A comparison's trials as typed records (`nas.compare.records`): every comparison committed under results/
(written by earlier versions) reads, writes back the same files, gives the aggregates and cost of its
summary.json and is the comparison its own command resumes; its report is rewritten from a copy (results/
itself is only read)."""
import json
import shutil
import statistics
from pathlib import Path

import pytest

from nas.compare.aggregate import aggregate, comparison_cost
from nas.compare.config import CompareConfig
from nas.compare.plan import Model, read_run
from nas.compare.records import TRIAL_FIELDS, CompareRecordsError, CompareTrial, read_trials, write_trials
from nas.compare.rewrite import rewrite_report
from nas.compare.run import check_folder
from nas.engine.records import TrialStatus
from nas.genome import Genome

RESULTS = Path(__file__).resolve().parents[1] / "results"
# (a comparison still running its first start has compare.json and no trials.json yet: not a committed state)
COMPARISONS = sorted(path.parent for path in RESULTS.rglob("compare.json") if (path.parent / "trials.json").exists())


def test_there_are_committed_comparisons_to_read():
    assert len(COMPARISONS) >= 3


@pytest.mark.parametrize("folder", COMPARISONS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_committed_comparison_reads_through_the_typed_records(folder, tmp_path):
    on_disk = json.loads((folder / "trials.json").read_text())["trials"]
    records = read_trials(folder)
    assert all(isinstance(r, CompareTrial) and isinstance(r.status, TrialStatus) for r in records)
    assert [(r.model, r.seed) for r in records] == [(t["model"], t["seed"]) for t in on_disk]
    for old, new in zip(on_disk, records):  # nothing lost: every old field, same value; missing ones migrated
        written = new.to_dict()
        assert {k: written[k] for k in old} == old and list(written) == list(TRIAL_FIELDS)
    write_trials(tmp_path, records)
    assert read_trials(tmp_path) == records
    if all(list(t) == list(TRIAL_FIELDS) for t in on_disk):  # this version's layout: the very same files
        for name in ("trials.json", "trials.csv"):
            assert (tmp_path / name).read_text() == (folder / name).read_text()

    # the aggregates and compute of its summary.json, from the typed records (latency: measured, not recomputed)
    summary = json.loads((folder / "summary.json").read_text())
    models = [Model(m["label"], m["kind"], Genome.load(folder / "genomes" / f"{m['label']}.yaml"), m["source"],
                    m.get("details") or {}) for m in json.loads((folder / "models.json").read_text())]
    rows = json.loads(json.dumps(aggregate(models, records, {})))
    assert [{**row, "latency_ms": saved["latency_ms"]} for row, saved in zip(rows, summary["models"])] == \
           summary["models"]
    config = CompareConfig(**json.loads((folder / "compare.json").read_text()))
    if "cost" in summary:
        assert comparison_cost([read_run(path) for path in config.runs], records) == summary["cost"]
    assert check_folder(folder, config)  # its own command again resumes it (reads only)


def test_an_unknown_key_is_kept_and_a_damaged_file_is_one_line(tmp_path):
    record = {name: None for name in TRIAL_FIELDS} | {"model": "m", "seed": 1, "status": "ERROR", "error": "boom",
                                                     "note": "kept"}
    trial = CompareTrial.from_dict(record)
    assert trial.failed and not trial.finished and trial.extra == {"note": "kept"} and trial.to_dict() == record
    assert CompareTrial.from_dict({**record, "status": "INTERRUPTED"}).failed is False
    (tmp_path / "trials.json").write_text('{"trials": [{"model": "m"}]}')
    with pytest.raises(CompareRecordsError, match=r"trials.json: damaged, not a comparison's trials \(KeyError"):
        read_trials(tmp_path)


REPORTED = [folder for folder in COMPARISONS if any(r.finished for r in read_trials(folder))]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("folder", REPORTED, ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_committed_comparison_reports_again_from_a_copy(folder, tmp_path, monkeypatch):
    """Its report rewritten from its records, in a copy: the table has every model with its finished seeds'
    mean, and an interrupted comparison (some trials INTERRUPTED) says how many trials finished."""
    copy = tmp_path / "compare"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("tune"))
    monkeypatch.chdir(RESULTS.parent)  # compare.json names its runs relative to the repository
    markdown = rewrite_report(copy).read_text()
    records = read_trials(copy)
    finished = [r for r in records if r.finished]
    if len(finished) < len(records) and not any(r.failed for r in records):
        assert f"with {len(finished)} of {len(records)} trials finished" in markdown
    else:
        assert "trials finished" not in markdown
    table = markdown.split("| model | kind |")[1].split("\n\n")[0].splitlines()[2:]
    assert len(table) == len(json.loads((copy / "models.json").read_text()))
    for line in table:
        label, _, accuracy, seeds = (cell.strip().strip("`") for cell in line.strip("|").split(" | ")[:4])
        done = [r.test_accuracy for r in finished if r.model == label]
        assert seeds == str(len(done))
        if done:
            assert accuracy.startswith(f"{100 * statistics.fmean(done):.2f}")


def test_the_final_comparison_is_committed_whole():
    records = read_trials(RESULTS / "final-fashion-mnist" / "compare")
    assert len(records) == 12 and all(r.finished for r in records)
