"""The progress display, the run logs and the figures read what they are handed (the loop
state, the settings, the run folder, the timings), never the trainer or its privates."""

import ast
from pathlib import Path

import pytest
from training_helpers import dense_datagens, dense_model

import trainkit
from trainkit import TrainGenerator
from trainkit.training.construction import wiring

TRAINING = Path(trainkit.__file__).parent / "training"
VIEWS = ["outputs/figures.py", "outputs/progress.py", "outputs/run_logs.py"]
TRAINER_NAMES = {"tg", "t", "trainer", "owner", "TrainGenerator"}


def private_reads(tree: ast.AST) -> list[str]:
    """`x._name` where `x` is not `self`: another object's private attribute."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") or (
            isinstance(node.value, ast.Name) and node.value.id == "self"
        ):
            continue
        found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def trainer_mentions(tree: ast.AST) -> list[str]:
    """Imports of the trainer's module, and names that stand for a trainer."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "trainkit.training.trainer":
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Name) and node.id in TRAINER_NAMES:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.arg) and node.arg in TRAINER_NAMES:
            found.append(f"line {node.lineno}: parameter {node.arg}")
    return found


@pytest.mark.parametrize("name", VIEWS)
def test_the_module_reads_no_private_attribute_of_another_object(name):
    assert private_reads(ast.parse((TRAINING / name).read_text())) == []


@pytest.mark.parametrize("name", VIEWS)
def test_the_module_is_never_handed_the_trainer(name):
    assert trainer_mentions(ast.parse((TRAINING / name).read_text())) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def draw(tg):\n    return tg._state.history\n", ["line 2: tg._state"]),
        ("def eta(self, trainer):\n    return trainer._timings\n", ["line 2: trainer._timings"]),
        ("def ok(self):\n    return self._state.epoch, self.__class__\n", []),
    ],
)
def test_the_scan_finds_a_private_read(source, expected):
    assert private_reads(ast.parse(source)) == expected


def test_the_scan_finds_a_trainer_handed_in():
    source = (
        "from trainkit.training.trainer import TrainGenerator\n"
        "def draw(tg: TrainGenerator):\n    return tg.epoch\n"
    )
    assert trainer_mentions(ast.parse(source)) == [
        "line 1: from trainkit.training.trainer import ...",
        "line 2: parameter tg",
        "line 2: TrainGenerator",
        "line 3: tg",
    ]


def test_the_parts_built_for_a_trainer_hold_no_reference_to_it(tmp_path):
    datagen, val_datagen = dense_datagens()
    tg = TrainGenerator(
        dense_model(), datagen, val_datagen, epochs=1, iter_verbosity=0, logs_dir=str(tmp_path)
    )
    tg.train()
    inputs = wiring.figure_inputs(tg)
    for part in (tg._progress, tg._logs, inputs):
        assert not any(value is tg for value in vars(part).values()), type(part).__name__
    assert inputs.run is not None and inputs.run.path == tg.run_dir == tg._logs.run_dir
    assert inputs.state is tg._state and inputs.timings is tg._timings
