"""The example notebooks, executed once per test session at their small sizes.

`executed_notebooks` is shared (here, so tests/examples and tests/docs both see it): the
example tests assert on its copies, and the docs site
puts them into its pages. Every `examples/NN_*.ipynb` runs once, in its own kernel (the
venv's Python, `TRAINKIT_EXAMPLES_SMALL=1`), writing only under a temporary folder.

While working on one example, `TRAINKIT_EXAMPLES_ONLY=03,04` runs only the notebooks whose
names start with those prefixes; the tests of the others are skipped.
`TRAINKIT_EXAMPLES_WORKERS` (default 2) is how many notebooks run at once.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKERS = int(os.environ.get("TRAINKIT_EXAMPLES_WORKERS", "2"))  # notebooks run at once


def load_notebooks_module():
    """`dev/notebooks.py` as a module (dev/ is not a package), loaded once."""
    if "trainkit_dev_notebooks" in sys.modules:
        return sys.modules["trainkit_dev_notebooks"]
    spec = importlib.util.spec_from_file_location(
        "trainkit_dev_notebooks", ROOT / "dev" / "notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def notebooks_module():
    return load_notebooks_module()


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory, notebooks_module) -> Path:
    """The folder of executed copies, `NN_name.ipynb`, outputs and figures embedded.

    Every notebook runs; one that raises is recorded there (`failures.json`) and only the
    tests that read it (`notebook_helpers.read_executed`) fail, with its error: the tests
    of the other notebooks and the docs site still run.
    """
    out_dir = tmp_path_factory.mktemp("executed_notebooks")
    work_dir = tmp_path_factory.mktemp("notebook_runs")
    only = [prefix for prefix in os.environ.get("TRAINKIT_EXAMPLES_ONLY", "").split(",") if prefix]
    notebooks = [
        notebooks_module.notebook_path(script)
        for script in notebooks_module.scripts()
        if not only or script.name.startswith(tuple(only))
    ]
    # Two kernels at a time: a kernel spends much of its time in one-threaded Python
    # (imports, tracing), so the second core would otherwise sit idle on a 2-core machine.
    notebooks_module.execute_each(
        notebooks, out_dir, small=True, work_dir=work_dir, workers=WORKERS, log=print
    )
    return out_dir
