"""trainkit: train Keras 3 models on TensorFlow with full knowledge and control of the train state.

The data side (`trainkit.data`, `trainkit.preprocessors`) imports neither Keras nor
TensorFlow; the training side (`TrainGenerator`, `trainkit.callbacks`) is imported
lazily on first use so that `import trainkit.data` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trainkit.data import DataGenerator, write_sets, write_store
from trainkit.data.preprocessors import (
    Chain,
    JitterPreprocessor,
    PadPreprocessor,
    Preprocessor,
    RandomCropPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
    TimeseriesPreprocessor,
)

if TYPE_CHECKING:
    from trainkit.training import TrainGenerator
    from trainkit.training.slices.distribute import WorkerLostError
    from trainkit.training.slices.health import NonFiniteLossError, NonFiniteWeightsError

__version__ = "0.1.0"

# name -> module that defines it; imported on first attribute access (PEP 562).
_LAZY = {
    "TrainGenerator": "trainkit.training",
    "NonFiniteLossError": "trainkit.training.slices.health",
    "NonFiniteWeightsError": "trainkit.training.slices.health",
    "WorkerLostError": "trainkit.training.slices.distribute",
}

__all__ = [
    "Chain",
    "DataGenerator",
    "JitterPreprocessor",
    "NonFiniteLossError",
    "NonFiniteWeightsError",
    "PadPreprocessor",
    "Preprocessor",
    "RandomCropPreprocessor",
    "RandomRotationPreprocessor",
    "RandomScalePreprocessor",
    "TimeseriesPreprocessor",
    "TrainGenerator",
    "WorkerLostError",
    "write_sets",
    "write_store",
]


# Submodules on the training side, imported on first attribute access too.
_LAZY_MODULES = {"introspection": "trainkit.introspection"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainkit' has no attribute {name!r}")
