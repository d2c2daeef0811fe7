"""Reading executed notebooks: the text a reader sees, the figures, the errors."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from conftest import load_notebooks_module

_notebooks = load_notebooks_module()  # dev/notebooks.py: where failures are recorded


def read_executed(folder: Path, name: str) -> nbformat.NotebookNode:
    """The executed copy `folder/name.ipynb`, checked to have run every code cell.

    Fails the calling test with the notebook's error when it raised as it was executed.
    """
    if os.environ.get("TRAINKIT_EXAMPLES_ONLY") and not (folder / f"{name}.ipynb").exists():
        pytest.skip(f"{name} not executed: TRAINKIT_EXAMPLES_ONLY is set")
    failure = _notebooks.read_failures(folder).get(f"{name}.ipynb")
    if failure is not None:
        pytest.fail(f"{name} raised when it was executed:\n{failure}", pytrace=False)
    notebook = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and cell.source.strip():
            assert cell.execution_count is not None, f"{name}: code cell {index} did not run"
            assert not [o for o in cell.outputs if o.output_type == "error"], (name, index)
    return notebook


def output_text(notebook: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text, in order."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"])
    return "".join(parts)


def figures(notebook: nbformat.NotebookNode) -> list[str]:
    """The PNG images the notebook displays (base64), in order."""
    return [
        output.data["image/png"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
