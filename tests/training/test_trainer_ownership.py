"""The train side's shape: who may import and touch what (review findings of issue 10)."""

import ast
import re
from pathlib import Path

import pytest

import trainkit

PACKAGE = Path(trainkit.__file__).parent
ROOT = PACKAGE.parent


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "checkpoints").glob("*.py")), ids=lambda p: p.name
)
def test_checkpoints_never_import_the_training_package(path):
    assert not [name for name in _imports(path) if name.startswith("trainkit.training")]


@pytest.mark.parametrize(
    "name", ["evaluation/validation.py", "evaluation/prediction.py", "checkpointing.py"]
)
def test_validation_and_checkpoints_read_no_private_attribute_of_the_trainer(name):
    text = (PACKAGE / "training" / name).read_text()
    assert not re.findall(r"\b(?:t|tg|trainer|self\.trainer)\._\w+", text)


def test_the_loop_stages_and_their_transitions_are_one_table():
    from trainkit.training import loop_state

    assert set(loop_state.TRANSITIONS) == set(loop_state.STAGES)
    text = (PACKAGE / "training" / "trainer.py").read_text()
    text += (PACKAGE / "training" / "evaluation" / "validation.py").read_text()
    assert not re.findall(r"\.stage\s*=[^=]", text), "move stages with LoopState.move_to()"


def test_a_transition_the_table_does_not_list_is_refused():
    from trainkit.training.loop_state import CHECKPOINT, FIT, LoopState

    state = LoopState()
    with pytest.raises(RuntimeError, match="cannot go from stage 'fit' to 'checkpoint'"):
        state.move_to(CHECKPOINT)
    assert state.stage == FIT


USER_TEXT = [
    *sorted(PACKAGE.rglob("*.py")),
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
]


@pytest.mark.parametrize("path", USER_TEXT, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_docstring_or_doc_page_points_to_the_design_document(path):
    assert "DESIGN.md" not in path.read_text()
