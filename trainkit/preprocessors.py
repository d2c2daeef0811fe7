"""Public home of the built-in preprocessors (defined in `trainkit.data.preprocessors`)."""

from trainkit.data.preprocessors import (
    Chain,
    Preprocessor,
    RandomCropPreprocessor,
    TimeseriesPreprocessor,
)

__all__ = ["Chain", "Preprocessor", "RandomCropPreprocessor", "TimeseriesPreprocessor"]
