"""Preprocessors: turn a loaded batch into one or more slices."""

from trainkit.data.preprocessors.augment import (
    JitterPreprocessor,
    RandomRotationPreprocessor,
    RandomScalePreprocessor,
)
from trainkit.data.preprocessors.base import Preprocessor
from trainkit.data.preprocessors.chain import Chain
from trainkit.data.preprocessors.pad import PadPreprocessor
from trainkit.data.preprocessors.random_crop import RandomCropPreprocessor
from trainkit.data.preprocessors.timeseries import TimeseriesPreprocessor

__all__ = [
    "Chain",
    "JitterPreprocessor",
    "PadPreprocessor",
    "Preprocessor",
    "RandomCropPreprocessor",
    "RandomRotationPreprocessor",
    "RandomScalePreprocessor",
    "TimeseriesPreprocessor",
]
