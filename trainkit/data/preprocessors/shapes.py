"""Checks of the sample shape a preprocessor is given at generator construction."""

from __future__ import annotations

from typing import Any


def check_dense(name: str, sample_shape: Any) -> None:
    """ValueError unless `sample_shape` is one dense array's sample shape (a tuple of ints).

    Structured sources give a dict or tuple of shapes, ragged ones a shape whose first
    dimension is None; preprocessors that cut dense batches refuse both by name.
    """
    dense = isinstance(sample_shape, tuple) and all(isinstance(d, int) for d in sample_shape)
    if dense:
        return
    if isinstance(sample_shape, dict) or (
        isinstance(sample_shape, tuple) and any(isinstance(d, tuple) for d in sample_shape)
    ):
        kind = "structured data (several members)"
    else:
        kind = "ragged samples (of different lengths)"
    raise ValueError(
        f"{name} cuts dense batches shaped (samples, ...), but this generator serves {kind}; "
        f"its sample shape is {sample_shape!r}. Give it one dense array (samples padded to "
        "one length beforehand), or write a Preprocessor of your own for these samples. "
        f"Received: sample_shape={sample_shape!r}"
    )
