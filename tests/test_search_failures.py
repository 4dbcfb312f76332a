"""What `nas` says when something other than bad input fails, and that the run folder it leaves is one
`--resume` takes: an internal error (one line, the traceback in a log file of its own) and a full disk
(which file, how much room a trial takes, the resume command)."""
import errno
import json
import re
from pathlib import Path

import pytest

import nas.engine.records as records
import nas.search.report as report
from nas.cli import main
from nas.cli.failure import EXIT_CODE
from tests.test_search_run import PAIR_SPACE


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "pair.yaml"
    path.write_text(PAIR_SPACE)
    return path


def search(space, out):
    return ["search", "--strategy", "random", "--space", str(space), "--trials", "2", "--epochs", "1",
            "--train-limit", "200", "--out", str(out), "--quiet"]


def error_lines(captured) -> list[str]:
    assert "Traceback" not in captured.err + captured.out
    return [line for line in captured.err.strip().splitlines() if line]


def test_a_full_disk_then_an_internal_error_each_are_one_line_and_the_run_resumes(space, tmp_path, capsys,
                                                                                 monkeypatch, ray_session):
    """One run meets both: the disk fills up after its first trial (which file, how much room a trial takes,
    the resume command); its --resume meets an internal error at the end (one line, the traceback in a log
    file of its own); the next --resume finishes it."""
    out = tmp_path / "run"
    replace_file = records.replace_file

    def full_after_one_trial(path, text):
        written = json.loads(text).get("trials", []) if path.name == records.TRIALS_JSON else []
        if any(r["status"] == "TERMINATED" for r in written):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        replace_file(path, text)

    monkeypatch.setattr(records, "replace_file", full_after_one_trial)
    assert main(search(space, out)) == 2
    captured = capsys.readouterr()
    first, *rest = error_lines(captured)
    assert re.fullmatch(rf"nas search: error: {re.escape(str(out / 'trials.json'))}: No space left on device "
                        r"\(a trial takes about [0-9.]+ [kM]?B in the run folder\)", first), first
    assert rest == [f"the run folder {out} keeps what was done; to continue:"]
    assert captured.out.strip().endswith(f"nas search --resume --out {out}")
    monkeypatch.setattr(records, "replace_file", replace_file)

    finish = report.finish

    def broken_finish(*args, **kwargs):
        raise KeyError("a fault of ours")

    monkeypatch.setattr(report, "finish", broken_finish)
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == EXIT_CODE
    captured = capsys.readouterr()
    first, *rest = error_lines(captured)
    assert first.startswith("nas search: internal error in broken_finish (test_search_failures.py:")
    assert "KeyError: 'a fault of ours'; traceback: " in first
    log = Path(re.search(r"traceback: (\S+)$", first).group(1))
    assert log.is_file() and "Traceback (most recent call last)" in log.read_text() and "broken_finish" in log.read_text()
    log.unlink()
    assert rest == [f"the run folder {out} keeps what was done; to continue:"]
    assert captured.out.strip().endswith(f"nas search --resume --out {out}")
    trials = json.loads((out / "trials.json").read_text())["trials"]  # the resume trained the rest before
    assert len(trials) == 2 and all(t["status"] == "TERMINATED" for t in trials)

    monkeypatch.setattr(report, "finish", finish)
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["completed"] == 2 and summary["best"]


def test_any_command_reports_an_internal_error_in_one_line(tmp_path, capsys, monkeypatch):
    import nas.cli.ops as ops

    def broken(args):
        raise RuntimeError("something\nspread over\nlines")

    monkeypatch.setattr(ops, "run", broken)
    assert main(["ops"]) == EXIT_CODE
    (line,) = error_lines(capsys.readouterr())
    assert line.startswith("nas ops: internal error in broken (test_search_failures.py:")
    assert "RuntimeError: something spread over lines; traceback: " in line
    Path(line.rsplit("traceback: ", 1)[1]).unlink()
