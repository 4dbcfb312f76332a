"""Every run folder committed under results/ (written by earlier versions) reads through the typed records
(`nas.engine.records`): statuses, migrated fields, the same best trial and counts as its summary.json, and
trials.json rewritten from the records keeps every field it had. The comparisons still read their runs."""
import json
from pathlib import Path

import pytest

from nas.compare.plan import read_run
from nas.engine.ranking import ranked
from nas.engine.records import SearchTrial, TrialStatus, counts, read_records, read_trials, write_trials

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUNS = sorted(path.parent for path in RESULTS.rglob("search.json"))


def test_there_are_committed_runs_to_read():
    assert len(RUNS) >= 40


@pytest.mark.parametrize("folder", RUNS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_committed_run_reads_through_the_typed_records(folder, tmp_path):
    on_disk = json.loads((folder / "trials.json").read_text())["trials"]
    records = read_records(folder)
    assert all(isinstance(r, SearchTrial) and isinstance(r.status, TrialStatus) for r in records)
    assert [r.trial for r in records] == [t["index"] + 1 for t in on_disk]  # migrated: older records had no "trial"
    summary = json.loads((folder / "summary.json").read_text())
    assert {k: v for k, v in counts(records).items() if k in summary["counts"]} == summary["counts"]
    best = ranked(read_trials(folder))[0]
    assert best["index"] == summary["best"]["index"] and best["val_accuracy"] == summary["best"]["val_accuracy"]
    for old, new in zip(on_disk, read_trials(folder)):  # nothing lost: every old field, same value
        assert {k: new[k] for k in old} == old
    write_trials(tmp_path, records)  # and written again in this version's layout, read back the same
    assert read_records(tmp_path) == records


@pytest.mark.parametrize("folder", [p for p in RUNS if p.parent.name == "runs" and p.parts[-3].startswith("compare")],
                         ids=lambda p: str(p.relative_to(RESULTS)))
def test_a_comparison_still_reads_its_committed_runs(folder):
    run = read_run(folder)
    assert run.records and run.best.fingerprint()
