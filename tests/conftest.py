"""Shared fixtures."""
import compileall
import os
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nas"


def compile_the_package_once(config) -> None:
    """Write the bytecode of `nas` before any test runs, in the one process that starts the others (xdist's
    controller, or the only one with `-n 0`). Every Ray trial worker and every `nas` command the tests start
    imports about 115 of its modules; where PYTHONDONTWRITEBYTECODE is set (common in containers and CI), nothing ever
    writes their bytecode and each of those processes compiles them again: about 0.23 s of CPU apiece, over a
    hundred processes. An editable install (`pip install -e`) compiles nothing; Python reads the files written
    here whatever that variable says, and recompiles any source changed since (its time stamp is checked)."""
    if not hasattr(config, "workerinput"):  # not in an xdist worker
        compileall.compile_dir(PACKAGE, quiet=2)  # silent: a tree it cannot write to only loses the speed-up


def pytest_configure(config):
    """Under xdist (`-n N`, the suite's default), each worker's torch on its share of the cores, and the
    processes it starts (`nas` commands) alike: torch's default of a thread per core gives N workers N times
    the cores, and its threads then wait on each other (on 2 cores two workers' networks trained and ran more
    than twice as fast on one thread each as on two). Runs before the test modules import torch; Ray's trials
    set their own threads (`nas.train.trainable`). A value the user set is kept; `-n 0` keeps torch's default."""
    compile_the_package_once(config)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // workers))
        torch = sys.modules.get("torch")
        if torch is not None:  # imported already (by a plug-in): it read the variable before
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (of each pytest-xdist worker); request it in tests that
    run a Tuner. One CPU: a run's trials take turns on one worker process, which Ray Tune reuses (each new worker
    process costs about 4.5 s of CPU: torch and Ray Tune imported, torch's compiler loaded by the first network
    trained), while a strategy still has as many proposals in flight as `--concurrent` allows (Tune's
    ConcurrencyLimiter). Trials that run at the same time: the tests of commands run from a shell (a Ray of
    their own, every core)."""
    import ray

    started = not ray.is_initialized()
    if started:
        # "local": a new instance even while another test's cluster (test_search_run) has left its address
        # in Ray's temp folder, where a plain ray.init() would look for one to join
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


# The files that take longest, longest first (each file's tests summed, setup and teardown included; measured
# with the suite's own `-n 2` run, 2 cores, seconds under a background load in brackets: their ratios matter).
# They run first, and every other file (each under ~20 s) after them in its usual order: under `--dist loadfile`
# a file runs whole on one worker, and a long file left to the end keeps one worker busy while the other waits
# (xdist's default orders files by their number of tests, which put these few-test, long files last; pyproject
# turns that off). Longest first, the files that come last are short, so the two workers end close together.
LONGEST_FIRST = (
    "test_search_resume.py",  # (300)
    "test_search_run.py",  # (237)
    "test_interrupts.py",  # (140)
    "test_compare.py",  # (100)
    "test_training_speed.py",  # (89)
    "test_bench_table.py",  # (87)
    "test_baselines_torchvision.py",  # (83)
    "test_oneshot_stages.py",  # (83)
    "test_baselines_torchvision_more.py",  # (80)
    "test_oneshot.py",  # (75)
    "test_evaluators.py",  # (71)
    "test_transfer_learning.py",  # (60)
    "test_inherited.py",  # (55, measured alone on an idle machine)
    "test_bench_continue.py",  # (52)
    "test_scaling.py",  # (35)
    "test_train.py",  # (34)
    "test_recipes.py",  # (33)
    "test_pnas.py",  # (33)
    "test_plugins.py",  # (32)
    "test_spaces.py",  # (29)
    "test_live_progress.py",  # (27)
    "test_enas.py",  # (27)
    "test_nasnet_timm.py",  # (24)
    "test_properties.py",  # (23)
    "test_strategies_without_ray.py",  # (22)
    "test_loggers.py",  # (22)
    "test_baselines_timm.py",  # (21)
    "test_train_cli.py",  # (21)
    "test_compile.py",  # (20)
)


def pytest_collection_modifyitems(config, items):
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture
def terminal_sigint():
    """SIGINT handled as in a terminal (a test session run as a background job has it ignored)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture()
def one_torch_thread():
    """torch on one thread for the test (small networks train faster so, and far faster on a loaded machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
