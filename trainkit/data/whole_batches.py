"""Whole batches served at once: a run of same-sized batches, stacked, for a fused step.

A trainer fusing `steps_per_execution` slices into one compiled call wants them stacked.
When each slice is a whole batch of in-memory arrays, as served (no preprocessing), the
run of batches is read in one go: one copy per member, the rows of consecutive batches
read as one range where they are consecutive in the arrays. What is served, and the
cursor after it, are those of `get()` / `update_state()` once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

from trainkit.data.plan import Batch
from trainkit.data.sources import gather
from trainkit.data.sources.arrays import ArraySource


class WholeBatches(Sequence[tuple[Any, Any]]):
    """Consecutive batches of one size served at once, one slice each.

    Attributes:
        x, y: the batches' data and labels stacked along a new first axis (fresh arrays
            of shape `(len(batches), batch_size, ...)`; `y` None without labels).
        batches: the plan's batches, in serving order.
        epoch_ended: the last of them ended the epoch.

    Item `i` is batch `i`'s slice `(x, y)` as `get()` served it, read again from the
    source (a read-only view), for the rare reader (an error naming a slice's samples).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray | None,
        batches: list[Batch],
        epoch_ended: bool,
        sources: tuple[Any, Any],
    ) -> None:
        self.x, self.y, self.batches, self.epoch_ended = x, y, batches, epoch_ended
        self._sources = sources

    def __len__(self) -> int:
        return len(self.batches)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, Any]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        source, labels = self._sources
        if isinstance(index, slice):
            return [(gather(source, b), gather(labels, b)) for b in self.batches[index]]
        batch = self.batches[index]
        return gather(source, batch), gather(labels, batch)


def servable(source: Any) -> bool:
    """Whether `source` (or a labels source, None) is in-memory rows read without I/O."""
    if source is None:
        return True
    # Not a memmap (reading it may wait on the disk), an h5py dataset, dicts or ragged.
    return type(source) is ArraySource and type(source.array) is np.ndarray


def run_length(plan: list[Batch], start: int, limit: int, ends_after: Callable[[int], bool]) -> int:
    """How many batches from `start` to serve at once: at most `limit`, all of the size of
    the first, ending with the epoch or after the `n`-th where `ends_after(n)` says so.
    (A short batch is not only an epoch's last: `shuffle_group_batches` moves the short
    tail of a set among its other batches.)"""
    size, end = plan[start].size, start + 1
    while end - start < limit and end < len(plan) and not ends_after(end - start):
        if plan[end].size != size:
            break
        end += 1
    return end - start


def stacked_rows(source: ArraySource, batches: list[Batch]) -> np.ndarray:
    """The rows of `batches` (all of one size) stacked along a new first axis, fresh."""
    spans: list[tuple[int, int]] = []
    for batch in batches:
        if batch.indices is not None:
            spans = []
            break
        spans.extend(batch.ranges)
    if spans and all(spans[k][1] == spans[k + 1][0] for k in range(len(spans) - 1)):
        rows = np.array(source.array[spans[0][0] : spans[-1][1]])  # one range: one copy
    else:  # shuffled samples, or batches apart: one gather of every row
        rows = source.take(np.concatenate([_rows_of(batch) for batch in batches]))
        if not rows.flags.owndata:
            rows = rows.copy()
    return rows.reshape(len(batches), -1, *rows.shape[1:])


def _rows_of(batch: Batch) -> np.ndarray:
    if batch.indices is not None:
        return np.asarray(batch.indices, dtype=np.int64)
    return np.concatenate([np.arange(start, stop) for start, stop in batch.ranges])
