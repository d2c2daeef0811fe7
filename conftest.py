"""Shared pytest setup: quiet TensorFlow, deterministic hypothesis profile for CI."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): tests pytest-xdist runs on one worker")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns the marks into groups
def pytest_collection_modifyitems(config, items):
    """Groups for `pytest -n 2 --dist loadgroup` (dev/test.sh): each on one worker.

    A file's tests stay together, so its module and session fixtures are built once (the
    kill -9 matrix's references, for one); the example notebooks and the docs site that
    shows them are one group, so the notebooks are executed once.
    """
    for item in items:
        path = item.nodeid.split("::")[0]
        shared = path.startswith(("tests/examples/", "tests/docs/test_site.py"))
        item.add_marker(pytest.mark.xdist_group("notebooks" if shared else path))
