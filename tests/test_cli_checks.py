"""Bad arguments are answered before torch or Ray is imported: each bad command runs in-process in one
fresh interpreter (`nas.cli.main`), which reports its exit status, its error line and whether torch or
Ray got imported. No timing is asserted (benchmarks/cli_checks.py times them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (command, words of its one error line); {file} is an existing file, {tmp} a scratch folder
BAD = [
    (["search", "--strategy", "random", "--epochs", "0"], "epochs must be a positive integer"),
    (["search", "--strategy", "random", "--trials", "-1"], "trials must be a positive integer"),
    (["search", "--strategy", "random", "--dataset", "digts"], "did you mean 'digits'"),
    (["search", "--strategy", "random", "--data-dir", "{file}"], "is a file, not a folder"),
    (["search", "--strategy", "nope"], "invalid choice: 'nope'"),
    (["search", "--strategy", "random", "--space", "macor"], "unknown search space 'macor'"),
    (["search", "--strategy", "random", "--space", "{tmp}/missing.yaml"], "no such search-space file"),
    (["search", "--epochs", "3"], "--strategy is required"),
    (["search", "--resume", "--out", "{tmp}/no-run"], "no such run folder to resume"),
    (["search", "--strategy", "optuna", "--option", "sampler=nope"], "option sampler: expected one of tpe, nsga2"),
    (["search", "--strategy", "evolution", "--option", "populaton=20"], "has no option 'populaton'"),
    (["train", "{tmp}/missing.yaml"], "no such genome file"),
    (["train", "resnet2O"], "unknown baseline 'resnet2O'"),
    (["train", "resnet20", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "resnet20", "--dataset", "fashion-mnist"], "did you mean 'fashion_mnist'"),
    (["train", "resnet20", "--dataset", "cifar10", "--data-dir", "{file}"], "is a file, not a folder"),
    (["compare", "--epochs", "0"], "epochs must be a positive integer"),
    (["compare", "{tmp}"], "not a search run folder"),
    (["compare", "--baselines", "nonesuch"], "unknown baseline 'nonesuch'"),
    (["compare", "--skeleton", "{tmp}/missing.yaml"], "no such genome file"),
    (["compare", "--dataset", "digts"], "did you mean 'digits'"),
    (["compare", "--data-dir", "{file}"], "is a file, not a folder"),
    (["compare", "--out", "{file}"], "is a file, not a folder"),
    (["compare", "--out", "{file}/run"], "which is a file, not a folder"),
    (["compare", "--out", "{tmp}"], "is not empty and holds no comparison"),
    (["export", "{tmp}/missing.yaml", "--format", "exported", "-o", "{tmp}/m.pt2"], "no such genome file"),
    (["export", "resnet20", "--format", "exported", "-o", "{tmp}/m.pt2", "--weights", "{tmp}/w.pt"],
     "no such weights file"),
    (["export", "resnet20", "--format", "exported", "-o", "{file}"], "exists"),
    (["export", "resnet20", "--format", "exported", "-o", "{tmp}/m.pt2", "--contract", "{file}"], "not JSON"),
]

SCRIPT = """
import contextlib, io, json, sys
from nas.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's errors
            code = stop.code
    results.append({"code": code, "err": err.getvalue(), "torch": "torch" in sys.modules, "ray": "ray" in sys.modules})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("checks")
    file = tmp / "a-file.txt"
    file.write_text("not a folder, not JSON\n")
    commands = [[word.format(tmp=tmp, file=file) for word in argv] for argv, _ in BAD]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("index", range(len(BAD)), ids=[" ".join(argv[:4]) for argv, _ in BAD])
def test_a_bad_command_is_answered_without_torch_or_ray(answers, index):
    words = BAD[index][1]
    answer = answers[index]
    assert answer["code"] == 2
    assert words in answer["err"] and len(answer["err"].strip().splitlines()) == 1, answer["err"]
    assert not answer["torch"] and not answer["ray"], f"{BAD[index][0]} imported torch or Ray before answering"


def test_the_torch_free_names_are_the_real_registries():
    """The data sets and space kinds the command line checks without torch resolve to their implementations."""
    from nas.spaces.base import SearchSpace
    from nas.spaces.loader import KINDS, kind_class
    from nas.train.catalog import DATASETS

    assert {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100"} <= set(DATASETS.names())
    assert all(callable(DATASETS.get(name)) for name in DATASETS.names())
    assert all(issubclass(kind_class(kind), SearchSpace) for kind in KINDS.names())
