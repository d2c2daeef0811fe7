"""The slice walk of an epoch: one definition for every server of slices.

A `SliceWalk` walks an epoch plan from a cursor on one preprocessor, batch after batch
and slice after slice, with the routines of `trainkit.data.preprocessors.base`
(`begin_batch`, `serve_slice`, `end_slice`), the rng keys of `plan.slice_key` and each
shard's rows in its global batch (`Batch.global_rows`). The prefetch thread, the
read-only views and `trainkit.testing` walk with it; the synchronous DataGenerator
calls the same routines one at a time (its `get()` and `update_state()` are the two
halves of one step). Whoever walks, the same slices come out, with the same random
numbers and the same slice counts.

With a pool of worker processes, `process()` of each slice runs in a worker on a
pickled copy, and the walk goes on without waiting for it. A preprocessor that sets
`slices_per_batch` in `process()` (the DeepTrain style) would then be walked with a
count it has not set yet: the walk waits for the first slice of the first batch, learns
whether `process()` changes the count (`Negotiation`), and from then on waits for the
first slice of every batch if it does. A count that changes later without a wait is
seen by the consumer, which starts a new walk from its cursor (`Step.settled`).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from trainkit.data.plan import Batch, GlobalRows, slice_key
from trainkit.data.preprocessors.base import (
    Preprocessor,
    adopt_count,
    begin_batch,
    end_slice,
    serve_slice,
)


def counters(pre: Preprocessor) -> tuple[Any, ...]:
    """What must agree between the user's preprocessor and a copy before a slice."""
    return (
        pre.batch_loaded,
        pre.batch_exhausted,
        pre.slice_idx,
        pre.slices_per_batch,
        pre.state_dict(),
    )


COUNT = 3  # the position of slices_per_batch in counters()


@dataclass(eq=False)
class Step:
    """One slice of the walk, computed (or being computed by a worker), or its error.

    Attributes:
        batch_index, slice_idx: where in the epoch the slice is.
        batch: `(x, y)` of the batch when this step loaded it and the walk records
            (None otherwise).
        before: `counters()` of the walking preprocessor just before `process()`.
        result: `(x, y)` or `(x, y, sample_weight)`, or a Future of it (a worker).
        description: the preprocessor's `describe_slice()` right after `process()`.
        slices_per_batch: the count after `process()` (the negotiated count).
        settled: False when a worker computes the slice and the walk went on without
            its count; the consumer then checks the count itself.
        error: the exception raised loading the batch or computing the slice.
        cost: seconds the walk spent on this step (the adaptive prefetch reads it).
    """

    batch_index: int
    slice_idx: int
    batch: tuple[Any, Any] | None
    before: tuple[Any, ...] | None = None
    result: Any = None
    description: dict[str, Any] | None = None
    slices_per_batch: int = 1
    settled: bool = True
    error: BaseException | None = None
    cost: float = 0.0

    def slice(self) -> tuple[Any, ...]:
        """The slice; waits for a worker process if one computes it (re-raising its error)."""
        if isinstance(self.result, Future):
            self.result, self.description, self.slices_per_batch = self.result.result()
        return self.result

    def negotiated(self) -> bool:
        """Whether `process()` changed the slice count (waits for a worker's answer)."""
        self.slice()
        return self.before is not None and self.slices_per_batch != self.before[COUNT]


class Negotiation:
    """Whether `process()` sets `slices_per_batch`, learned from the first slice computed.

    Shared by the walks of one generator (and by a consumer that finds a count changed
    without a wait), so that a restarted walk knows it from the start.
    """

    def __init__(self) -> None:
        self.waits = True  # wait for each batch's first slice from a worker
        self.learned = False

    def learn(self, changed: bool) -> None:
        if not self.learned:
            self.waits, self.learned = changed, True

    def seen_late(self) -> None:
        """A count changed on a slice the walk did not wait for: wait from now on."""
        self.waits = self.learned = True


class SliceWalk:
    """Walks the slices of an epoch plan from a cursor on one preprocessor.

    Args:
        pre: the preprocessor to walk with (a copy, unless the caller owns it).
        plan: the epoch plan; `gather(batch) -> (x, y)` reads a batch's arrays.
        seed, epoch: the first parts of every slice's rng key.
        batch_index: the batch to start at.
        loaded: the arrays of that batch when the caller has begun it (the walk goes on
            mid-batch from `pre`'s counters), else None.
        pending: the preprocessor state saved with a mid-batch cursor not yet re-read.
        pool: worker processes for `process()` (`serve_in_worker`), or None.
        negotiation: what is known of `process()` setting the count (with a pool).
        record: record `counters()` before each slice (the prefetch consumer checks them).
    """

    def __init__(
        self,
        pre: Preprocessor,
        plan: list[Batch],
        gather: Callable[[Batch], tuple[Any, Any]],
        *,
        seed: int,
        epoch: int,
        batch_index: int = 0,
        loaded: tuple[Any, Any] | None = None,
        pending: dict[str, Any] | None = None,
        pool: Executor | None = None,
        negotiation: Negotiation | None = None,
        record: bool = False,
    ) -> None:
        self.pre, self.plan, self.gather = pre, plan, gather
        self.seed, self.epoch, self.index = seed, epoch, batch_index
        self.arrays, self.pending, self.pool = loaded, pending, pool
        self.negotiation = negotiation or Negotiation()
        self.record = record
        self.ended = False

    def __iter__(self) -> Iterator[Step]:
        """Every remaining step, each computed; stops after an error step."""
        while True:
            step = self.next()
            if step is None:
                return
            ended = step.error is not None
            yield step
            del step  # not held while the next batch is read
            if ended:
                return

    def next(self, compute: bool = True) -> Step | None:
        """The next slice (computed unless `compute` is False), the walk moved past it.

        None after the last slice of the plan. An error loading the batch or computing
        the slice comes back as a step with `error` set, and the walk ends there.
        """
        if self.ended or self.index >= len(self.plan):
            return None
        pre = self.pre
        started = time.perf_counter()
        carried = None
        try:
            if self.arrays is None:
                self.arrays = self.gather(self.plan[self.index])
                begin_batch(pre, *self.arrays, self.pending)
                self.pending = None
                carried = self.arrays if self.record else None
            before = counters(pre) if self.record else None
            step = Step(self.index, pre.slice_idx, carried, before, slices_per_batch=0)
            if compute:
                self._compute(step)
        except BaseException as error:  # handed to whoever serves this slice
            self.ended = True
            return Step(self.index, pre.slice_idx, None, error=error)
        try:
            if end_slice(pre):
                self.arrays = None
                self.index += 1
        except BaseException:  # the consumer's own update_state() raises it again
            self.ended = True
        step.cost = time.perf_counter() - started
        return step

    def _compute(self, step: Step) -> None:
        pre, arrays = self.pre, self.arrays
        assert arrays is not None
        key = slice_key(self.seed, self.epoch, step.batch_index, step.slice_idx)
        rows = self.plan[step.batch_index].global_rows  # a shard's rows in the global batch
        if self.pool is None:
            step.result = serve_slice(pre, *arrays, key, rows)
            step.description = pre.describe_slice()
            step.slices_per_batch = pre.slices_per_batch
            return
        step.result = self.pool.submit(serve_in_worker, pickle.dumps(pre), arrays, key, rows)
        step.slices_per_batch = pre.slices_per_batch
        if step.slice_idx == 0 and self.negotiation.waits:
            before = pre.slices_per_batch
            step.slice()  # the count must be known before update_state() runs
            adopt_count(pre, step.slices_per_batch)
            self.negotiation.learn(step.slices_per_batch != before)
        else:
            step.settled = False


def serve_in_worker(
    pickled: bytes,
    arrays: tuple[Any, Any],
    key: tuple[int, ...],
    rows: GlobalRows | None = None,
) -> tuple[tuple[Any, ...], dict[str, Any], int]:
    """In a worker process: the slice, its description and the count `process()` left."""
    pre = pickle.loads(pickled)
    result = serve_slice(pre, *arrays, key, rows)
    return result, pre.describe_slice(), pre.slices_per_batch
