"""The example notebooks, executed once per test session at their small sizes.

`executed_notebooks` is shared: the tests here assert on its copies, and the docs site
puts them into its pages. Every `examples/NN_*.ipynb` runs once, in its own kernel (the
venv's Python, `TRAINKIT_EXAMPLES_SMALL=1`), writing only under a temporary folder.

While working on one example, `TRAINKIT_EXAMPLES_ONLY=03,04` runs only the notebooks whose
names start with those prefixes; the tests of the others are skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
    failures = []
    only = [prefix for prefix in os.environ.get("TRAINKIT_EXAMPLES_ONLY", "").split(",") if prefix]
    for script in notebooks_module.scripts():
        if only and not script.name.startswith(tuple(only)):
            continue
        notebook = notebooks_module.notebook_path(script)
        try:
            timings = notebooks_module.execute([notebook], out_dir, small=True, work_dir=work_dir)
        except Exception as error:  # a cell raised: collect it, run the others
            failures.append(f"{notebook.name}: {type(error).__name__}: {error}")
        else:
            timing = timings[notebook.name]
            print(
                f"executed {notebook.name}: {timing['wall_s']:.1f} s, "
                f"kernel CPU {timing['kernel_cpu_s']:.1f} s"
            )
    if failures:
        pytest.fail("example notebooks failed:\n" + "\n\n".join(failures), pytrace=False)
    return out_dir
