"""Shared fixtures."""
import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance (2 CPUs) for the whole test session; request it in tests that run a Tuner."""
    import ray

    started = not ray.is_initialized()
    if started:
        # "local": a new instance even while another test's cluster (test_search_run) has left its address
        # in Ray's temp folder, where a plain ray.init() would look for one to join
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


# The files that take longest, longest first (measured with `pytest -n 0 --durations=0`; summed per file).
# They run first, and every other file after them in its usual order: under `--dist loadfile` a file runs whole
# on one worker, and a long file left to the end keeps one worker busy while the other waits (xdist's default
# orders files by their number of tests, which put these few-test, long files last; pyproject turns that off).
LONGEST_FIRST = (
    "test_search_resume.py",
    "test_search_run.py",
    "test_interrupts.py",
    "test_compare.py",
    "test_loggers.py",
    "test_search_failures.py",
    "test_pnas.py",
    "test_train.py",
    "test_recipes.py",
    "test_plugins.py",
    "test_strategies.py",
    "test_user_data.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture()
def one_torch_thread():
    """torch on one thread for the test (small networks train faster so, and far faster on a loaded machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
