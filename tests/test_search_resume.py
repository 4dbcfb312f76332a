"""`nas search` stopped and resumed: the same seed gives the same search, a SIGKILLed run resumes to what an
uninterrupted one gives (also when the snapshot names a replaced checkpoint, when a checkpoint is damaged,
and copied elsewhere), and a worker killed mid-trial is recorded, retried (`--max-failures`) or rerun
(`--retry-errored`), with what a search from a shell prints when its output is piped. (A file of its own
beside test_search_run.py, so that the two run in parallel.)"""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import held_trials
import pytest

import nas.search.run
from nas.cli import main
from tests.test_search_run import ROOT, fingerprints, trials_of
from tests.tiny_spaces import TINY_MIXED as TINY_SPACE

PYTHON = sys.executable


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spaces")
    (folder / "tiny.yaml").write_text(TINY_SPACE)
    return folder


REPRO_TRIALS = 4  # two random proposals (population=2), then two mutations: after the kill, both from the restored state


def repro_args(files, out):
    return ["search", "--strategy", "evolution", "--space", str(files / "tiny.yaml"), "--trials", str(REPRO_TRIALS),
            "--epochs", "2", "--train-limit", "300", "--concurrent", "1", "--seed", "7",
            "--option", "population=2", "--option", "sample_size=2", "--out", str(out), "--quiet"]


@pytest.fixture(scope="module")
def reference_run(files, tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(repro_args(files, out)) == 0
    return out


def test_same_seed_same_architectures_in_the_same_order(reference_run, killed_run):
    """The reference run (in this process) and the killed run (the same command from a shell, on a Ray of its
    own) start alike: the trial the killed run finished is the reference's first, to the same accuracy
    (training is seeded by the genome's fingerprint). Whole runs, every accuracy included, are compared with
    the reference below, once resumed (test_a_copied_run_folder_with_a_damaged_checkpoint_resumes_into_itself)."""
    reference = trials_of(reference_run)["trials"]
    assert len(reference) == REPRO_TRIALS and len(set(fingerprints(reference_run))) == REPRO_TRIALS
    (finished,) = killed_run[1].values()
    assert finished["index"] == 0
    assert (finished["fingerprint"], finished["val_accuracy"]) == (reference[0]["fingerprint"], reference[0]["val_accuracy"])


@pytest.fixture(scope="module")
def killed_run(files, tmp_path_factory):
    """The reproducible search SIGKILLed (Ray processes included) in a state the test chose: one trial
    finished, the next held after its first epoch's checkpoint, which Tune's snapshot names (`held_trials`).
    Returns the run folder and the finished trials' records; `as_killed` puts the folder back as it was
    (at the same path)."""
    root = tmp_path_factory.mktemp("killed")
    out = root / "run"
    process = held_trials.start_search(repro_args(files, out), root / "gate")
    try:
        completed_before, held = held_trials.wait_for_held(process, out, root / "gate")
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        held_trials.stop_group(process)
    assert len(completed_before) == 1 and len(held) == 1
    shutil.copytree(out, root / "as_killed", symlinks=True)
    return out, completed_before


def as_killed(killed_run) -> Path:
    out = killed_run[0]
    shutil.rmtree(out)
    shutil.copytree(out.parent / "as_killed", out, symlinks=True)
    return out


def test_resume_after_sigkill_loses_and_repeats_nothing(killed_run, reference_run, ray_session, capsys):
    """Killed after Tune deleted the held trial's older checkpoint (a newer one had arrived) but before it
    wrote a new snapshot, as happens between two snapshots: resume moves the newest whole checkpoint where
    the snapshot points, continues from it, and ends as the uninterrupted run. The state is made from the
    killed run's (its held trial has exactly the checkpoint the snapshot names)."""
    from ray.tune import ExperimentAnalysis

    out, completed_before = as_killed(killed_run), killed_run[1]
    trial = next(t for t in ExperimentAnalysis(str(out / "tune")).trials
                 if t.status not in ("TERMINATED", "ERROR") and t.checkpoint is not None)
    named = Path(trial.checkpoint.path)
    assert sorted(p.name for p in named.parent.glob("checkpoint_*")) == [named.name] == ["checkpoint_000000"]
    newer = named.parent / "checkpoint_000001"
    named.rename(newer)  # as if Tune had registered `newer` and deleted `named`
    cut_short = named.parent / "checkpoint_000009"  # a copy a killed worker left half-written (a number Tune
    # will not reach in this run's remaining epochs)
    cut_short.mkdir()
    (cut_short / "state.pt").write_bytes((newer / "state.pt").read_bytes()[:100])

    assert main(["search", "--resume", "--out", str(out)]) == 0
    assert "continues from checkpoint_000001 (the snapshot named checkpoint_000000" in capsys.readouterr().out
    assert not cut_short.exists()
    final = trials_of(out)["trials"]
    assert len(final) == REPRO_TRIALS
    assert all(t["status"] == "TERMINATED" for t in final), [(t["status"], t["error"]) for t in final]
    assert len({t["trial_id"] for t in final}) == REPRO_TRIALS
    by_id = {t["trial_id"]: t for t in final}
    for trial_id, before in completed_before.items():  # kept as they were: not trained again
        after = by_id[trial_id]
        for key in ("val_accuracy", "train_time", "epoch_time", "fingerprint", "node_id"):
            assert after[key] == before[key], key
    interrupted = [t for t in final if t["trial_id"] not in completed_before and t["resumed_from"]]
    assert [t["trial_id"] for t in interrupted] == [trial.trial_id]
    assert interrupted[0]["resumed_from"] == 1  # continued from the moved checkpoint, not from scratch
    # the strategy's state survived: the same architectures as the uninterrupted run, in the same order
    assert fingerprints(out) == fingerprints(reference_run)
    assert by_fingerprint(out) == by_fingerprint(reference_run)  # and each trained to the same accuracy


# ----- faults a long search meets -----
# (resumes of the killed run in a process of their own, with a Ray of its own, as from a shell: Tune stages a
# restored run in a folder of the Ray session named after the run, which restores of one run's state in one
# session share)
def nas_command(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-c", "import sys; from nas.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def by_fingerprint(folder: Path) -> dict[str, float]:
    return {t["fingerprint"]: t["val_accuracy"] for t in trials_of(folder)["trials"] if t["status"] == "TERMINATED"}


def test_a_copied_run_folder_with_a_damaged_checkpoint_resumes_into_itself(killed_run, reference_run, tmp_path):
    """The killed run copied elsewhere, its held trial's checkpoint emptied in the copy, resumed there.
    Ray Tune saves the run's callbacks and its search generator (with the experiment's storage) in its state:
    resumed elsewhere, neither may write to the original's path. The damaged checkpoint is named and its
    trial trains again from scratch (one trial's progress lost, never the trial). The copy ends where an
    uninterrupted run ends."""
    from ray.tune import ExperimentAnalysis

    original = as_killed(killed_run)
    before = files_of(original)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original, copy, symlinks=True)
    trial = next(t for t in ExperimentAnalysis(str(copy / "tune")).trials
                 if t.status not in ("TERMINATED", "ERROR") and t.checkpoint is not None)
    damaged = Path(trial.checkpoint.path) / "state.pt"
    assert damaged.is_relative_to(copy)
    damaged.write_bytes(b"")
    resumed = nas_command("search", "--resume", "--out", str(copy))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"its checkpoint {damaged} is damaged (an empty file); the trial starts again from scratch" in resumed.stdout
    assert files_of(original) == before  # not one byte of the original changed
    final = trials_of(copy)
    assert final["counts"]["completed"] == REPRO_TRIALS, resumed.stdout
    assert json.loads((copy / "summary.json").read_text())["counts"]["completed"] == REPRO_TRIALS
    assert all(t["checkpoint"].startswith(str(copy)) for t in final["trials"] if t["checkpoint"])
    assert {t["trial_id"]: t["resumed_from"] for t in final["trials"]}[trial.trial_id] == 0  # from scratch
    # the same search as the uninterrupted one: architectures, order and accuracies
    assert fingerprints(copy) == fingerprints(reference_run)
    assert by_fingerprint(copy) == by_fingerprint(reference_run)


DYING_TRIALS = 3  # the reproducible search's first three trials (the same proposals: a later --trials wins)


def dying_run(files, root: Path, *flags: str) -> tuple[Path, str, str]:
    """The reproducible search cut to its first trials (with progress lines), whose second trial's worker is
    SIGKILLed mid-trial."""
    out = root / "run"
    argv = [a for a in repro_args(files, out) if a != "--quiet"] + ["--trials", str(DYING_TRIALS), *flags]
    process = held_trials.start_search(argv, root / "gate", die=True)
    try:
        assert process.wait(timeout=300) == 0, held_trials.output(root / "gate")[1][-3000:]
    finally:
        held_trials.stop_group(process)
    return (out, *held_trials.output(root / "gate"))


def check_piped_output(stdout: str, stderr: str, trials: int) -> None:
    """What a search from a shell prints with its output piped (not a terminal): the data first, then Ray; a
    line per trial as it ends (finished or failed); nothing from Ray or Tune themselves, even when a worker dies."""
    lines = stdout.splitlines()
    assert lines[0] == "loading digits" and "starting Ray (local)" in lines
    assert [line[:6] for line in lines if line.startswith("[")] == [f"[{i}/{trials}] " for i in range(1, trials + 1)]
    chatter = ("Trial status", "Tune", "ray.", "INFO", "WARNING", "Started a local Ray", "Logical resource",
               "Current time", "╭", "Trial trial_", "(raylet)", "Trials did not complete")
    assert not [line for line in lines + stderr.splitlines() if any(c in line for c in chatter)], stdout + stderr


def test_a_killed_worker_is_recorded_with_its_reason_and_retry_errored_keeps_the_rerun(files, reference_run, tmp_path,
                                                                                      capsys, ray_session):
    out, stdout, stderr = dying_run(files, tmp_path)
    trials = trials_of(out)["trials"]
    died = [t for t in trials if t["status"] == "ERROR"]
    assert len(died) == 1 and "died" in died[0]["error"].lower(), [(t["status"], t["error"]) for t in trials]
    check_piped_output(stdout, stderr, DYING_TRIALS)
    assert f"[{died[0]['index'] + 1}/{DYING_TRIALS}] trial {died[0]['index'] + 1}  FAILED: " in stdout
    assert "unknown error" not in stdout  # the live line has the reason
    summary = json.loads((out / "summary.json").read_text())
    assert [f["trial"] for f in summary["failures"]] == [died[0]["index"] + 1]
    first_session = summary["timings"]

    assert main(["search", "--resume", "--retry-errored", "--out", str(out), "--quiet"]) == 0
    after = {t["trial_id"]: t for t in trials_of(out)["trials"]}
    rerun = after[died[0]["trial_id"]]
    assert rerun["status"] == "TERMINATED" and rerun["error"] == ""  # trials.json has the rerun's result
    reference = by_fingerprint(reference_run)
    assert rerun["val_accuracy"] == reference[rerun["fingerprint"]]  # trained again from scratch: as uninterrupted
    csv_rows = (out / "trials.csv").read_text().splitlines()[1:]
    assert all(",TERMINATED," in row for row in csv_rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["completed"] == DYING_TRIALS and summary["counts"]["failed"] == 0
    # the timings add the resume's to the first session's (its search time is not replaced by the rerun's)
    assert set(first_session) <= set(summary["timings"])
    assert all(summary["timings"][k] >= first_session[k] for k in first_session)
    assert summary["timings"]["search_s"] > first_session["search_s"]
    best = max(after.values(), key=lambda t: (t["val_accuracy"], -t["params"], -t["index"]))
    assert summary["best"]["trial_id"] == best["trial_id"]


def test_max_failures_retries_a_killed_worker_from_its_checkpoint(files, reference_run, tmp_path, ray_session,
                                                                  monkeypatch, capsys):
    # in this process, on the session's Ray (the run above checks what a shell sees of a worker's death)
    out = tmp_path / "run"
    argv = [a for a in repro_args(files, out) if a != "--quiet"] + ["--trials", str(DYING_TRIALS), "--max-failures", "1"]
    monkeypatch.setattr(nas.search.run, "make_trainable", held_trials.holding_trainable(tmp_path / "gate", die=True))
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    trials = trials_of(out)["trials"]
    assert all(t["status"] == "TERMINATED" for t in trials), [(t["status"], t["error"]) for t in trials]
    retried = [t for t in trials if t["failures"]]
    assert len(retried) == 1 and retried[0]["resumed_from"] == 1  # continued from its first epoch's checkpoint
    assert fingerprints(out) == fingerprints(reference_run)[:DYING_TRIALS]  # as uninterrupted
    reference = by_fingerprint(reference_run)
    assert by_fingerprint(out) == {fingerprint: reference[fingerprint] for fingerprint in fingerprints(out)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == [{"trial": retried[0]["index"] + 1, "trial_id": retried[0]["trial_id"],
                                    "status": "TERMINATED", "failures": 1, "error": retried[0]["last_failure"]}]
    assert f"trial {retried[0]['index'] + 1} failed 1x, retried, finished" in stdout


def test_earlier_sessions_timings_are_read_and_a_missing_or_damaged_summary_gives_none(tmp_path):
    from nas.search.report import earlier_timings

    assert earlier_timings(tmp_path) == {}  # a session killed before its end wrote no summary
    (tmp_path / "summary.json").write_text("{not json")
    assert earlier_timings(tmp_path) == {}
    (tmp_path / "summary.json").write_text(json.dumps({"timings": [1, 2]}))
    assert earlier_timings(tmp_path) == {}
    (tmp_path / "summary.json").write_text(json.dumps({"timings": {"search_s": 12.5, "data_s": 1, "odd": "x",
                                                                   "flag": True}}))
    assert earlier_timings(tmp_path) == {"search_s": 12.5, "data_s": 1.0}
