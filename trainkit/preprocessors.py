"""Public home of the built-in preprocessors (defined in `trainkit.data.preprocessors`)."""

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
