"""Each piece of the data side has one owner: one batch-start routine, the generator's own state."""

import re
from pathlib import Path

import numpy as np
import pytest

import trainkit
from trainkit import DataGenerator
from trainkit.data import state as state_lib

PACKAGE = Path(trainkit.__file__).parent
ROOT = PACKAGE.parent
DATA_SIDE = [*sorted((PACKAGE / "data").rglob("*.py")), PACKAGE / "testing.py"]
BASE = PACKAGE / "data" / "preprocessors" / "base.py"


@pytest.mark.parametrize("path", DATA_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_preprocessor_base_module_starts_a_batch(path):
    text = path.read_text()
    starts = re.findall(r"batch_loaded\s*,\s*\w*\.?batch_exhausted\s*,\s*\w*\.?slice_idx\s*=", text)
    calls = re.findall(r"\w\.on_batch_load\(", text)  # `pre.on_batch_load(`, not super()
    if path == BASE:
        assert len(starts) == 1
    else:
        assert not starts, "use trainkit.data.preprocessors.base.start_batch()"
        assert not calls, "on_batch_load() is called by start_batch() only"


def test_state_helpers_never_touch_a_generator():
    text = Path(state_lib.__file__).read_text()
    assert "trainkit.data.generator" not in text
    assert not re.search(r"\b\w+\._\w+\s*=", text), "state.py must not write private attributes"


def test_the_generator_owns_its_state_dict_and_fingerprint():
    dg = DataGenerator(data=np.zeros((6, 1)), batch_size=2, shuffle=True)
    for name in ("state_dict", "load_state_dict", "fingerprint"):
        assert name in DataGenerator.__dict__
        assert not hasattr(state_lib, name)
    dg.get()
    dg.update_state()
    restored = DataGenerator(data=np.zeros((6, 1)), batch_size=2, shuffle=True)
    restored.load_state_dict(dg.state_dict())
    assert (restored.epoch, restored.batch_index) == (0, 1)


USER_TEXT = [
    *DATA_SIDE,
    *(ROOT / "docs" / n for n in ("data.md", "data_sources.md", "preprocessors.md")),
]


@pytest.mark.parametrize("path", USER_TEXT, ids=lambda p: p.name)
def test_nothing_users_read_points_to_the_design_document(path):
    assert "DESIGN" not in path.read_text()
