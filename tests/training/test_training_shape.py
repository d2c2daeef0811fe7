"""The train side's tree: packages that say what they hold, a short trainer, short functions."""

import ast
from pathlib import Path

import pytest

import trainkit

TRAINING = Path(trainkit.__file__).parent / "training"
PACKAGES = sorted(path.parent for path in TRAINING.glob("*/__init__.py"))
MODULES = sorted(TRAINING.rglob("*.py"))


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


@pytest.mark.parametrize("package", [TRAINING, *PACKAGES], ids=lambda path: path.name)
def test_each_package_docstring_names_every_module_it_holds(package):
    text = _docstring(package / "__init__.py")
    names = [path.stem for path in package.glob("*.py") if path.stem != "__init__"]
    names += [path.name for path in package.iterdir() if (path / "__init__.py").exists()]
    assert names
    assert [name for name in sorted(names) if f"`{name}`" not in text] == []


def test_the_trainer_module_stays_under_600_lines():
    assert len((TRAINING / "trainer.py").read_text().splitlines()) <= 600


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(TRAINING)))
def test_no_function_of_the_train_side_runs_over_80_lines(path):
    functions = [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    assert [f.name for f in functions if f.end_lineno - f.lineno + 1 > 80] == []
