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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKERS = int(os.environ.get("TRAINKIT_EXAMPLES_WORKERS", "2"))  # notebooks run at once


def load_notebooks_module():
    """`dev/notebooks.py` as a module (dev/ is not a package)."""
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

    All notebooks are run before any failure is reported, and the failure names every
    notebook that raised, with its error.
    """
    out_dir = tmp_path_factory.mktemp("executed_notebooks")
    work_dir = tmp_path_factory.mktemp("notebook_runs")
    only = [prefix for prefix in os.environ.get("TRAINKIT_EXAMPLES_ONLY", "").split(",") if prefix]
    notebooks = [
        notebooks_module.notebook_path(script)
        for script in notebooks_module.scripts()
        if not only or script.name.startswith(tuple(only))
    ]

    def run(notebook: Path) -> str | None:
        try:
            timings = notebooks_module.execute([notebook], out_dir, small=True, work_dir=work_dir)
        except Exception as error:  # a cell raised: report it, run the others
            return f"{notebook.name}: {type(error).__name__}: {error}"
        timing = timings[notebook.name]
        print(
            f"executed {notebook.name}: {timing['wall_s']:.1f} s, "
            f"kernel CPU {timing['kernel_cpu_s']:.1f} s"
        )
        return None

    # Two kernels at a time: a kernel spends much of its time in one-threaded Python
    # (imports, tracing), so the second core would otherwise sit idle on a 2-core machine.
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        failures = [failure for failure in pool.map(run, notebooks) if failure]
    if failures:
        pytest.fail("example notebooks failed:\n" + "\n\n".join(failures), pytrace=False)
    return out_dir
