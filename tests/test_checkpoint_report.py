"""The trials' checkpoint scratch folders (nas.engine.checkpoint_report): one per process, and those of
processes that were killed are removed when a process on the same host makes its own. (Through Ray Tune:
test_train's trainable test.)"""
import os
import subprocess
import sys

from nas.engine import checkpoint_report
from nas.engine.checkpoint_report import PREFIX, host_tag, remove_left_behind


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_the_folders_of_this_host_s_processes_that_no_longer_run_are_removed(tmp_path):
    dead, alive = dead_pid(), os.getpid()
    names = {
        "dead": f"{PREFIX}{host_tag()}-{dead}-abc_12",
        "alive": f"{PREFIX}{host_tag()}-{alive}-abc_12",
        "other host": f"{PREFIX}elsewhere{host_tag()}-{dead}-abc_12",
        "not ours": f"{PREFIX}x7k2m9qz",  # no host and process id: not made by this module
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.pt").write_bytes(b"weights")
    (tmp_path / f"{PREFIX}{host_tag()}-{dead}-file").write_text("a file, not a folder")
    assert remove_left_behind(tmp_path) == [tmp_path / names["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(names[k] for k in ("alive", "other host", "not ours")), f"{PREFIX}{host_tag()}-{dead}-file"])


def test_a_process_reuses_its_folder_and_clears_away_a_killed_one_s(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_report.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(checkpoint_report, "_made", {})
    left = tmp_path / f"{PREFIX}{host_tag()}-{dead_pid()}-abc_12"
    left.mkdir()
    folder = checkpoint_report.scratch_folder()
    assert not left.exists()
    assert folder.parent == tmp_path and folder.name.startswith(f"{PREFIX}{host_tag()}-{os.getpid()}-")
    assert checkpoint_report.scratch_folder() == folder
    (folder / "state.pt").write_bytes(b"x")
    checkpoint_report.empty(folder)
    assert list(folder.iterdir()) == []
