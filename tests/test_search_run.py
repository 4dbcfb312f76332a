"""`nas search` end to end on digits: every strategy from the CLI, failing trials, duplicates,
and a two-node Ray cluster (resumes: test_search_resume.py). Tiny spaces, 1-2 epochs."""
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from ray.tune.search import Searcher

import nas
from nas.cli import main
from nas.compiler import build
from nas.genome import Genome
from nas.search import best as search_best, cost as search_cost, report as search_report
from nas.search.run import SearchConfig, SearchError, run_search
from nas.search.strategies import make_searcher
from nas.search.strategies.random_search import RandomSearcher
from nas.engine.searcher import TuneSearcher
from nas.spaces import load_space
from tests.tiny_spaces import PAIR_SPACE, TINY_MIXED as TINY_SPACE

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


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
    "rl": ["--trials", "2"],
    "optuna": ["--trials", "3", "--objectives", "val_accuracy", "params"],
    "scaling": ["--trials", "2", "--option", "grid=[[1.2, 1.1, 1.0]]", "--option", "phis=2"],
}


def search_argv(strategy, files, out):
    extra = STRATEGY_ARGS[strategy]
    if strategy == "scaling":
        extra = extra + ["--option", f"base={files / 'tiny_base.yaml'}"]
    return ["search", "--strategy", strategy, "--space", str(files / "tiny.yaml"), "--concurrent", "2",
            "--out", str(out), *FAST, *extra]


# rl and scaling: no other test runs them from the CLI through Ray. The others' runs: optuna's is
# test_loggers.py's (with --storage, read by its tests as well); evolution's is test_search_resume.py's
# reproducible search (compared trial by trial with a resumed one); random's are test_user_data.py's,
# test_search_failures.py's and test_interrupts.py's (every strategy's ask/tell loop: test_strategies_without_ray.py)
@pytest.mark.parametrize("strategy", [name for name in STRATEGY_ARGS if name != "optuna"])
def test_a_strategy_no_other_test_runs_from_the_cli_runs_end_to_end(strategy, files, tmp_path, ray_session, capsys):
    # in this process, on the session's Ray (what a search from a shell prints, its output piped, is checked
    # on test_search_resume.py's searches from a shell)
    out = tmp_path / "run"
    assert main(search_argv(strategy, files, out)) == 0
    check_cli_run(strategy, out, capsys.readouterr().out)


def check_cli_run(strategy, out, printed):
    """What `nas search` (search_argv's, STRATEGY_ARGS[strategy]) printed and left in its run folder `out`."""
    extra = STRATEGY_ARGS[strategy]
    wanted = int(extra[extra.index("--trials") + 1])
    assert f"[{wanted}/{wanted}] trial" in printed and "leaderboard" in printed and f"run folder: {out}" in printed
    record = trials_of(out)
    trials = record["trials"]
    assert len(trials) == wanted and record["counts"]["completed"] == wanted
    assert len(set(fingerprints(out))) == wanted  # never the same architecture twice
    for trial in trials:
        assert trial["status"] == "TERMINATED" and trial["epoch"] == 1 and trial["sample"]
        assert 0.0 <= trial["val_accuracy"] <= 1.0 and trial["params"] > 0 and trial["flops"] > 0
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert len(csv_lines) == wanted + 1 and csv_lines[0].startswith("trial,trial_id,status,fingerprint")
    # one number per trial: the screen's "trial N", trials.csv's and the TensorBoard run's (the trial's folder)
    assert [t["trial"] for t in trials] == list(range(1, wanted + 1))
    assert {p.name for p in (out / "tune").glob("trial_*") if p.is_dir()} == \
        {f"trial_{t['trial']}_{t['trial_id']}" for t in trials}
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
    contract = json.loads((out / best["input_file"]).read_text())  # what the best weights must be fed
    assert contract["shape"] == [genome.input.channels, *genome.input.size] and contract["pixel_max"] == 16.0
    if strategy == "scaling":  # phi = 1 for the grid point, then phi = 2 for the best point
        assert [t["sample"]["phi"] for t in trials] == [1, 2]
        assert "scaling of tiny_base:" in printed  # it starts from a genome, not from --space


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


def test_asha_stops_a_lagging_trial_and_a_failing_trial_fails_alone_with_its_reason_recorded(files, tmp_path,
                                                                                             ray_session):
    # one run for both (each run costs a new Ray worker process, ~4 CPU-s); the failing trial comes last, as a
    # failed trial's worker is not reused; a trainable that raised reaches Tune's errors in test_train.py's
    # trainable test
    space = load_space(str(files / "tiny.yaml"), input_channels=1, input_size=8, num_classes=10)
    inner = TuneSearcher(make_searcher("random", space, seed=3, max_trials=3))  # a user's searcher wraps ours
    breaks = {0: {"train": {"lr": 0.3}},         # learns fast: above chance after its first epoch
              1: {"train": {"lr": 1e-9}},        # learns nothing: chance accuracy after its first epoch
              2: {"train": {"max_params": 100}}}  # over the size cap: refused before it is built
    config = SearchConfig(strategy="random", space=str(files / "tiny.yaml"), trials=3, concurrent=1,
                          scheduler="asha", train_limit=300, train={"epochs": 4, "augment": "none"})
    outcome = run_search(config, tmp_path / "run", searcher=Breaking(inner, breaks), verbose=False)
    first, lagging, failed = outcome.records
    assert first["status"] == lagging["status"] == "TERMINATED"
    assert first["epoch"] == 4  # alone at every rung: runs to the end
    assert lagging["val_accuracy"] < first["val_accuracy"]
    assert lagging["epoch"] < 4  # below the first trial at a rung (epoch 1 or 2): stopped there
    assert failed["status"] == "ERROR"
    assert failed["error"].startswith("genome too big: ") and "> max_params 100" in failed["error"]
    assert outcome.summary["counts"] == {"trials": 3, "completed": 2, "failed": 1, "interrupted": 0, "unfinished": 0,
                                         "duplicate_trials": 0}
    assert outcome.best["index"] == 0
    assert "> max_params 100" in (tmp_path / "run" / "trials.csv").read_text()


class HandMade(RandomSearcher):
    """A strategy of a user's own, given from Python (not registered)."""
    name = "handmade"


def test_duplicates_are_counted_and_an_exhausted_space_ends_the_search(files, tmp_path, ray_session, monkeypatch):
    """A strategy given from Python (a plain ask/tell one, wrapped by the engine as a registered one is) over a
    space of two architectures: duplicates are counted, the search ends when the space is exhausted, and the
    records call the strategy by its own name."""
    rankings = []  # the trials are ranked once as they end (EarlyBest); the finish and its cost take that

    def counted(rank):
        return lambda records: rankings.append(len(records)) or rank(records)

    for module in (search_best, search_cost, search_report):
        monkeypatch.setattr(module, "ranked", counted(module.ranked))
    config = SearchConfig(strategy="random", space=str(files / "pair.yaml"), trials=4, train_limit=200,
                          train={"epochs": 1})
    space = load_space(str(files / "pair.yaml"), input_channels=1, input_size=8, num_classes=10)
    outcome = run_search(config, tmp_path / "run", verbose=False, searcher=HandMade(space, seed=0, max_trials=4))
    assert rankings == [2] and outcome.best["test_accuracy"] is not None
    assert len(outcome.records) == 2  # only two architectures exist
    assert len(set(t["fingerprint"] for t in outcome.records)) == 2
    assert outcome.summary["duplicates_avoided"] >= 1
    assert trials_of(tmp_path / "run")["duplicates_avoided"] == outcome.summary["duplicates_avoided"]
    assert outcome.summary["config"]["strategy"] == "handmade"
    saved = json.loads((tmp_path / "run" / "search.json").read_text())
    assert saved["strategy"] == "handmade" and saved["searcher"].endswith(":HandMade")
    with pytest.raises(SearchError, match="given from Python"):
        run_search(None, tmp_path / "run", resume=True, verbose=False)
    with pytest.raises(SearchError, match="already holds a search"):
        run_search(config, tmp_path / "run", verbose=False)
    with pytest.raises(SearchError, match="no such run folder to resume"):
        run_search(None, tmp_path / "elsewhere", resume=True, verbose=False)
    assert nas.run_search is run_search and nas.SearchConfig is SearchConfig


# ----- reproducibility and resume (evolution, one trial at a time) -----
# ----- scale-out -----
CLUSTER_SCRIPT = textwrap.dedent("""
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from nas.search.run import SearchConfig, run_search

    space, out = sys.argv[1], sys.argv[2]
    # the head runs the driver and no trials (no CPU to offer, as `ray start --head --num-cpus=0`); the worker
    # node, marked with a resource of its own, has the only CPU, so every trial has to be placed there
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={"worker_node": 1})
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address)
        nodes = {("worker" if "worker_node" in node["Resources"] else "head"): node["NodeID"] for node in ray.nodes()}
        ray.shutdown()
        config = SearchConfig(strategy="random", space=space, trials=2, concurrent=2, train_limit=300,
                              train={"epochs": 1})
        run_search(config, out, address=cluster.address, verbose=False)
        print(json.dumps(nodes))
    finally:
        ray.shutdown()
        cluster.shutdown()
""")


def test_a_cluster_runs_the_trials_on_another_node_than_the_driver(files, tmp_path):
    """Deterministic: with trials on two nodes of one CPU each, which node a trial lands on depends on timing
    (Ray Tune reuses a finished trial's worker for the next trial), so the head offers no CPU at all."""
    out = tmp_path / "run"
    process = subprocess.run([PYTHON, "-c", CLUSTER_SCRIPT, str(files / "tiny.yaml"), str(out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=400, start_new_session=True)
    assert process.returncode == 0, process.stderr[-3000:]
    nodes = json.loads(process.stdout.strip().splitlines()[-1])
    assert set(nodes) == {"head", "worker"} and nodes["head"] != nodes["worker"]
    trials = trials_of(out)["trials"]
    assert len(trials) == 2 and all(t["status"] == "TERMINATED" for t in trials)
    assert {t["node_id"] for t in trials} == {nodes["worker"]}  # trained on the worker node, not the driver's
    assert all(t["node_ip"] for t in trials)


def test_without_address_a_search_starts_its_own_ray_unless_ray_address_names_one(monkeypatch):
    """A plain ray.init() joins whatever cluster `ray start` (or ray.cluster_utils) last left in Ray's temp
    folder, and then refuses num_cpus; a search without --address starts its own ("local") instead.
    Ray's own RAY_ADDRESS variable, set by the user, is honoured like --address."""
    import ray

    from nas.engine.session import ensure_ray, ray_address

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(None) is None and ensure_ray(ray_address(None))
    assert calls[-1]["address"] == "local" and calls[-1]["num_cpus"] == os.cpu_count()
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert ensure_ray(ray_address(None)) and calls[-1]["address"] == "10.0.0.5:6379" and "num_cpus" not in calls[-1]
    assert ray_address("auto") == "auto"  # --address wins
