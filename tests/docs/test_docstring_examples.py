"""The `>>>` examples in trainkit's docstrings run, and print what they show.

Every module of the package whose source holds `>>>` is found by itself and its examples
run with `doctest` (`...` matches anything, whitespace differences are ignored), in the
module's own globals plus the names an example takes as given (`model`, `x`, `tg`,
`run_dir`, ...), which `NAMES` builds per module: tiny objects, with a temporary folder
as the working directory.
A module with examples but no entry in `NAMES` runs them on its globals alone.
"""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainkit import DataGenerator, Preprocessor, RandomCropPreprocessor, TimeseriesPreprocessor

PACKAGE = Path(__file__).resolve().parents[2] / "trainkit"
MODULES = sorted(
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if ">>>" in path.read_text(encoding="utf-8")
)


class Slow(Preprocessor):
    """An 'expensive' preprocessor for `write_store`'s example (module level: it pickles)."""

    def process(self, batch, labels):
        return np.sqrt(np.abs(batch)), labels


def _arrays() -> dict[str, Any]:
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return {"x": x, "y": x.argmax(axis=1) % 3, "np": np}


def _model(folder: Path) -> dict[str, Any]:
    import keras

    from trainkit import TrainGenerator

    names = _arrays()
    keras.utils.clear_session()  # layer names as in a fresh process: 'dense', 'dense_1'
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    dg = DataGenerator(data=names["x"], labels=names["y"], batch_size=16)
    tg = TrainGenerator(model, dg, logs_dir=str(folder / "logs"), iter_verbosity=0)
    return {**names, "model": model, "dg": dg, "tg": tg}


def _gradient_plot(folder: Path) -> dict[str, Any]:
    from matplotlib.figure import Figure

    from trainkit.introspection import read_introspection

    return {**_model(folder), "Figure": Figure, "read_introspection": read_introspection}


def _metrics(folder: Path) -> dict[str, Any]:
    import trainkit.metrics

    labels = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.6, 0.4, 0.8, 0.7, 0.2])
    return {"metrics": trainkit.metrics, "labels": labels, "scores": scores}


def _preprocessors(folder: Path) -> dict[str, Any]:
    return {
        "RandomCropPreprocessor": RandomCropPreprocessor,
        "TimeseriesPreprocessor": TimeseriesPreprocessor,
    }


NAMES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "trainkit.introspection": _model,
    "trainkit.reports.gradient_plot": _gradient_plot,
    "trainkit.data.adapters": _model,
    "trainkit.data.generator": lambda folder: _arrays(),
    "trainkit.data.writers": lambda folder: {**_arrays(), "DataGenerator": DataGenerator},
    "trainkit.data.store_writer": lambda folder: {
        **_arrays(),
        "DataGenerator": DataGenerator,
        "Slow": Slow,
    },
    "trainkit.data.preprocessors.chain": _preprocessors,
    "trainkit.metrics": _metrics,
    "trainkit.checkpoints.atomic": lambda folder: {"run_dir": str(folder), "text": "a report"},
    "trainkit.checkpoints.history_log": lambda folder: {"run_dir": str(folder)},
}


def test_the_modules_with_examples_are_found():
    assert {"trainkit.introspection", "trainkit.metrics"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_a_module_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write relative paths ('sets/', 'store')
    module = importlib.import_module(name)
    extra = NAMES[name](tmp_path) if name in NAMES else {}
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    tests = finder.find(module, name, globs={**vars(module), **extra})
    for test in tests:
        runner.run(test, out=report.append)
    assert tests and runner.failures == 0, "".join(report)
    if name == "trainkit.checkpoints.atomic":  # what the examples wrote
        assert (tmp_path / "report.txt").read_text(encoding="utf-8") == "a report\n"
        assert (tmp_path / "metrics.csv").read_bytes() == b"train,0,1,1,a,0.5\r\n"
