"""`nas search` end to end on digits: every strategy from the CLI, failing trials, duplicates,
reproducibility, resume after SIGKILL, and a two-node Ray cluster. Tiny spaces, 1-2 epochs."""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import held_trials
import pytest
import torch
from ray.tune.search import Searcher

from nas.cli import main
from nas.compiler import build
from nas.genome import Genome
from nas.search.run import SearchConfig, SearchError, run_search
from nas.search.strategies import make_searcher
from nas.search.tune_searcher import TuneSearcher
from nas.spaces import load_space

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

TINY_SPACE = """
kind: stages
name: tiny
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8, act: relu, max_size: 32}
stages:
  - {width: [8, 12], stride: 1}
  - {width: [12, 16], stride: 2}
repeats: [1]
families:
  residual:
    template: basic
    params: {se: [0.0, 0.25]}
  mbconv:
    params: {kernel: [3, 5], expansion: [2.0, 3.0]}
head: [{op: global_avgpool}]
"""

# two architectures only: a search asking for more runs out of new ones
PAIR_SPACE = """
kind: stages
name: pair
input: {channels: 1, size: 8}
num_classes: 10
stem: {out: 8, act: relu, max_size: 32}
stages:
  - {width: [8, 12], stride: 1}
repeats: [1]
families:
  residual:
    template: basic
head: [{op: global_avgpool}]
"""

TINY_BASE = """
name: tiny_base
input: {channels: 1, size: 8}
num_classes: 10
stem: [{op: conv, out: 8, kernel: 3}]
stages:
  - {cell: basic, out: 8}
  - {cell: basic, out: 16, stride: 2}
head: [{op: global_avgpool}]
"""

FAST = ["--epochs", "1", "--train-limit", "300"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spaces")
    (folder / "tiny.yaml").write_text(TINY_SPACE)
    (folder / "pair.yaml").write_text(PAIR_SPACE)
    (folder / "tiny_base.yaml").write_text(TINY_BASE)
    return folder


def trials_of(folder):
    return json.loads((Path(folder) / "trials.json").read_text())


def fingerprints(folder):
    return [t["fingerprint"] for t in trials_of(folder)["trials"]]


STRATEGY_ARGS = {
    "random": ["--trials", "2"],
    "evolution": ["--trials", "3", "--option", "population=2", "--option", "sample_size=2"],
    "rl": ["--trials", "2"],
    "optuna": ["--trials", "3", "--objectives", "val_accuracy", "params"],
    "scaling": ["--trials", "2", "--option", "grid=[[1.2, 1.1, 1.0]]", "--option", "phis=2"],
}


@pytest.mark.parametrize("strategy", list(STRATEGY_ARGS))
def test_each_strategy_runs_end_to_end_from_the_cli(strategy, files, tmp_path, ray_session, capsys):
    out = tmp_path / "run"
    extra = STRATEGY_ARGS[strategy]
    if strategy == "scaling":
        extra = extra + ["--option", f"base={files / 'tiny_base.yaml'}"]
    code = main(["search", "--strategy", strategy, "--space", str(files / "tiny.yaml"), "--concurrent", "2",
                 "--out", str(out), *FAST, *extra])
    assert code == 0
    wanted = int(extra[extra.index("--trials") + 1])
    printed = capsys.readouterr().out
    assert f"[{wanted}/{wanted}] trial" in printed and "leaderboard" in printed and f"run folder: {out}" in printed
    record = trials_of(out)
    trials = record["trials"]
    assert len(trials) == wanted and record["counts"]["completed"] == wanted
    assert len(set(fingerprints(out))) == wanted  # never the same architecture twice
    for trial in trials:
        assert trial["status"] == "TERMINATED" and trial["epoch"] == 1 and trial["sample"]
        assert 0.0 <= trial["val_accuracy"] <= 1.0 and trial["params"] > 0 and trial["flops"] > 0
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert len(csv_lines) == wanted + 1 and csv_lines[0].startswith("index,trial_id,status,fingerprint")
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"]
    assert 0.0 <= best["test_accuracy"] <= 1.0
    assert best["val_accuracy"] == max(t["val_accuracy"] for t in trials)
    # the best genome is a genome file `nas build` reads, and the weights are that network's
    assert main(["build", str(out / "best_genome.yaml")]) == 0
    genome = Genome.load(out / "best_genome.yaml")
    assert genome.fingerprint() == best["fingerprint"]
    build(genome).load_state_dict(torch.load(out / "best_weights.pt", weights_only=True))
    assert (out / "best_so_far.png").read_bytes()[:4] == b"\x89PNG"
    if strategy == "scaling":  # phi = 1 for the grid point, then phi = 2 for the best point
        assert [t["sample"]["phi"] for t in trials] == [1, 2]


class Breaking(Searcher):
    """A strategy whose n-th suggestions are broken on purpose (by their order): `breaks[n]` is merged in."""

    def __init__(self, inner: Searcher, breaks: dict):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.breaks, self.count = inner, breaks, 0

    def set_search_properties(self, metric, mode, config, **spec):
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id):
        config = self.inner.suggest(trial_id)
        if isinstance(config, dict):
            change = self.breaks.get(self.count, {})
            self.count += 1
            config = {**config, **{k: ({**config.get(k, {}), **v} if k == "train" else v) for k, v in change.items()}}
        return config

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path):
        with open(checkpoint_path, "wb") as file:
            pickle.dump((self.count, self.inner.get_state()), file)

    def restore(self, checkpoint_path):
        with open(checkpoint_path, "rb") as file:
            self.count, state = pickle.load(file)
        self.inner.set_state(state)


def test_failing_trials_fail_alone_with_their_reason_recorded(files, tmp_path, ray_session):
    space = load_space(str(files / "tiny.yaml"), input_channels=1, input_size=8, num_classes=10)
    inner = TuneSearcher(make_searcher("random", space, seed=3, max_trials=5))  # a user's searcher wraps ours
    breaks = {1: {"train": {"lr": 1e12}},                 # the loss blows up
              2: {"genome": {"name": "broken"}},            # the trainable raises (no such genome)
              3: {"train": {"max_params": 50}}}             # over the size cap: fails before allocating
    config = SearchConfig(strategy="random", space=str(files / "tiny.yaml"), trials=5, concurrent=2,
                          train_limit=300, train={"epochs": 2})
    outcome = run_search(config, tmp_path / "run", searcher=Breaking(inner, breaks), verbose=False)
    trials = outcome.records
    assert [t["status"] for t in trials] == ["TERMINATED", "ERROR", "ERROR", "ERROR", "TERMINATED"]
    assert trials[1]["error"] == "loss became NaN at epoch 1"
    assert trials[2]["error"].startswith("GenomeError: stem: missing")
    assert trials[3]["error"].startswith("genome too big:") and "max_params 50" in trials[3]["error"]
    assert outcome.summary["counts"] == {"trials": 5, "completed": 2, "failed": 3, "interrupted": 0, "unfinished": 0,
                                         "duplicate_trials": 0}
    assert outcome.best["index"] in (0, 4)
    csv_text = (tmp_path / "run" / "trials.csv").read_text()
    assert "loss became NaN at epoch 1" in csv_text


def test_asha_stops_a_trial_that_lags_at_a_rung(files, tmp_path, ray_session):
    space = load_space(str(files / "tiny.yaml"), input_channels=1, input_size=8, num_classes=10)
    inner = TuneSearcher(make_searcher("random", space, seed=3, max_trials=2))
    breaks = {0: {"train": {"lr": 0.3}},  # learns fast: above chance after its first epoch
              1: {"train": {"lr": 1e-9}}}  # learns nothing: chance accuracy after its first epoch
    config = SearchConfig(strategy="random", space=str(files / "tiny.yaml"), trials=2, concurrent=1,
                          scheduler="asha", train_limit=300, train={"epochs": 4, "augment": "none"})
    outcome = run_search(config, tmp_path / "run", searcher=Breaking(inner, breaks), verbose=False)
    first, lagging = outcome.records
    assert first["status"] == lagging["status"] == "TERMINATED"
    assert first["epoch"] == 4  # alone at every rung: runs to the end
    assert lagging["val_accuracy"] < first["val_accuracy"]
    assert lagging["epoch"] < 4  # below the first trial at a rung (epoch 1 or 2): stopped there
    assert outcome.best["index"] == 0


def test_duplicates_are_counted_and_an_exhausted_space_ends_the_search(files, tmp_path, ray_session):
    config = SearchConfig(strategy="random", space=str(files / "pair.yaml"), trials=4, train_limit=200,
                          train={"epochs": 1})
    outcome = run_search(config, tmp_path / "run", verbose=False)
    assert len(outcome.records) == 2  # only two architectures exist
    assert len(set(t["fingerprint"] for t in outcome.records)) == 2
    assert outcome.summary["duplicates_avoided"] >= 1
    assert trials_of(tmp_path / "run")["duplicates_avoided"] == outcome.summary["duplicates_avoided"]
    with pytest.raises(SearchError, match="already holds a search"):
        run_search(config, tmp_path / "run", verbose=False)
    with pytest.raises(SearchError, match="no such run folder to resume"):
        run_search(None, tmp_path / "elsewhere", resume=True, verbose=False)


# ----- reproducibility and resume (evolution, one trial at a time) -----
REPRO_TRIALS = 5


def repro_args(files, out):
    return ["search", "--strategy", "evolution", "--space", str(files / "tiny.yaml"), "--trials", str(REPRO_TRIALS),
            "--epochs", "2", "--train-limit", "300", "--concurrent", "1", "--seed", "7",
            "--option", "population=2", "--option", "sample_size=2", "--out", str(out), "--quiet"]


@pytest.fixture(scope="module")
def reference_run(files, tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(repro_args(files, out)) == 0
    return out


def test_same_seed_same_architectures_in_the_same_order(files, reference_run, tmp_path):
    assert main(repro_args(files, tmp_path / "again")) == 0
    first, second = fingerprints(reference_run), fingerprints(tmp_path / "again")
    assert len(first) == REPRO_TRIALS and len(set(first)) == REPRO_TRIALS
    assert first == second
    accuracies = [[t["val_accuracy"] for t in trials_of(f)["trials"]] for f in (reference_run, tmp_path / "again")]
    assert accuracies[0] == accuracies[1]  # training is seeded by the genome's fingerprint


@pytest.fixture(scope="module")
def killed_run(files, tmp_path_factory):
    """The reproducible search SIGKILLed (Ray processes included) in a state the test chose: one trial
    finished, the next held after its first epoch's checkpoint, which Tune's snapshot names (`held_trials`).
    Returns the run folder and the finished trials' records; `as_killed` puts the folder back as it was
    (at the same path: Ray Tune's experiment state names its own folder)."""
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


def test_resume_after_sigkill_loses_and_repeats_nothing(killed_run, reference_run, tmp_path, ray_session):
    out, completed_before = as_killed(killed_run), killed_run[1]
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == 0
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
    assert [t["resumed_from"] for t in interrupted] == [1]  # the held trial continued from its checkpoint
    # the strategy's state survived: the same architectures as the uninterrupted run, in the same order
    assert fingerprints(out) == fingerprints(reference_run)


# ----- scale-out -----
CLUSTER_SCRIPT = textwrap.dedent("""
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from nas.search.run import SearchConfig, run_search

    space, out = sys.argv[1], sys.argv[2]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        config = SearchConfig(strategy="random", space=space, trials=4, concurrent=2, train_limit=500,
                              train={"epochs": 2})
        run_search(config, out, address=cluster.address, verbose=False)
    finally:
        ray.shutdown()
        cluster.shutdown()
""")


def test_a_two_node_cluster_runs_trials_on_both_nodes(files, tmp_path):
    out = tmp_path / "run"
    process = subprocess.run([PYTHON, "-c", CLUSTER_SCRIPT, str(files / "tiny.yaml"), str(out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=400, start_new_session=True)
    assert process.returncode == 0, process.stderr[-3000:]
    trials = trials_of(out)["trials"]
    assert len(trials) == 4 and all(t["status"] == "TERMINATED" for t in trials)
    assert len({t["node_id"] for t in trials}) == 2  # both nodes trained trials
    assert all(t["node_ip"] for t in trials)


def test_resume_when_the_snapshot_names_a_checkpoint_a_newer_one_replaced(killed_run, tmp_path, ray_session):
    """Killed after Tune deleted a trial's older checkpoint (a newer one had arrived) but before it wrote a
    new snapshot: resume moves the newest whole checkpoint where the snapshot points and continues from it.
    The state is made from the killed run's (its held trial has exactly the checkpoint the snapshot names)."""
    from ray.tune import ExperimentAnalysis

    out = as_killed(killed_run)
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

    resumed = subprocess.run([PYTHON, "-c", "import sys; from nas.cli import main; sys.exit(main(sys.argv[1:]))",
                              "search", "--resume", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continues from checkpoint_000001 (the snapshot named checkpoint_000000" in resumed.stdout
    final = {t["trial_id"]: t for t in trials_of(out)["trials"]}
    assert len(final) == REPRO_TRIALS, resumed.stdout
    assert all(t["status"] == "TERMINATED" for t in final.values()), [(t["status"], t["error"]) for t in final.values()]
    assert final[trial.trial_id]["resumed_from"] == 1  # continued from the moved checkpoint, not from scratch
    assert not cut_short.exists()


def test_without_address_a_search_starts_its_own_ray_unless_ray_address_names_one(monkeypatch):
    """A plain ray.init() joins whatever cluster `ray start` (or ray.cluster_utils) last left in Ray's temp
    folder, and then refuses num_cpus; a search without --address starts its own ("local") instead.
    Ray's own RAY_ADDRESS variable, set by the user, is honoured like --address."""
    import ray

    from nas.search.run import ensure_ray, ray_address

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(None) is None and ensure_ray(ray_address(None))
    assert calls[-1]["address"] == "local" and calls[-1]["num_cpus"] == os.cpu_count()
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert ensure_ray(ray_address(None)) and calls[-1]["address"] == "10.0.0.5:6379" and "num_cpus" not in calls[-1]
    assert ray_address("auto") == "auto"  # --address wins


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


def test_a_copied_run_folder_resumes_into_itself_and_never_touches_the_original(killed_run, reference_run, tmp_path):
    """Ray Tune saves the run's callbacks and its search generator (with the experiment's storage) in its
    state: resumed elsewhere, neither may write to the original's path."""
    original = as_killed(killed_run)
    before = files_of(original)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(original, copy, symlinks=True)
    resumed = nas_command("search", "--resume", "--out", str(copy), "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert files_of(original) == before  # not one byte of the original changed
    final = trials_of(copy)
    assert final["counts"]["completed"] == REPRO_TRIALS
    assert json.loads((copy / "summary.json").read_text())["counts"]["completed"] == REPRO_TRIALS
    assert all(t["checkpoint"].startswith(str(copy)) for t in final["trials"] if t["checkpoint"])
    # the same search as the uninterrupted one: architectures, order and accuracies
    assert fingerprints(copy) == fingerprints(reference_run)
    assert by_fingerprint(copy) == by_fingerprint(reference_run)


def test_a_damaged_checkpoint_is_named_and_its_trial_starts_again(killed_run, reference_run):
    """A held trial's checkpoint truncated to 0 bytes: named on resume, and the trial trains again from scratch
    (one trial's progress lost, never the trial), ending where an uninterrupted run ends."""
    from ray.tune import ExperimentAnalysis

    out = as_killed(killed_run)
    trial = next(t for t in ExperimentAnalysis(str(out / "tune")).trials
                 if t.status not in ("TERMINATED", "ERROR") and t.checkpoint is not None)
    damaged = Path(trial.checkpoint.path) / "state.pt"
    damaged.write_bytes(b"")
    resumed = nas_command("search", "--resume", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    printed = resumed.stdout
    assert f"its checkpoint {damaged} is damaged (an empty file); the trial starts again from scratch" in printed
    final = {t["trial_id"]: t for t in trials_of(out)["trials"]}
    assert all(t["status"] == "TERMINATED" for t in final.values()), [(t["status"], t["error"]) for t in final.values()]
    assert final[trial.trial_id]["resumed_from"] == 0  # from scratch
    assert len(final) == REPRO_TRIALS, printed
    assert by_fingerprint(out) == by_fingerprint(reference_run)


def dying_run(files, root: Path, *flags: str) -> tuple[Path, str, str]:
    """The reproducible search (with progress lines) whose second trial's worker is SIGKILLed mid-trial."""
    out = root / "run"
    argv = [a for a in repro_args(files, out) if a != "--quiet"] + list(flags)
    process = held_trials.start_search(argv, root / "gate", die=True)
    try:
        assert process.wait(timeout=300) == 0, held_trials.output(root / "gate")[1][-3000:]
    finally:
        held_trials.stop_group(process)
    return (out, *held_trials.output(root / "gate"))


def test_a_killed_worker_is_recorded_with_its_reason_and_retry_errored_keeps_the_rerun(files, reference_run, tmp_path,
                                                                                      capsys, ray_session):
    out, stdout, stderr = dying_run(files, tmp_path)
    trials = trials_of(out)["trials"]
    died = [t for t in trials if t["status"] == "ERROR"]
    assert len(died) == 1 and "died" in died[0]["error"].lower(), [(t["status"], t["error"]) for t in trials]
    assert "FAILED: " in stdout and "unknown error" not in stdout  # the live line has the reason
    assert "(raylet)" not in stdout + stderr and "Trials did not complete" not in stdout + stderr  # Ray's own
    summary = json.loads((out / "summary.json").read_text())
    assert [f["trial"] for f in summary["failures"]] == [died[0]["index"] + 1]

    assert main(["search", "--resume", "--retry-errored", "--out", str(out), "--quiet"]) == 0
    after = {t["trial_id"]: t for t in trials_of(out)["trials"]}
    rerun = after[died[0]["trial_id"]]
    assert rerun["status"] == "TERMINATED" and rerun["error"] == ""  # trials.json has the rerun's result
    reference = by_fingerprint(reference_run)
    assert rerun["val_accuracy"] == reference[rerun["fingerprint"]]  # trained again from scratch: as uninterrupted
    csv_rows = (out / "trials.csv").read_text().splitlines()[1:]
    assert all(",TERMINATED," in row for row in csv_rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["completed"] == REPRO_TRIALS and summary["counts"]["failed"] == 0
    best = max(after.values(), key=lambda t: (t["val_accuracy"], -t["params"], -t["index"]))
    assert summary["best"]["trial_id"] == best["trial_id"]


def test_max_failures_retries_a_killed_worker_from_its_checkpoint(files, reference_run, tmp_path, ray_session):
    out, stdout, _ = dying_run(files, tmp_path, "--max-failures", "1")
    trials = trials_of(out)["trials"]
    assert all(t["status"] == "TERMINATED" for t in trials), [(t["status"], t["error"]) for t in trials]
    retried = [t for t in trials if t["failures"]]
    assert len(retried) == 1 and retried[0]["resumed_from"] == 1  # continued from its first epoch's checkpoint
    assert fingerprints(out) == fingerprints(reference_run)
    assert by_fingerprint(out) == by_fingerprint(reference_run)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == [{"trial": retried[0]["index"] + 1, "trial_id": retried[0]["trial_id"],
                                    "status": "TERMINATED", "failures": 1, "error": retried[0]["last_failure"]}]
    assert f"trial {retried[0]['index'] + 1} failed 1x, retried, finished" in stdout
