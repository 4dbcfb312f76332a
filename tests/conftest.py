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
