"""`DataGenerator`: serves slices from a source and owns the data cursor."""

from __future__ import annotations

import dataclasses
import functools
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from trainkit._validation import check_bool, check_int, check_unknown_keys, describe
from trainkit.data import prefetch as prefetch_lib
from trainkit.data import state as state_lib
from trainkit.data.arguments import (
    check_aligned,
    check_seed,
    check_shard,
    check_shuffle,
    select_sets,
)
from trainkit.data.plan import SLICE_STREAM, Batch, PlanSettings, epoch_plan, store_plan
from trainkit.data.preprocessors.base import (
    IdentityPreprocessor,
    Preprocessor,
    check_initialized,
    check_slice,
)
from trainkit.data.sources import gather, in_memory, open_sources
from trainkit.data.sources.store import (
    StorePreprocessor,
    StoreSource,
    check_store_arguments,
    is_store,
)

# Keyword arguments beyond the documented signature, with their defaults.
RARE_OPTIONS: dict[str, Any] = {
    "data_key": None,  # the dataset to read in an HDF5 data file holding several
    "labels_key": None,  # the dataset to read in an HDF5 labels file holding several
    "prefetch_workers": 0,  # worker processes for process() (Python-heavy preprocessors)
}

_EXHAUSTED = (
    "All data of epoch {epoch} has been served (all_data_exhausted=True). Call "
    "on_epoch_end() to start the next epoch, or iterate with `for x, y in datagen`."
)


class DataGenerator:
    """Serve `(x, y)` slices from files or arrays, knowing exactly which data each one is.

    The generator is the only owner of the data cursor `(epoch, batch index, slice_idx)`.
    Each epoch follows a pure epoch plan (see `plan()`); a `Preprocessor` decides how many
    slices each batch yields. `state_dict()` captures the cursor, and a generator restored
    with `load_state_dict()` serves exactly the slices the original would have served next.

    Args:
        data_path: a directory of numbered set files (`.npy`, `.npz`, `.h5/.hdf5`, `.csv`;
            set_nums are the number that varies across the names, in numeric order;
            `labels*` files are skipped), or one file holding every sample (`.npy` read
            by rows, `.h5` with one dataset or one key per set, `.npz`, `.csv`), or an
            offline store written by `write_store` (served as stored: its batch size,
            slices and sample weights; `shuffle` shuffles chunks and the batches inside
            them; `batch_size` is ignored). See docs/data_sources.md and docs/store.md.
        labels_path: labels aligned with the samples (one row per sample, in set order),
            or keyed by set (a directory of numbered files, an HDF5/`.npz` file with one
            key per set, a CSV with one column per set): keyed iff the keys or header
            equal the data's set_nums.
        data: in-memory samples (`np.ndarray`, `np.memmap`, `h5py.Dataset`) of numbers or
            bools; set `'k'` is the k-th `batch_size`-row range. Pass arrays by keyword:
            `DataGenerator(data=x, labels=y)` (positional arguments are paths).
        labels: in-memory labels, one row per sample.
        batch_size: samples per batch; may differ from the set size: multiples combine
            sets (`'1+2'`), fractions split them (`'1-a'`), other sizes cut at the sample level.
        shuffle: False; True or 'sets' to shuffle the set order every epoch (the first
            included); 'samples' for a new sample permutation every epoch (random reads:
            slower on disk).
        seed: all randomness derives from `(seed, epoch, ...)`; an int from 0 to 2**63 - 1.
        preprocessor: a `Preprocessor` instance (`TimeseriesPreprocessor(window_size=8)`,
            not the class or a name); None serves each batch whole.
        set_nums: the sets to serve, in this order (default: all, in numeric order).
        superbatch: read every set into memory once.
        drop_remainder: drop the last batch of an epoch when it is short.
        shuffle_group_batches: serve the batches split from one set in random order.
        shuffle_group_samples: shuffle samples within each set before splitting it, and
            within batches that combine several sets.
        loader, labels_loader: `loader(path, set_num) -> array` for other file formats.
        prefetch: slices computed ahead on a background thread, on a copy of the
            preprocessor (0: synchronous). Default 2, or 0 when the preprocessor cannot be
            deep-copied. What is served, in which order, the errors raised and
            `state_dict()` are the same with any value. `close()` (or garbage collection,
            or interpreter exit) stops the thread.
        prefetch_workers: (rare option) worker processes that run `process()` for
            Python-heavy preprocessors (started with forkserver or spawn, never fork);
            the preprocessor must pickle. Batches are still read on the thread.
        shard: `(index, count)`: serve rows `[index*B/count, (index+1)*B/count)` of each
            global batch of `B = batch_size` rows, for data-parallel workers.

    Raises:
        TypeError, ValueError: a bad argument or unreadable content; the message names
            the argument, file or key, what was received (never the data) and the fix.
        FileNotFoundError, PermissionError: a path that is missing or cannot be read.

    Warns:
        UserWarning: set files behind broken symbolic links, or sets without samples,
            are skipped (each named).

    Example:
        >>> dg = DataGenerator(data=x, labels=y, batch_size=32, shuffle=True, seed=1)
        >>> for x_slice, y_slice in dg:  # one epoch
        ...     pass  # fit x_slice, y_slice
    """

    def __init__(
        self,
        data_path: Any = None,
        labels_path: Any = None,
        *,
        data: Any = None,
        labels: Any = None,
        batch_size: int = 32,
        shuffle: bool | str = False,
        seed: int = 0,
        preprocessor: Preprocessor | None = None,
        set_nums: Sequence[Any] | None = None,
        superbatch: bool = False,
        drop_remainder: bool = False,
        shuffle_group_batches: bool = False,
        shuffle_group_samples: bool = False,
        loader: Any = None,
        labels_loader: Any = None,
        prefetch: int | None = None,
        shard: tuple[int, int] | None = None,
        **rare_options: Any,
    ) -> None:
        check_unknown_keys("DataGenerator", rare_options, [*_PUBLIC_ARGS, *RARE_OPTIONS])
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.seed = check_seed(seed)
        self.shuffle = check_shuffle(shuffle)
        self.superbatch = check_bool("superbatch", superbatch)
        prefetch_default = prefetch is None
        if prefetch is not None:
            check_int("prefetch", prefetch, minimum=0)
        self.shard = check_shard(shard, self.batch_size)
        self.options = {**RARE_OPTIONS, **rare_options}

        self._store: StoreSource | None = None
        source: Any
        labels_source: Any
        if is_store(data_path):  # slices written by write_store, served as stored
            check_store_arguments(
                data_path, self.shuffle, labels_path=labels_path, data=data, labels=labels,
                preprocessor=preprocessor, superbatch=superbatch, drop_remainder=drop_remainder,
                shuffle_group_batches=shuffle_group_batches, loader=loader,
                shuffle_group_samples=shuffle_group_samples, labels_loader=labels_loader,
                shard=shard, data_key=self.options["data_key"],
                labels_key=self.options["labels_key"],
            )  # fmt: skip
            self._store = StoreSource(data_path)
            self.batch_size = self._store.batch_size
            preprocessor = StorePreprocessor(self._store.manifest["slices_per_batch"])
            source, labels_source = self._store, None
        else:
            source, labels_source = open_sources(
                data_path, labels_path, data=data, labels=labels, set_size=self.batch_size,
                loader=loader, labels_loader=labels_loader,
                data_key=self.options["data_key"], labels_key=self.options["labels_key"],
            )  # fmt: skip
        if source is None:
            raise ValueError(
                "DataGenerator needs data: pass `data_path` (a file) or `data=` (an array). "
                "Received: data_path=None, data=None"
            )
        check_aligned(source, labels_source)
        if self.superbatch:
            source = in_memory(source)
            labels_source = None if labels_source is None else in_memory(labels_source)
        self.source, self.labels_source = source, labels_source

        self.preprocessor = IdentityPreprocessor() if preprocessor is None else preprocessor
        check_initialized(self.preprocessor)
        self.preprocessor.check_sample_shape(source.sample_shape)
        self.prefetch = self._prefetch_depth(prefetch, prefetch_default)
        self.prefetch_workers = check_int(
            "prefetch_workers", self.options["prefetch_workers"], minimum=0
        )
        if self.prefetch_workers and not self.prefetch:
            raise ValueError(
                "prefetch_workers runs process() ahead of the loop, so it needs prefetch >= 1 "
                "(how many slices are computed ahead; at least prefetch_workers to keep every "
                f"worker busy). Received: prefetch={self.prefetch}, "
                f"prefetch_workers={self.prefetch_workers}"
            )
        if self.prefetch_workers:
            prefetch_lib.check_picklable(self.preprocessor, self.prefetch_workers)

        self._sets = select_sets(source, set_nums)
        self.set_nums_original = [s.set_num for s in self._sets]
        self._settings = PlanSettings(
            batch_size=self.batch_size,
            seed=self.seed,
            shuffle=self.shuffle,
            drop_remainder=check_bool("drop_remainder", drop_remainder),
            shuffle_group_batches=check_bool("shuffle_group_batches", shuffle_group_batches),
            shuffle_group_samples=check_bool("shuffle_group_samples", shuffle_group_samples),
            shard=self.shard,
        )
        self.drop_remainder = self._settings.drop_remainder
        self.shuffle_group_batches = self._settings.shuffle_group_batches
        self.shuffle_group_samples = self._settings.shuffle_group_samples

        self.epoch = 0
        self.batch_index = 0
        self.all_data_exhausted = False
        self._plan = self.plan(0)
        if not self._plan and not sum(s.size for s in self._sets):
            raise ValueError(
                f"The selected sets of {source.description} hold no samples. "
                "Select sets that hold samples with `set_nums=`, or fill the set files. "
                f"Received: set_nums={describe(self.set_nums_original)}"
            )
        if not self._plan:
            raise ValueError(
                f"drop_remainder=True leaves no batch: the selected sets hold "
                f"{sum(s.size for s in self._sets)} samples, fewer than "
                f"batch_size={self.batch_size}. "
                "Use a smaller batch_size or drop_remainder=False."
            )
        self._batch: tuple[Any, Any] | None = None  # the loaded batch's arrays
        self._slice: tuple[Any, Any] | None = None  # the current slice, kept for peeks
        self._pending_preprocessor_state: dict[str, Any] | None = None
        self._description: dict[str, Any] | None = None  # describe_slice() of a slice ahead
        self._source_prints: tuple[Any, Any] | None = None
        # Prefetch: the producer (in a list the finalizer shares, so that closing does not
        # need the generator), the slice it computed that is being served, and the pool.
        self._ahead: list[prefetch_lib.Producer] = []
        self._head: prefetch_lib.Ahead | None = None
        self._pool: list[Any] = []
        self._finalizer = weakref.finalize(self, _close, self._ahead, self._pool)

    # ----------------------------------------------------------- state read by the trainer
    @property
    def batch_loaded(self) -> bool:
        return self.preprocessor.batch_loaded

    @property
    def batch_exhausted(self) -> bool:
        return self.preprocessor.batch_exhausted

    @property
    def slice_idx(self) -> int:
        return self.preprocessor.slice_idx

    @property
    def slices_per_batch(self) -> int:
        return self.preprocessor.slices_per_batch

    @property
    def current_batch(self) -> Batch:
        """The batch being served: the loaded one, else the last served, else the next."""
        index = self.batch_index
        if not self.preprocessor.batch_loaded and index > 0:
            index -= 1
        return self._plan[min(index, len(self._plan) - 1)]

    @property
    def set_name(self) -> str:
        return self.current_batch.set_name

    @property
    def set_num(self) -> str:
        """The set the current batch draws its first sample from."""
        return self.current_batch.pieces[0][0]

    @property
    def set_nums_to_process(self) -> list[str]:
        """Sets with samples not yet served this epoch, in the order they will be served."""
        remaining = self._plan[self.batch_index :]
        return list(dict.fromkeys(num for batch in remaining for num in batch.set_nums))

    # ------------------------------------------------------------------ the protocol
    def plan(self, epoch: int) -> list[Batch]:
        """The ordered batches of `epoch` (set names and sample ranges); loads nothing."""
        epoch = check_int("epoch", epoch)
        if self._store is not None:
            return store_plan(
                self._sets, self.seed, self.shuffle is not None, epoch, self._store.names
            )
        return epoch_plan(self._sets, self._settings, epoch)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        return len(self._plan)

    def get(self) -> tuple[Any, Any]:
        """The current slice `(x, y)`, preprocessed; `y` is None without labels.

        Loads the next batch first if needed. Calling it again without `update_state()`
        returns the same slice. With `prefetch`, the slice was computed ahead in the
        background; if that raised, the slice is computed again here, so the error is
        raised from the same state as without prefetch.
        """
        if self._slice is not None:
            return self._slice
        if self.all_data_exhausted:
            raise RuntimeError(_EXHAUSTED.format(epoch=self.epoch))
        if self.prefetch:
            head = self._take_ahead()
            if head is not None:
                try:
                    self._slice = head.slice()
                except BaseException:
                    self._drop_ahead()  # a get() after the error computes the slice again
                    raise
                self._description = head.description
                return self._slice
        x, y = self._loaded_batch()
        pre = self.preprocessor
        pre.set_rng_key((self.seed, SLICE_STREAM, self.epoch, self.batch_index, pre.slice_idx))
        self._slice, self._description = check_slice(pre, pre.process(x, y)), None
        return self._slice

    def update_state(self) -> None:
        """Advance one slice; after the last slice of the last batch, the epoch is exhausted."""
        if self.all_data_exhausted:
            raise RuntimeError(_EXHAUSTED.format(epoch=self.epoch))
        if not (self.prefetch and self._take_ahead() is not None):
            self._loaded_batch()
        pre = self.preprocessor
        pre.update_state()
        self._slice = self._head = self._description = None
        if pre.batch_exhausted:
            pre.batch_loaded = False
            self._batch = None
            self.batch_index += 1
            self.all_data_exhausted = self.batch_index >= len(self._plan)

    def on_epoch_end(self) -> int:
        """Start the next epoch and return its number."""
        self._drop_ahead()
        self.epoch += 1
        self.batch_index = 0
        self.all_data_exhausted = False
        self._batch = self._slice = None
        self._pending_preprocessor_state = None
        self.preprocessor.reset_state()
        self.preprocessor.on_epoch_end(self.epoch)
        self._plan = self.plan(self.epoch)
        return self.epoch

    def describe_slice(self) -> dict[str, Any]:
        """What the preprocessor did for the current slice (window, crop offsets, ...).

        The preprocessor's `describe_slice()` right after it computed the slice, also when
        it was computed ahead on a copy (with `prefetch`). Call it after `get()`.
        """
        if self._description is not None:
            return self._description
        return self.preprocessor.describe_slice()

    def close(self) -> None:
        """Stop the background prefetch and its worker processes (idempotent).

        Also called on garbage collection and at interpreter exit. A closed generator
        can still serve: the prefetch starts again at the next `get()`.
        """
        self._drop_ahead()
        _close([], self._pool)

    def __enter__(self) -> DataGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """Walk the remaining slices of the current epoch (or the next, if this one is done)."""
        if self.all_data_exhausted:
            self.on_epoch_end()
        while not self.all_data_exhausted:
            item = self.get()
            self.update_state()
            yield item

    def _loaded_batch(self) -> tuple[Any, Any]:
        if self._batch is None:
            batch = _gather_pair(self.source, self.labels_source, self._plan[self.batch_index])
            prefetch_lib.begin_batch(self.preprocessor, *batch, self._pending_preprocessor_state)
            self._batch, self._pending_preprocessor_state = batch, None
        return self._batch

    # ------------------------------------------------------------------ prefetch
    def _prefetch_depth(self, prefetch: int | None, default: bool) -> int:
        if default:
            # The default runs ahead on a copy only where a copy can be made.
            copyable = prefetch_lib.check_copyable(self.preprocessor) is None
            return prefetch_lib.DEFAULT_PREFETCH if copyable else 0
        assert prefetch is not None
        if prefetch:
            why = prefetch_lib.check_copyable(self.preprocessor)
            if why is not None:
                name = type(self.preprocessor).__name__
                raise TypeError(
                    f"prefetch={prefetch} computes slices ahead on a copy of the preprocessor, "
                    f"but {name} cannot be deep-copied ({why}). Make its attributes "
                    "copyable (or define __deepcopy__), or serve synchronously: prefetch=0."
                )
        return prefetch

    def _take_ahead(self) -> prefetch_lib.Ahead | None:
        """The slice computed ahead for the cursor, its batch begun; None to serve in sync.

        The slice is taken only if the copy that computed it had the counters and state the
        user's preprocessor has now; otherwise what was computed ahead is dropped and the
        generator serves synchronously from here on, with a warning naming what differed.
        """
        if self._head is not None:
            return self._head
        fresh = not self._ahead
        if fresh:
            self._start_ahead()
        try:
            head = self._ahead[0].next()
        except BaseException:  # Ctrl-C while waiting: start afresh at the next get()
            self._drop_ahead()
            raise
        why = self._mismatch(head)
        if why is not None:
            if fresh:  # a producer started at this cursor always agrees; serve this in sync
                self._drop_ahead()
            else:
                self._diverged(why)
            return None
        assert head is not None
        if head.error is not None:
            # Computed again here, synchronously: the same error is raised, from the same
            # state as without prefetch (on_batch_load run, the batch loaded), and a
            # transient failure (a disk hiccup) gets its retry.
            self._drop_ahead()
            return None
        pre = self.preprocessor
        if self._batch is None:
            assert head.batch is not None
            prefetch_lib.begin_batch(pre, *head.batch, self._pending_preprocessor_state)
            self._batch, self._pending_preprocessor_state = head.batch, None
        if not prefetch_lib.same(prefetch_lib.counters(pre), head.before):
            self._diverged(
                f"its counters or state_dict() before slice {head.slice_idx} of batch "
                f"{head.batch_index} differ from those of the copy that computed it ahead"
            )
            return None
        self._head = head
        # Room for one more ahead now, not after update_state(): the thread then works
        # while this slice's step runs in TensorFlow (which releases the GIL), rather
        # than competing with the loop's Python bookkeeping after it.
        self._ahead[0].taken()
        return head

    def _mismatch(self, head: prefetch_lib.Ahead | None) -> str | None:
        if head is None:
            return "the producer ended"
        if head.batch_index != self.batch_index:
            return f"batch {head.batch_index} computed ahead, batch {self.batch_index} due"
        if (head.batch is None) != (self._batch is not None) and head.error is None:
            return "the batch was loaded on one side only"
        if self._batch is not None and head.slice_idx != self.preprocessor.slice_idx:
            return f"slice {head.slice_idx} computed ahead, slice {self.slice_idx} due"
        return None

    def _diverged(self, why: str) -> None:
        name = type(self.preprocessor).__name__
        warnings.warn(
            f"prefetch stopped for this DataGenerator (epoch {self.epoch}, batch "
            f"{self.batch_index}): {name} diverged from the copy that runs ahead: {why}. The "
            "slice is computed here and the rest is served synchronously (what is served is "
            f"unchanged). Keep on_batch_load() and update_state() of {name} deterministic and "
            "do not change the preprocessor while an epoch is served, or pass prefetch=0.",
            UserWarning,
            stacklevel=4,
        )
        self._drop_ahead()
        self.prefetch = 0

    def _start_ahead(self) -> None:
        if self.prefetch_workers and not self._pool:
            self._pool.append(prefetch_lib.worker_pool(self.prefetch_workers))
        self._ahead.append(
            prefetch_lib.Producer(
                self.preprocessor,
                self._plan,
                self.batch_index,
                functools.partial(_gather_pair, self.source, self.labels_source),
                loaded=self._batch,
                pending=self._pending_preprocessor_state,
                key=(self.seed, self.epoch),
                depth=self.prefetch,
                pool=self._pool[0] if self._pool else None,
            )
        )

    def _drop_ahead(self) -> None:
        self._head = None
        _close(self._ahead, [])

    def _set_shard(self, shard: tuple[int, int] | None) -> None:
        """Serve worker `index`'s rows of every global batch (a trainer's multi-worker setup).

        Only before the generator has served anything: the plan changes with the shard.
        """
        if self.preprocessor.batch_loaded or self.batch_index or self.epoch:
            raise RuntimeError(
                "The shard of a DataGenerator can only be set before it serves its first "
                f"slice; this one is at epoch {self.epoch}, batch {self.batch_index}. Pass "
                "`shard=` when building it, or hand the trainer a fresh generator."
            )
        self._drop_ahead()
        self.shard = check_shard(shard, self.batch_size)
        self._settings = dataclasses.replace(self._settings, shard=self.shard)
        self._plan = self.plan(self.epoch)

    # ------------------------------------------------------------------ state dicts
    def fingerprint(self) -> dict[str, Any]:
        """What the data and the data-affecting settings are (compared on load).

        Counts, shapes, dtypes and file sizes of the sources (no content hashes), and
        the settings that change what is served.
        """
        settings = self._settings
        if self._source_prints is None:  # the sources do not change; taken once
            self._source_prints = (
                state_lib.source_print(self.source),
                state_lib.source_print(self.labels_source),
            )
        return {
            "data": self._source_prints[0],
            "labels": self._source_prints[1],
            "batch_size": settings.batch_size,
            "seed": settings.seed,
            "shuffle": settings.shuffle,
            "shuffle_group_batches": settings.shuffle_group_batches,
            "shuffle_group_samples": settings.shuffle_group_samples,
            "drop_remainder": settings.drop_remainder,
            "set_nums": state_lib.compact(self.set_nums_original),
            "preprocessor": self.preprocessor.get_config(),
            "shard_count": settings.shard[1] if settings.shard else None,
        }

    def state_dict(self) -> dict[str, Any]:
        """The cursor and the preprocessor's state, JSON-serializable and small."""
        pre = self.preprocessor
        return {
            "version": state_lib.STATE_VERSION,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "all_data_exhausted": self.all_data_exhausted,
            "batch_loaded": pre.batch_loaded,
            "batch_exhausted": pre.batch_exhausted,
            "slice_idx": pre.slice_idx,
            "slices_per_batch": pre.slices_per_batch,
            "preprocessor": pre.state_dict(),
            "fingerprint": self.fingerprint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the generator that produced `state` was.

        Raises:
            ValueError: the state was taken from other data or other settings; the
                message names what differs.
        """
        state_lib.check_loadable(state, self.fingerprint())
        self._drop_ahead()
        pre = self.preprocessor
        pre.reset_state()
        self.epoch = state["epoch"]
        self._plan = self.plan(self.epoch)
        self.batch_index = state["batch_index"]
        self.all_data_exhausted = state["all_data_exhausted"]
        self._batch = self._slice = self._description = None
        pre.batch_loaded = state["batch_loaded"]
        pre.batch_exhausted = state["batch_exhausted"]
        pre.slice_idx = state["slice_idx"]
        pre.slices_per_batch = state["slices_per_batch"]
        pre.load_state_dict(state["preprocessor"])
        # Mid-batch, the batch is re-read at the next get(): on_batch_load() runs again and
        # this state is loaded once more after it, so the saved state wins.
        self._pending_preprocessor_state = state["preprocessor"]

    # ------------------------------------------------------------------ adapters
    def as_py_dataset(self, epoch: int | None = None, **kwargs: Any) -> Any:
        """A `keras.utils.PyDataset` of one epoch's slices; read-only (the cursor never moves).

        Item i is slice i of `epoch` (default: the current one); `len()` counts slices, or
        raises TypeError when the preprocessor cannot count them. See
        `trainkit.data.adapters.as_py_dataset`.
        """
        from trainkit.data import adapters

        return adapters.as_py_dataset(self, epoch, **kwargs)

    def as_tf_dataset(self, epoch: int | None = None) -> Any:
        """A `tf.data.Dataset` of one epoch's slices; read-only (the cursor never moves).

        See `trainkit.data.adapters.as_tf_dataset`.
        """
        from trainkit.data import adapters

        return adapters.as_tf_dataset(self, epoch)


def _gather_pair(source: Any, labels_source: Any, batch: Batch) -> tuple[Any, Any]:
    return gather(source, batch), gather(labels_source, batch)


def _close(producers: list[prefetch_lib.Producer], pools: list[Any]) -> None:
    """Stop `producers` and shut `pools` down, emptying both lists (also a finalizer)."""
    while producers:
        producers.pop().close()
    while pools:
        pools.pop().shutdown(wait=True, cancel_futures=True)


_PUBLIC_ARGS = [
    "data_path", "labels_path", "data", "labels", "batch_size", "shuffle", "seed",
    "preprocessor", "set_nums", "superbatch", "drop_remainder", "shuffle_group_batches",
    "shuffle_group_samples", "loader", "labels_loader", "prefetch", "shard",
]  # fmt: skip
