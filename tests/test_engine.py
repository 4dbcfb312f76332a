"""`nas.engine`: the typed trial records, the one place Ray Tune is run from, and the names Ray Tune experiments
saved before it pickled (still found where `Tuner.restore` looks them up)."""
import ast
import importlib
import json
from pathlib import Path

import pytest

from nas.engine.records import (FINISHED, SearchTrial, TrialStatus, counts, read_records, read_trials,
                                write_trials)

ROOT = Path(__file__).resolve().parents[1]


def test_one_status_enum_reads_and_writes_the_plain_names():
    assert TrialStatus("TERMINATED") == "TERMINATED" and "ERROR" in FINISHED
    assert TrialStatus.TERMINATED.finished and not TrialStatus.INTERRUPTED.finished
    assert json.dumps({"status": TrialStatus.INTERRUPTED}) == '{"status": "INTERRUPTED"}'
    with pytest.raises(ValueError):
        TrialStatus("DONE")


def test_an_older_record_is_migrated_on_read_and_keeps_what_it_had(tmp_path):
    old = {"index": 2, "trial_id": "a1", "status": "ERROR", "fingerprint": "f", "val_accuracy": None,
           "params": 12, "error": "boom", "genome": {"name": "g"}, "a_field_of_another_version": 7}
    (tmp_path / "trials.json").write_text(json.dumps({"trials": [old]}))
    [record] = read_records(tmp_path)
    assert record.trial == 3 and record.status is TrialStatus.ERROR and record.metrics == {"params": 12}
    as_dict = read_trials(tmp_path)[0]
    assert {k: as_dict[k] for k in old} == old and as_dict["trial"] == 3
    assert list(as_dict)[:4] == ["trial", "index", "trial_id", "status"]  # trials.json's order of fields


def test_written_records_mark_duplicates_and_count_by_status(tmp_path):
    records = [SearchTrial(index=i, trial_id=f"t{i}", status=status, fingerprint=fingerprint)
               for i, (status, fingerprint) in enumerate([(TrialStatus.TERMINATED, "a"), (TrialStatus.ERROR, "b"),
                                                          (TrialStatus.INTERRUPTED, "a")])]
    written = write_trials(tmp_path, reversed(records))
    assert [r.index for r in written] == [0, 1, 2] and written[2].duplicate_of == 1
    assert counts(written) == {"trials": 3, "completed": 1, "failed": 1, "interrupted": 1, "unfinished": 1,
                               "duplicate_trials": 1}
    assert read_records(tmp_path) == written
    assert (tmp_path / "trials.csv").read_text().splitlines()[3].startswith("3,t2,INTERRUPTED,a,,1,")


@pytest.mark.parametrize("old, new", [
    ("nas.search.run:RunRecorder", "nas.engine.recording:RunRecorder"),
    ("nas.search.run:RelocatableSearchGenerator", "nas.engine.recording:RelocatableSearchGenerator"),
    ("nas.search.run:_trial_name", "nas.engine.tune_trials:trial_name"),
    ("nas.search.progress:ProgressCallback", "nas.engine.progress:ProgressCallback"),
    ("nas.search.loggers:TrialBoard", "nas.engine.loggers:TrialBoard"),
    ("nas.search.tune_searcher:TuneSearcher", "nas.engine.searcher:TuneSearcher"),
    ("nas.compare.run:Progress", "nas.engine.progress:ProgressCallback"),
    ("nas.spaces.cells:CellSpace", "nas.spaces.cell_space:CellSpace"),  # modules renamed for their names' sake
    ("nas.spaces.cells:_Op", "nas.spaces.cell_space:_Op"),
    ("nas.spaces.scaling:ScalingSpace", "nas.spaces.scaling_space:ScalingSpace"),
    ("nas.search.strategies.scaling:ScalingSearcher", "nas.search.strategies.compound_scaling:ScalingSearcher"),
])
def test_names_pickled_by_earlier_experiments_are_found_where_they_were(old, new):
    def find(path):
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    assert find(old) is find(new)


def imports_of(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_compare_imports_nothing_of_the_search_and_runs_tune_only_through_the_engine():
    compare = imports_of("nas.compare")
    assert not [name for name in compare if name == "nas.search" or name.startswith("nas.search.")]
    for package in ("nas.compare", "nas.search", "nas.oneshot", "nas.train"):  # RunConfig, restore: nas.engine's
        sources = "".join(p.read_text() for p in (ROOT / package.replace(".", "/")).rglob("*.py"))
        assert "RunConfig(" not in sources and "Tuner.restore(" not in sources and "ExperimentAnalysis" not in sources
