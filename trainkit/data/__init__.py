"""The data side of trainkit: sources, the epoch plan, DataGenerator and preprocessors.

Imports neither Keras nor TensorFlow (only the `as_tf_dataset`/`as_py_dataset`
adapters do, when called).
"""

from trainkit.data.generator import DataGenerator
from trainkit.data.plan import Batch
from trainkit.data.preprocessors import (
    Chain,
    Preprocessor,
    RandomCropPreprocessor,
    TimeseriesPreprocessor,
)
from trainkit.data.sources.offline_store import StoreDamagedError, StoreWriteError
from trainkit.data.store_writer import StoreLockedError, write_store
from trainkit.data.writers import write_sets

__all__ = [
    "Batch",
    "Chain",
    "DataGenerator",
    "Preprocessor",
    "RandomCropPreprocessor",
    "StoreDamagedError",
    "StoreLockedError",
    "StoreWriteError",
    "TimeseriesPreprocessor",
    "write_sets",
    "write_store",
]
