"""Users never lose files: run folders are claimed safely and locked, a mistyped command writes nothing,
--resume refuses flags that contradict the run, damaged records and file errors end in one line.
No training here: every case is refused before Ray starts."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main
from nas.errors import NasError
from tests.tiny_spaces import PAIR_SPACE
from nas.engine.folder import LOCK_FILE, FolderError, check_output_file, claim, lock, own_folder

ROOT = Path(__file__).resolve().parents[1]


def one_error_line(capsys, command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nas {command}: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----- nas.engine.folder -----
def test_claim_creates_a_new_folder_accepts_an_empty_one_or_a_run_and_refuses_the_users(tmp_path):
    assert claim(tmp_path / "a" / "new", "search.json", "search") is False and (tmp_path / "a" / "new").is_dir()
    (tmp_path / "empty").mkdir()
    assert claim(tmp_path / "empty", "search.json", "search") is False
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "search.json").write_text("{}")
    assert claim(tmp_path / "ours", "search.json", "search") is True
    users = tmp_path / "users"
    users.mkdir()
    (users / "trials.csv").write_text("mine\n")
    with pytest.raises(FolderError, match="is not empty and holds no search .*trials.csv"):
        claim(users, "search.json", "search")
    assert tree(users) == {"trials.csv": b"mine\n"}


def test_claim_names_the_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FolderError, match="file is a file, not a folder"):
        claim(tmp_path / "file", "search.json", "search")
    with pytest.raises(FolderError, match="is under .*file, which is a file"):
        claim(tmp_path / "file" / "run", "search.json", "search")


def test_one_lock_holder_at_a_time_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    with lock(tmp_path, "search"):
        with pytest.raises(FolderError, match=f"in use by another search \\(process {os.getpid()}\\)"):
            with lock(tmp_path, "search"):
                pass
    with lock(tmp_path, "search"):  # released
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from nas.engine.folder import lock\n"
         "with lock(Path(sys.argv[1]), 'search'):\n    print('locked', flush=True)\n    time.sleep(600)",
         str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderError, match=f"process {holder.pid}"):
            with lock(tmp_path, "search"):
                pass
        holder.kill()
        holder.wait(timeout=30)
    finally:
        holder.kill()
        holder.stdout.close()
    with own_folder(tmp_path, "search.json", "search") as existing:  # the dead holder's lock went with it
        assert existing is False and (tmp_path / LOCK_FILE).exists()


def test_an_output_file_is_checked_before_writing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FolderError, match="file is a file, not a folder"):
        check_output_file(tmp_path / "file" / "out.yaml")
    with pytest.raises(FolderError, match="it is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(FolderError, match="exists; choose another file, or use --force"):
        check_output_file(tmp_path / "file")
    check_output_file(tmp_path / "file", force=True)
    check_output_file(tmp_path / "new" / "out.yaml")


# ----- nas search -----
@pytest.fixture(scope="module")
def space(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "pair.yaml"
    path.write_text(PAIR_SPACE)
    return path


def search(space, out, *extra):
    return ["search", "--strategy", "evolution", "--space", str(space), "--trials", "2", "--epochs", "1",
            "--out", str(out), *extra]


def test_search_refuses_a_folder_of_the_users_and_changes_nothing(space, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "trials.csv").write_text("my,data\n")
    (out / "summary.json").write_text('{"mine": true}\n')
    before = tree(out)
    assert main(search(space, out)) == 2
    assert "is not empty and holds no search" in one_error_line(capsys, "search")
    assert tree(out) == before


@pytest.mark.parametrize("extra, words", [
    (["--option", "population=abc"], "option population: expected a whole number >= 1 or none"),
    (["--option", "colour=red"], "has no option 'colour'"),
    (["--space", "{missing}"], "missing.yaml"),
    (["--val-fraction", "nan"], "val_fraction must be in (0, 1)"),
    (["--cpus-per-trial", "inf"], "cpus per trial must be > 0"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--lr", "nan"], "lr must be a non-negative number"),
    (["--train-limit", "-5"], "train_limit must be a positive integer"),
])
def test_a_mistyped_search_leaves_no_folder_and_the_corrected_one_is_accepted(space, tmp_path, capsys, extra, words):
    out = tmp_path / "run"
    extra = [e.format(missing=tmp_path / "missing.yaml") for e in extra]
    assert main(search(space, out, *extra)) == 2
    assert words in one_error_line(capsys, "search")
    assert not out.exists()


@pytest.mark.parametrize("extra, words", [
    (["--option", "population=abc"], "option population: expected a whole number >= 1 or none"),
    (["--space", "{missing}"], "missing.yaml"),
])
def test_a_mistyped_option_or_space_is_said_before_the_data_is_loaded(space, tmp_path, capsys, extra, words):
    """CIFAR-10 is not in the data folder: the mistake is said first (no download tried, no data folder made)."""
    data_dir = tmp_path / "data"
    extra = [e.format(missing=tmp_path / "missing.yaml") for e in extra]
    assert main(search(space, tmp_path / "run", *extra, "--dataset", "cifar10", "--data-dir", str(data_dir))) == 2
    assert words in one_error_line(capsys, "search")
    assert not data_dir.exists() and not (tmp_path / "run").exists()


def test_rl_options_out_of_range_are_refused(space, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--strategy", "rl", "--space", str(space), "--option", "hidden=-5", "--out", str(out)]
    assert main(argv) == 2
    assert "option hidden: expected a whole number >= 1, got -5" in one_error_line(capsys, "search")
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under_file", "proc"])
def test_an_out_that_cannot_be_a_folder_is_one_line(space, tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    out = {"file": tmp_path / "file", "under_file": tmp_path / "file" / "run", "proc": Path("/proc/nas-test/run")}[where]
    assert main(search(space, out)) == 2
    line = one_error_line(capsys, "search")
    assert str(out) in line or str(out.parent) in line
    assert (tmp_path / "file").read_text() == "x"


@pytest.fixture
def saved_run(space, tmp_path):
    """A run folder as `nas search` leaves it before any trial (search.json only)."""
    from nas.cli.search import config_from_args
    from nas.cli import parser

    args = parser().parse_args(search(space, tmp_path / "run"))
    out = tmp_path / "run"
    out.mkdir()
    (out / "search.json").write_text(json.dumps(config_from_args(args).to_dict()))
    return out


@pytest.mark.parametrize("flags, words", [
    (["--strategy", "random"], "--strategy random (the run has evolution)"),
    (["--trials", "5"], "--trials 5 (the run has 2)"),
    (["--space", "cells"], "--space cells (the run has "),
    (["--epochs", "4"], "--epochs 4 (the run has 1)"),
    (["--epochs", "3"], "--epochs 3 (the run has 1)"),  # the default, written: compared like any value
    (["--seed", "0", "--epochs", "3"], "flags contradict it: --epochs 3 (the run has 1) (drop"),  # --seed 0 agrees
    (["--option", "population=3"], "--option {\"population\": 3} (the run has {})"),
])
def test_resume_refuses_flags_that_contradict_the_saved_run(saved_run, capsys, flags, words):
    before = tree(saved_run)
    assert main(["search", "--resume", "--out", str(saved_run), *flags]) == 2
    line = one_error_line(capsys, "search")
    assert "these flags contradict it" in line and words in line, line
    assert tree(saved_run) == before


def test_resume_accepts_flags_that_repeat_the_saved_run(saved_run, space):
    from nas.cli import parser
    from nas.cli.search import check_resume

    args = parser().parse_args(["search", "--resume", "--out", str(saved_run), "--strategy", "evolution",
                                "--trials", "2", "--epochs", "1", "--space", str(space), "--quiet"])
    check_resume(args, saved_run)  # no error: nothing contradicts


def test_resume_ignores_display_flags_and_compares_the_storage_with_the_saved_one(tmp_path):
    from nas.cli import parser
    from nas.cli.search import check_resume, config_from_args

    out = tmp_path / "run"
    out.mkdir()
    saved = config_from_args(parser().parse_args(["search", "--strategy", "optuna", "--storage", "sqlite:///a.db"]), out)
    (out / "search.json").write_text(json.dumps(saved.to_dict()))
    for flags in (["--verbose", "--quiet"], ["--storage", "sqlite:///a.db"]):  # not the run's, or the same as its
        check_resume(parser().parse_args(["search", "--resume", "--out", str(out), *flags]), out)
    args = parser().parse_args(["search", "--resume", "--out", str(out), "--storage", "sqlite:///b.db"])
    with pytest.raises(NasError, match=r"--storage sqlite:///b.db \(the run has sqlite:///a.db\)"):
        check_resume(args, out)


def test_damaged_records_are_one_line(saved_run, capsys):
    (saved_run / "trials.json").write_text('{"trials": [')
    assert main(["search", "--resume", "--out", str(saved_run)]) == 2
    assert "trials.json: damaged" in one_error_line(capsys, "search")
    (saved_run / "search.json").write_text("{not json")
    assert main(["search", "--resume", "--out", str(saved_run)]) == 2
    assert "search.json: damaged, not valid JSON" in one_error_line(capsys, "search")
    assert main(["search", "--resume", "--out", str(saved_run / "nope")]) == 2
    assert "no such run folder to resume" in one_error_line(capsys, "search")


def test_a_search_on_a_folder_in_use_is_refused(saved_run, space, capsys, monkeypatch):
    def load_dataset(*args, **kwargs):
        raise AssertionError("the data set was loaded before the folder's lock was checked")

    monkeypatch.setattr("nas.search.run.load_dataset", load_dataset)  # the lock is checked first, at once
    with lock(saved_run, "search"):
        before = tree(saved_run)
        assert main(["search", "--resume", "--out", str(saved_run)]) == 2
        assert "is in use by another search" in one_error_line(capsys, "search")
        assert tree(saved_run) == before


# ----- nas compare -----
def test_compare_refuses_a_folder_of_the_users_and_keeps_its_gitignore(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / ".gitignore").write_text("my rules\n")
    argv = ["compare", "--no-default-baselines", "--baselines", "resnet20", "--epochs", "1", "--seeds", "1",
            "--out", str(out)]
    assert main(argv) == 2
    assert "is not empty and holds no comparison" in one_error_line(capsys, "compare")
    assert tree(out) == {".gitignore": b"my rules\n"}
    # a mistyped comparison leaves no folder behind
    assert main([*argv[:-1], str(tmp_path / "new"), "--baselines", "nonesuch"]) == 2
    assert "unknown baseline 'nonesuch'" in one_error_line(capsys, "compare")
    assert not (tmp_path / "new").exists()


def test_compare_writes_its_gitignore_only_where_none_is():
    from nas.compare.run import GITIGNORE, write_new

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ".gitignore"
        assert write_new(path, GITIGNORE) and path.read_text() == GITIGNORE
        path.write_text("changed by the user\n")
        assert not write_new(path, GITIGNORE) and path.read_text() == "changed by the user\n"


# ----- -o files and bad values, in the genome commands -----
@pytest.mark.parametrize("argv, words", [
    (["scale", "resnet20", "--width", "inf"], "--width: must be a finite positive number, got inf"),
    (["scale", "resnet20", "--width", "nan"], "--width: must be a finite positive number, got nan"),
    (["scale", "resnet20", "--depth", "-2"], "--depth: must be a finite positive number, got -2.0"),
    (["scale", "resnet20", "-o", "{file}/x.yaml"], "is a file, not a folder"),
    (["scale", "resnet20", "-o", "{folder}"], "it is a folder"),
    (["scale", "resnet20", "-o", "{existing}"], "exists; choose another file, or use --force"),
    (["scale", "resnet20", "-o", "/proc/nas-test/x.yaml"], "/proc/nas-test"),
    (["scale", "resnet20", "-o", "{full}", "--force"], "No space left on device"),
    (["draw", "resnet20", "-o", "{file}/x.png"], "is a file, not a folder"),
    (["draw", "resnet20", "-o", "{existing_png}"], "exists; choose another file, or use --force"),
])
def test_output_files_and_values_fail_in_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "file").write_text("x")
    (tmp_path / "existing.yaml").write_text("mine\n")
    (tmp_path / "existing.png").write_text("mine\n")
    (tmp_path / "full.yaml").symlink_to("/dev/full")  # every write: ENOSPC (a full disk)
    names = {"file": tmp_path / "file", "folder": tmp_path, "existing": tmp_path / "existing.yaml",
             "existing_png": tmp_path / "existing.png", "full": tmp_path / "full.yaml"}
    assert main([a.format(**names) for a in argv]) == 2
    assert words in one_error_line(capsys, argv[0])
    assert (tmp_path / "existing.yaml").read_text() == "mine\n" and (tmp_path / "file").read_text() == "x"


def test_a_wrong_out_is_said_before_the_data_is_loaded(space, tmp_path, capsys):
    """--out a file: refused before the data set is looked for (no download tried, no data folder made)."""
    (tmp_path / "file").write_text("x")
    data_dir = tmp_path / "data"
    args = search(space, tmp_path / "file") + ["--dataset", "cifar10", "--data-dir", str(data_dir)]
    assert main(args) == 2
    assert "is a file" in one_error_line(capsys, "search")
    assert not data_dir.exists() and (tmp_path / "file").read_text() == "x"
