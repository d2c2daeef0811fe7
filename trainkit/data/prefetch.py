"""Background prefetch: the slices of an epoch computed ahead, in plan order, on a copy.

A `Producer` walks the epoch plan from a given cursor on a deep copy of the
preprocessor, exactly as the DataGenerator walks it (`begin_batch`, `process`,
`update_state`), and hands out one `Ahead` per slice: the slice, the batch arrays when
the slice is the first of a batch it loaded, and the copy's counters and state *before*
`process()` ran. The DataGenerator consumes them in order: it still runs
`on_batch_load`, `update_state` and `on_epoch_end` on the user's preprocessor, and takes
a slice only if its own counters and state equal the ones the copy had when it computed
that slice (so a `process()` that depends only on its arguments, `slice_idx`, `rng` and
the preprocessor's state gives the same bits). Nothing here touches the generator: its
cursor and `state_dict()` describe only what was consumed.

The work runs on one daemon thread (NumPy reads, copies and most array arithmetic
release the GIL). With `workers > 0`, `process()` calls run in worker processes started
with forkserver (spawn where forkserver does not exist), never fork, so TensorFlow's
state is never copied into a child; loading and the counters stay on the thread.
"""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from trainkit.data.plan import SLICE_STREAM, Batch
from trainkit.data.preprocessors.base import Preprocessor, check_slice, start_batch

# The default `prefetch`: slices computed ahead when the user does not say.
DEFAULT_PREFETCH = 2
_POLL_S = 0.05  # how often a blocked producer looks at its stop flag


def counters(pre: Preprocessor) -> tuple[Any, ...]:
    """What must agree between the user's preprocessor and the copy before a slice."""
    return (
        pre.batch_loaded,
        pre.batch_exhausted,
        pre.slice_idx,
        pre.slices_per_batch,
        pre.state_dict(),
    )


def same(a: Any, b: Any) -> bool:
    """`a == b` for counters, False when the comparison itself is ambiguous (arrays)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def begin_batch(pre: Preprocessor, x: Any, y: Any, pending: dict[str, Any] | None) -> None:
    """Start serving a loaded batch; mid-batch after a restore, the saved counters win.

    `pending` is the preprocessor state saved with a mid-batch cursor: `on_batch_load()`
    runs again on the re-read batch, then the saved counters and state are put back.
    """
    restoring = pending is not None and pre.batch_loaded
    saved = (pre.slice_idx, pre.slices_per_batch, pre.batch_exhausted)
    start_batch(pre, x, y)
    if restoring:
        pre.slice_idx, pre.slices_per_batch, pre.batch_exhausted = saved
        pre.load_state_dict(pending or {})


@dataclass
class Ahead:
    """One slice computed ahead, or the error raised computing it.

    Attributes:
        batch_index, slice_idx: where in the epoch the slice is.
        batch: `(x, y)` of the batch when this slice is the first the producer served
            from a batch it loaded itself (the consumer begins the batch with them).
        before: `counters()` of the copy just before `process()`.
        result: `(x, y)` or `(x, y, sample_weight)`, or a Future of it (worker processes).
        description: the copy's `describe_slice()` right after `process()`.
        error: the exception raised loading the batch or computing the slice.
    """

    batch_index: int
    slice_idx: int
    batch: tuple[Any, Any] | None
    before: tuple[Any, ...] | None = None
    result: Any = None
    description: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def slice(self) -> tuple[Any, ...]:
        """The slice; waits for a worker process if one computes it (re-raising its error)."""
        if isinstance(self.result, Future):
            self.result, self.description = self.result.result()
        return self.result


END = None  # put after the last slice of the epoch, or after a hook raised ahead


class Producer:
    """Computes the slices of one epoch from a cursor, up to `depth` ahead of the consumer.

    Args:
        pre: the user's preprocessor; it is deep-copied here, on the caller's thread.
        plan: the epoch plan; `batch_index` the cursor's batch.
        gather: `gather(batch) -> (x, y)` reads a batch's arrays.
        loaded: the arrays of the batch at `batch_index` if the consumer holds them (the
            copy then continues mid-batch from the copied counters), else None.
        pending: the preprocessor state saved with a mid-batch cursor not yet re-read.
        key: `(seed, epoch)`, the first two parts of every slice's rng key.
        depth: how many slices may wait for the consumer.
        pool: worker processes for `process()`, or None to run it on the thread.
    """

    def __init__(
        self,
        pre: Preprocessor,
        plan: list[Batch],
        batch_index: int,
        gather: Callable[[Batch], tuple[Any, Any]],
        loaded: tuple[Any, Any] | None,
        pending: dict[str, Any] | None,
        key: tuple[int, int],
        depth: int,
        pool: ProcessPoolExecutor | None = None,
    ) -> None:
        self._pre = copy.deepcopy(pre)
        self._plan, self._batch_index, self._gather = plan, batch_index, gather
        self._loaded, self._pending, self._key, self._pool = loaded, pending, key, pool
        self._queue: queue.Queue[Ahead | None] = queue.Queue()
        # Slices computed and not yet taken by the consumer (who holds one more).
        self._room = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainkit-prefetch", daemon=True)
        self._thread.start()

    def next(self) -> Ahead | None:
        """The next slice in plan order (waits for it), or END."""
        try:
            return self._queue.get_nowait()  # the usual case: it is ready
        except queue.Empty:
            pass
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return END

    def taken(self) -> None:
        """The consumer took one slice to serve: make room for one more ahead."""
        self._room.release()

    def close(self) -> None:
        """Stop the thread and drop what it computed; returns once it has ended."""
        self._stop.set()
        while True:  # drop what was computed
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and isinstance(item.result, Future):
                item.result.cancel()
        if self._thread is not threading.current_thread():
            self._thread.join()

    # ------------------------------------------------------------------ the thread
    def _wait_for_room(self) -> bool:
        if self._room.acquire(blocking=False) and not self._stop.is_set():
            return True
        while not self._stop.is_set():
            if self._room.acquire(timeout=_POLL_S):
                return True
        return False

    def _put(self, item: Ahead | None) -> bool:
        if self._stop.is_set():
            return False
        self._queue.put(item)
        return True

    def _run(self) -> None:
        pre, plan, index = self._pre, self._plan, self._batch_index
        arrays, pending = self._loaded, self._pending
        while index < len(plan) and self._wait_for_room():
            carried = None
            try:
                if arrays is None:
                    arrays = carried = self._gather(plan[index])
                    begin_batch(pre, *arrays, pending)
                    pending = None
                item = Ahead(index, pre.slice_idx, carried, before=counters(pre))
                item.result = self._compute(pre, arrays, index)
                if not isinstance(item.result, Future):
                    item.description = pre.describe_slice()
            except BaseException as error:  # re-raised by the get() of this slice
                self._put(Ahead(index, pre.slice_idx, None, error=error))
                return
            if not self._put(item):
                return
            try:
                pre.update_state()
            except BaseException:  # the consumer runs its own update_state(), which raises
                break
            if pre.batch_exhausted:
                pre.batch_loaded = False
                arrays = None
                index += 1
        self._put(END)

    def _compute(self, pre: Preprocessor, arrays: tuple[Any, Any], index: int) -> Any:
        rng_key = (self._key[0], SLICE_STREAM, self._key[1], index, pre.slice_idx)
        if self._pool is None:
            pre.set_rng_key(rng_key)
            return check_slice(pre, pre.process(*arrays))
        return self._pool.submit(process_in_worker, pickle.dumps(pre), arrays, rng_key)


# ------------------------------------------------------------------ worker processes


def process_in_worker(
    pickled: bytes, arrays: tuple[Any, Any], rng_key: tuple[int, ...]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Run `process()` of a pickled preprocessor in a worker process."""
    pre = pickle.loads(pickled)
    pre.set_rng_key(rng_key)
    result = check_slice(pre, pre.process(*arrays))
    return result, pre.describe_slice()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` processes started without fork (forkserver, else spawn)."""
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def check_picklable(pre: Preprocessor, workers: int) -> None:
    """TypeError naming the class when `pre` cannot be sent to worker processes."""
    try:
        restored = pickle.loads(pickle.dumps(pre))
    except Exception as error:
        name = type(pre).__name__
        raise TypeError(
            f"prefetch_workers={workers} runs {name}.process() in worker processes, which "
            f"receive the preprocessor pickled, but {name} cannot be pickled: {error}. "
            "Keep only picklable attributes (no lambdas, open files, locks or models; "
            "define the class at module level, in a file, not in a notebook), or use "
            "background threads instead: prefetch_workers=0."
        ) from error
    if type(restored) is not type(pre):
        raise TypeError(f"{type(pre).__name__} does not pickle to itself.")


def check_copyable(pre: Preprocessor) -> str | None:
    """Why `pre` cannot be deep-copied (prefetch runs ahead on a copy), or None."""
    try:
        copy.deepcopy(pre)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None
