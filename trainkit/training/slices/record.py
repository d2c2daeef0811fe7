"""`SliceRecord`: what the loop's bookkeeping needs to know about one slice it fit.

With `steps_per_execution=K` the trainer takes up to K slices from the generator and
fits them in one compiled call, then does each slice's bookkeeping in order. By then
the generator has moved on, so each slice's bookkeeping reads the record taken when
the slice was served: where it was in its batch, which batch it came from, what the
preprocessor said about it, and whether it ended its batch or the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SliceRecord:
    """One served slice as the generator described it.

    Attributes:
        slice_idx, slices_per_batch: its place in its batch.
        set_name: the batch's name; `batch` the generator's `current_batch` (sample
            ranges, for the provenance log), None for a generator without one.
        description: the preprocessor's `describe_slice()` (only with a run folder).
        samples: rows in the slice (the weight of its values in the batch means).
        batch_exhausted, epoch_exhausted: set once the generator has moved past it.
    """

    slice_idx: int
    slices_per_batch: int
    set_name: str
    batch: Any
    samples: int
    description: dict[str, Any] = field(default_factory=dict)
    batch_exhausted: bool = False
    epoch_exhausted: bool = False
    args: tuple[Any, ...] | None = None  # what was fit, `(x, y[, sample_weight])`
    skipped: str | None = None  # why on_nonfinite='skip' left it out (not fit)


def keras_data(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """`(x, y[, sample_weight])` as Keras' step takes it: `(x,)` when there are no labels."""
    x, y, *weights = args
    return (x,) if y is None else (x, y, *weights)
