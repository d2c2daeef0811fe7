"""`DataGenerator`: serves slices from a source and owns the data cursor."""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from trainkit._validation import check_bool, check_int, check_unknown_keys, describe
from trainkit.data import prefetch as prefetch_lib
from trainkit.data import state as state_lib
from trainkit.data import whole_batches as whole
from trainkit.data.arguments import (
    check_aligned,
    check_seed,
    check_shard,
    check_shuffle,
    select_sets,
)
from trainkit.data.plan import Batch, PlanSettings, epoch_plan, slice_key, store_plan
from trainkit.data.preprocessors.base import (
    IdentityPreprocessor,
    Preprocessor,
    begin_batch,
    check_initialized,
    end_slice,
    restore_counters,
    serve_slice,
)
from trainkit.data.sources import gather, in_memory, open_sources
from trainkit.data.sources.offline_store import (
    StoreSource,
    check_keys_need_a_store,
    check_store_arguments,
    is_store,
    open_store,
)
from trainkit.data.walk import SliceWalk, Step
from trainkit.data.whole_batches import WholeBatches

# Keyword arguments beyond the documented signature, with their defaults.
RARE_OPTIONS: dict[str, Any] = {
    "data_key": None,  # the dataset to read in an HDF5 data file holding several
    "labels_key": None,  # the dataset to read in an HDF5 labels file holding several
    "prefetch_workers": 0,  # worker processes for process() (Python-heavy preprocessors)
    "keys": None,  # the members of an offline store's dict x to serve (None: every one)
}

_EXHAUSTED = (
    "All data of epoch {epoch} has been served (all_data_exhausted=True). Call "
    "on_epoch_end() to start the next epoch, or iterate with `for x, y in datagen`."
)
_FIXED = (
    "`{name}` changes what is served, so it is fixed when the DataGenerator is built (a "
    "state dict is checked against it): build another one, DataGenerator(..., {argument}). "
    "Received: {name}={value}"
)
_CURSOR = (
    "`{name}` is part of the generator's cursor, which moves only as slices are served "
    "(get(), update_state(), on_epoch_end()). To continue elsewhere, load a state dict: "
    "dg.load_state_dict(state). Received: {name}={value}"
)


class Cursor(NamedTuple):
    """Where a DataGenerator is, beside its preprocessor's counters; written in one place.

    Attributes:
        epoch: the epoch being served.
        batch_index: the batch of the epoch plan being served, or due next.
        exhausted: every slice of the epoch was served (`all_data_exhausted`).
        pending: the preprocessor state saved with a mid-batch cursor, put back once the
            batch is read again (`on_batch_load()` runs first); None otherwise.
    """

    epoch: int = 0
    batch_index: int = 0
    exhausted: bool = False
    pending: dict[str, Any] | None = None


def _fixed(name: str, doc: str, read: Any, argument: str | None = None) -> property:
    """A data-affecting setting: readable, refused on assignment naming `argument`."""

    def put(self: Any, value: Any) -> None:
        argument_text = argument or f"{name}=..."
        raise AttributeError(
            _FIXED.format(name=name, argument=argument_text, value=describe(value))
        )

    return property(read, put, doc=doc)


def _cursor_part(name: str, doc: str, read: Any) -> property:
    """A part of the cursor: readable, refused on assignment (load a state dict instead)."""

    def put(self: Any, value: Any) -> None:
        raise AttributeError(_CURSOR.format(name=name, value=describe(value)))

    return property(read, put, doc=doc)


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
            preprocessor (0: synchronous). Default: adaptive, up to 2 ahead while the
            loop leaves time to compute them (a step that takes a while), synchronous
            while it does not (0 when the preprocessor cannot be deep-copied). What is
            served, in which order, the errors raised and `state_dict()` are the same
            with any value. `close()` (or garbage collection, or interpreter exit) stops
            the thread. Assigning `dg.prefetch = N` takes effect at the next `get()`.
        prefetch_workers: (rare option) worker processes that run `process()` for
            Python-heavy preprocessors (started with forkserver or spawn, never fork);
            the preprocessor must pickle, and the script that starts them needs an
            `if __name__ == "__main__":` guard. `prefetch` must be at least this (default:
            the larger of 2 and this). Batches are still read on the thread.
        shard: `(index, count)`: serve rows `[index*B/count, (index+1)*B/count)` of each
            global batch of `B = batch_size` rows, for data-parallel workers.

    Raises:
        TypeError, ValueError: a bad argument or unreadable content; the message names
            the argument, file or key, what was received (never the data) and the fix.
        FileNotFoundError, PermissionError: a path that is missing or cannot be read.

    Warns:
        UserWarning: set files behind broken symbolic links, or sets without samples,
            are skipped (each named).

    The data-affecting settings (`batch_size`, `shuffle`, `seed`, `drop_remainder`, ...)
    and the cursor (`epoch`, `batch_index`, `all_data_exhausted`) are read-only
    attributes: assigning one raises AttributeError saying what to do instead.

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
        batch_size = check_int("batch_size", batch_size, minimum=1)
        seed = check_seed(seed)
        shuffle_mode = check_shuffle(shuffle)
        self._superbatch = check_bool("superbatch", superbatch)
        if prefetch is not None:
            check_int("prefetch", prefetch, minimum=0)
        shard = check_shard(shard, batch_size)
        self._options = {**RARE_OPTIONS, **rare_options}

        self._store: StoreSource | None = None
        source: Any
        labels_source: Any
        if is_store(data_path):  # slices written by write_store, served as stored
            check_store_arguments(
                data_path, shuffle_mode, labels_path=labels_path, data=data, labels=labels,
                superbatch=superbatch, drop_remainder=drop_remainder,
                shuffle_group_batches=shuffle_group_batches, loader=loader,
                shuffle_group_samples=shuffle_group_samples, labels_loader=labels_loader,
                shard=shard, data_key=self._options["data_key"],
                labels_key=self._options["labels_key"],
            )  # fmt: skip
            self._store, preprocessor = open_store(data_path, preprocessor, self._options["keys"])
            batch_size = self._store.batch_size
            source, labels_source = self._store, None
        else:
            check_keys_need_a_store(self._options["keys"])
            source, labels_source = open_sources(
                data_path, labels_path, data=data, labels=labels, set_size=batch_size,
                loader=loader, labels_loader=labels_loader,
                data_key=self._options["data_key"], labels_key=self._options["labels_key"],
            )  # fmt: skip
        if source is None:
            raise ValueError(
                "DataGenerator needs data: pass `data_path` (a file) or `data=` (an array). "
                "Received: data_path=None, data=None"
            )
        check_aligned(source, labels_source)
        if self._superbatch:
            source = in_memory(source)
            labels_source = None if labels_source is None else in_memory(labels_source)
        self._source, self._labels_source = source, labels_source

        self._preprocessor = IdentityPreprocessor() if preprocessor is None else preprocessor
        check_initialized(self._preprocessor)
        self._preprocessor.check_sample_shape(source.sample_shape)
        self._workers = check_int("prefetch_workers", self._options["prefetch_workers"], minimum=0)
        self._prefetch = self._prefetcher(prefetch)

        self._sets = select_sets(source, set_nums)
        self._set_nums = [s.set_num for s in self._sets]
        self._settings = PlanSettings(
            batch_size=batch_size,
            seed=seed,
            shuffle=shuffle_mode,
            drop_remainder=check_bool("drop_remainder", drop_remainder),
            shuffle_group_batches=check_bool("shuffle_group_batches", shuffle_group_batches),
            shuffle_group_samples=check_bool("shuffle_group_samples", shuffle_group_samples),
            shard=shard,
        )
        self._cursor = Cursor()
        self._plan = self.plan(0)
        if not self._plan and not sum(s.size for s in self._sets):
            raise ValueError(
                f"The selected sets of {source.description} hold no samples. "
                "Select sets that hold samples with `set_nums=`, or fill the set files. "
                f"Received: set_nums={describe(self._set_nums)}"
            )
        if not self._plan:
            raise ValueError(
                f"drop_remainder=True leaves no batch: the selected sets hold "
                f"{sum(s.size for s in self._sets)} samples, fewer than "
                f"batch_size={batch_size}. "
                "Use a smaller batch_size or drop_remainder=False."
            )
        self._batch: tuple[Any, Any] | None = None  # the loaded batch's arrays
        self._slice: tuple[Any, ...] | None = None  # the current slice, kept for peeks
        self._description: dict[str, Any] | None = None  # describe_slice() of a slice ahead
        self._source_prints: tuple[Any, Any, Any] | None = None
        self._repeat_checked = False  # the first slice is computed twice and compared

    # ------------------------------------------------------------------ settings (fixed)
    batch_size = _fixed("batch_size", "Samples per batch.", lambda s: s._settings.batch_size)
    seed = _fixed("seed", "The seed all randomness derives from.", lambda s: s._settings.seed)
    shuffle = _fixed(
        "shuffle", "None, 'sets' or 'samples': what is shuffled.", lambda s: s._settings.shuffle
    )
    drop_remainder = _fixed(
        "drop_remainder", "Whether a short last batch is dropped.",
        lambda s: s._settings.drop_remainder,
    )  # fmt: skip
    shuffle_group_batches = _fixed(
        "shuffle_group_batches", "Whether the batches split from one set are shuffled.",
        lambda s: s._settings.shuffle_group_batches,
    )  # fmt: skip
    shuffle_group_samples = _fixed(
        "shuffle_group_samples", "Whether samples are shuffled within sets and batches.",
        lambda s: s._settings.shuffle_group_samples,
    )  # fmt: skip
    shard = _fixed("shard", "`(index, count)` of a data-parallel worker, or None.",
                   lambda s: s._settings.shard)  # fmt: skip
    superbatch = _fixed("superbatch", "Whether every set is read into memory once.",
                        lambda s: s._superbatch)  # fmt: skip
    preprocessor = _fixed(
        "preprocessor", "The Preprocessor that turns batches into slices.",
        lambda s: s._preprocessor,
    )  # fmt: skip
    source = _fixed(
        "source",
        "Where the samples are read from.",
        lambda s: s._source,
        "data_path=... or data=...",
    )
    labels_source = _fixed(
        "labels_source", "Where the labels are read from (None without labels).",
        lambda s: s._labels_source, "labels_path=... or labels=...",
    )  # fmt: skip
    set_nums_original = _fixed(
        "set_nums_original", "The sets served, in their order before any shuffle.",
        lambda s: s._set_nums, "set_nums=...",
    )  # fmt: skip
    options = _fixed(
        "options", "The rare options, with their defaults.", lambda s: s._options,
        "data_key=..., labels_key=..., prefetch_workers=...",
    )  # fmt: skip
    prefetch_workers = _fixed(
        "prefetch_workers", "Worker processes that run process() (0: none).", lambda s: s._workers
    )

    @property
    def prefetch(self) -> int:
        """Slices computed ahead at most (0: synchronous); assignable, from the next get().

        Assign None for the default (adaptive) prefetch.
        """
        return self._prefetch.depth if self._prefetch is not None else 0

    @prefetch.setter
    def prefetch(self, value: int | None) -> None:
        old = self._prefetch
        depth = None if value is None else check_int("prefetch", value, minimum=0)
        self._prefetch = self._prefetcher(depth)
        if old is not None:
            old.close()

    # ------------------------------------------------------------------ the cursor (read)
    epoch = _cursor_part("epoch", "The epoch being served.", lambda s: s._cursor.epoch)
    batch_index = _cursor_part(
        "batch_index", "The batch of the epoch plan served or due.",
        lambda s: s._cursor.batch_index,
    )  # fmt: skip
    all_data_exhausted = _cursor_part(
        "all_data_exhausted", "Every slice of the epoch was served; on_epoch_end() is due.",
        lambda s: s._cursor.exhausted,
    )  # fmt: skip

    @property
    def batch_loaded(self) -> bool:
        return self._preprocessor.batch_loaded

    @property
    def batch_exhausted(self) -> bool:
        return self._preprocessor.batch_exhausted

    @property
    def slice_idx(self) -> int:
        return self._preprocessor.slice_idx

    @property
    def slices_per_batch(self) -> int:
        return self._preprocessor.slices_per_batch

    @property
    def current_batch(self) -> Batch:
        """The batch being served: the loaded one, else the last served, else the next."""
        index = self._cursor.batch_index
        if not self._preprocessor.batch_loaded and index > 0:
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
        remaining = self._plan[self._cursor.batch_index :]
        return list(dict.fromkeys(num for batch in remaining for num in batch.set_nums))

    # ------------------------------------------------------------------ the protocol
    def plan(self, epoch: int) -> list[Batch]:
        """The ordered batches of `epoch` (set names and sample ranges); loads nothing."""
        epoch = check_int("epoch", epoch)
        settings = self._settings
        if self._store is not None:
            return store_plan(
                self._sets, settings.seed, settings.shuffle is not None, epoch, self._store.names
            )
        return epoch_plan(self._sets, settings, epoch)

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
        cursor = self._cursor
        if cursor.exhausted:
            raise RuntimeError(_EXHAUSTED.format(epoch=cursor.epoch))
        pre, prefetch = self._preprocessor, self._prefetch
        if prefetch is not None:
            arrived = time.perf_counter()
            head = self._head()
            if head is not None:
                self._slice, self._description = prefetch.serve(pre, head)
                prefetch.timed(arrived, head)
                self._repeat_checked = True  # computed ahead on a copy: not checked
                return self._slice
        x, y = self._loaded_batch()
        key = slice_key(self._settings.seed, cursor.epoch, cursor.batch_index, pre.slice_idx)
        rows = self._plan[cursor.batch_index].global_rows
        self._slice, self._description = serve_slice(pre, x, y, key, rows), None
        self._check_repeatable()
        if prefetch is not None:
            prefetch.timed(arrived, None)
        return self._slice

    def _check_repeatable(self) -> None:
        """Compute the generator's first slice again, when served here, and compare.

        A `process()` drawing from `np.random` serves another slice each time; one extra
        `process()` call per generator shows it (warning naming `self.rng`). A first slice
        computed ahead by prefetch is not checked (its thread's walk stays as it was).
        """
        if self._repeat_checked or self._batch is None:
            return
        self._repeat_checked = True
        cursor, pre = self._cursor, self._preprocessor
        key = slice_key(self._settings.seed, cursor.epoch, cursor.batch_index, pre.slice_idx)
        rows = self._plan[cursor.batch_index].global_rows
        if not _same_slice(self._slice, serve_slice(pre, *self._batch, key, rows)):
            warnings.warn(_UNREPEATABLE.format(name=type(pre).__name__), stacklevel=3)

    def update_state(self) -> None:
        """Advance one slice; after the last slice of the last batch, the epoch is exhausted."""
        cursor = self._cursor
        if cursor.exhausted:
            raise RuntimeError(_EXHAUSTED.format(epoch=cursor.epoch))
        prefetch = self._prefetch
        if prefetch is not None and self._head() is not None:
            prefetch.consume()  # the slice computed ahead
        elif self._batch is None:
            self._loaded_batch()
        self._slice = self._description = None
        if end_slice(self._preprocessor):  # the batch ended
            index = cursor.batch_index + 1
            self._move(Cursor(cursor.epoch, index, index >= len(self._plan)))

    def _serve_whole_batches(
        self, limit: int, ends_after: Callable[[int], bool]
    ) -> WholeBatches | None:
        """The current slice's batch and the next ones of its size, up to `limit`, served
        at once and consumed (`get()` and `update_state()` once per batch, in one go), for
        a trainer's fused step; trainkit's own protocol, not a public one.

        Only where each slice is a whole batch of in-memory arrays as served (no
        preprocessor, no store, nothing computed ahead, not a subclass that may serve
        otherwise) and the current slice was served by `get()`; None otherwise (nothing
        moves: serve slice by slice). The run ends with the epoch, before a batch of
        another size, or after the `n`-th batch where `ends_after(n)`.
        """
        pre, prefetch, cursor = self._preprocessor, self._prefetch, self._cursor
        if (
            type(self) is not DataGenerator
            or type(pre) is not IdentityPreprocessor
            or self._slice is None
            or pre.slice_idx != 0
            or pre.slices_per_batch != 1
            or (prefetch is not None and (prefetch.running_ahead or prefetch.head is not None))
            or not (whole.servable(self._source) and whole.servable(self._labels_source))
        ):
            return None
        start = cursor.batch_index
        end = start + whole.run_length(self._plan, start, limit, ends_after)
        batches = self._plan[start:end]
        x = whole.stacked_rows(self._source, batches)
        y = (
            None
            if self._labels_source is None
            else whole.stacked_rows(self._labels_source, batches)
        )
        self.update_state()  # the first batch's slice, served by get()
        if end > start + 1:  # the batches after it, each begun, served and ended as one
            pre.set_rng_key(
                slice_key(self._settings.seed, cursor.epoch, end - 1, 0), batches[-1].global_rows
            )
            self._move(Cursor(cursor.epoch, end, end >= len(self._plan)))
        sources = (self._source, self._labels_source)
        return whole.WholeBatches(x, y, batches, end >= len(self._plan), sources)

    def on_epoch_end(self) -> int:
        """Start the next epoch and return its number."""
        epoch = self._cursor.epoch + 1
        self._move(Cursor(epoch), jump=True)
        self._preprocessor.reset_state()
        self._preprocessor.on_epoch_end(epoch)
        return epoch

    def describe_slice(self) -> dict[str, Any]:
        """What the preprocessor did for the current slice (window, crop offsets, ...).

        The preprocessor's `describe_slice()` right after it computed the slice, also when
        it was computed ahead on a copy (with `prefetch`). Call it after `get()`.
        """
        if self._description is not None:
            return self._description
        return self._preprocessor.describe_slice()

    def close(self) -> None:
        """Stop the background prefetch and its worker processes (idempotent).

        Also called on garbage collection and at interpreter exit. A closed generator
        can still serve: the prefetch starts again at the next `get()`.
        """
        if self._prefetch is not None:
            self._prefetch.close()

    def __enter__(self) -> DataGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """Walk the remaining slices of the current epoch (or the next, if this one is done)."""
        if self._cursor.exhausted:
            self.on_epoch_end()
        while not self._cursor.exhausted:
            item = self.get()
            self.update_state()
            yield item

    # ------------------------------------------------------------------ the cursor (write)
    def _move(
        self, cursor: Cursor, batch: tuple[Any, Any] | None = None, *, jump: bool = False
    ) -> None:
        """The only writer of the cursor; what was kept for the old one is dropped.

        Args:
            cursor: where the generator is now.
            batch: the arrays of the batch just begun at `cursor` (None: none is loaded).
            jump: not the next step of the walk (another epoch, a loaded state): what
                prefetch computed ahead is dropped too.
        """
        if jump and self._prefetch is not None:
            self._prefetch.drop()
        if cursor.epoch != self._cursor.epoch and not self._same_plan_every_epoch():
            self._plan = self.plan(cursor.epoch)
        self._cursor, self._batch = cursor, batch
        self._slice = self._description = None

    def _same_plan_every_epoch(self) -> bool:
        """Nothing is shuffled: `plan(epoch)` is the same for every epoch (kept, not cut
        again at each epoch's start)."""
        settings = self._settings
        return (
            self._store is None
            and settings.shuffle is None
            and not settings.shuffle_group_batches
            and not settings.shuffle_group_samples
        )

    def _loaded_batch(self) -> tuple[Any, Any]:
        if self._batch is None:
            batch = self._plan[self._cursor.batch_index]
            self._begin(_gather_pair(self._source, self._labels_source, batch))
        assert self._batch is not None
        return self._batch

    def _begin(self, batch: tuple[Any, Any]) -> None:
        """Begin the batch due at the cursor on the user's preprocessor (restoring if due)."""
        cursor = self._cursor
        begin_batch(self._preprocessor, *batch, cursor.pending)
        if cursor.pending is not None:  # put back now: the batch is read again
            cursor = Cursor(cursor.epoch, cursor.batch_index, cursor.exhausted)
        self._move(cursor, batch)

    def _head(self) -> Step | None:
        """The slice computed ahead for the cursor, its batch begun; None to serve here."""
        prefetch = self._prefetch
        if prefetch is None or not (prefetch.running_ahead or prefetch.head):
            return None
        loaded = self._batch is not None
        pre, index = self._preprocessor, self._cursor.batch_index
        return prefetch.take(pre, index, loaded, self._walk_here, self._begin)

    def _walk_here(self) -> SliceWalk:
        """A walk from the cursor on a copy of the preprocessor (what prefetch runs)."""
        assert self._prefetch is not None
        cursor = self._cursor
        return SliceWalk(
            copy.deepcopy(self._preprocessor),
            self._plan,
            functools.partial(_gather_pair, self._source, self._labels_source),
            seed=self._settings.seed,
            epoch=cursor.epoch,
            batch_index=cursor.batch_index,
            loaded=self._batch,
            pending=cursor.pending,
            pool=self._prefetch.pool(),
            negotiation=self._prefetch.negotiation,
            record=True,
        )

    # ------------------------------------------------------------------ prefetch
    def _prefetcher(self, prefetch: int | None) -> prefetch_lib.Prefetcher | None:
        """The consumer side of prefetch for `prefetch` (None: the default), or None."""
        workers, pre = self._workers, self._preprocessor
        adaptive = prefetch is None and not workers
        if prefetch is None:
            # The default runs ahead on a copy only where a copy can be made.
            copyable = prefetch_lib.check_copyable(pre) is None
            prefetch = max(prefetch_lib.DEFAULT_PREFETCH, workers) if copyable else 0
        elif prefetch:
            why = prefetch_lib.check_copyable(pre)
            if why is not None:
                name = type(pre).__name__
                raise TypeError(
                    f"prefetch={prefetch} computes slices ahead on a copy of the preprocessor, "
                    f"but {name} cannot be deep-copied ({why}). Make its attributes "
                    "copyable (or define __deepcopy__), or serve synchronously: prefetch=0."
                )
        if workers and prefetch < workers:
            raise ValueError(
                "prefetch_workers runs process() ahead of the loop, so it needs prefetch >= "
                "prefetch_workers (how many slices are computed ahead: at least one per "
                f"worker to keep every worker busy). Received: prefetch={prefetch}, "
                f"prefetch_workers={workers}"
            )
        if workers:
            prefetch_lib.check_picklable(pre, workers)
        if not prefetch:
            return None
        return prefetch_lib.Prefetcher(prefetch, workers, adaptive=adaptive)

    def _set_shard(self, shard: tuple[int, int] | None) -> None:
        """Serve worker `index`'s rows of every global batch (a trainer's multi-worker setup).

        Only before the generator has served anything: the plan changes with the shard.
        """
        cursor = self._cursor
        if self._preprocessor.batch_loaded or cursor.batch_index or cursor.epoch:
            raise RuntimeError(
                "The shard of a DataGenerator can only be set before it serves its first "
                f"slice; this one is at epoch {cursor.epoch}, batch {cursor.batch_index}. "
                "Pass `shard=` when building it, or hand the trainer a fresh generator."
            )
        self._settings = dataclasses.replace(
            self._settings, shard=check_shard(shard, self._settings.batch_size)
        )
        self._plan = self.plan(cursor.epoch)
        self._move(Cursor(cursor.epoch), jump=True)

    # ------------------------------------------------------------------ state dicts
    def fingerprint(self) -> dict[str, Any]:
        """What the data and the data-affecting settings are (compared on load).

        Counts, shapes, dtypes and file sizes of the sources (no content hashes), and
        the settings that change what is served.
        """
        settings = self._settings
        if self._source_prints is None:  # the sources and sets do not change; taken once
            self._source_prints = (
                state_lib.source_print(self._source),
                state_lib.source_print(self._labels_source),
                state_lib.compact(self._set_nums),
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
            "set_nums": _fresh(self._source_prints[2]),  # the caller may change its copy
            "preprocessor": self._preprocessor.get_config(),
            "shard_count": settings.shard[1] if settings.shard else None,
        }

    def state_dict(self) -> dict[str, Any]:
        """The cursor and the preprocessor's state, JSON-serializable and small."""
        pre, cursor = self._preprocessor, self._cursor
        return {
            "version": state_lib.STATE_VERSION,
            "epoch": cursor.epoch,
            "batch_index": cursor.batch_index,
            "all_data_exhausted": cursor.exhausted,
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
        pre = self._preprocessor
        pre.reset_state()
        restore_counters(
            pre, state["batch_loaded"], state["batch_exhausted"], state["slice_idx"],
            state["slices_per_batch"],
        )  # fmt: skip
        pre.load_state_dict(state["preprocessor"])
        # Mid-batch, the batch is re-read at the next get(): on_batch_load() runs again and
        # this state is loaded once more after it, so the saved state wins.
        self._move(
            Cursor(
                state["epoch"], state["batch_index"], state["all_data_exhausted"],
                pending=state["preprocessor"],
            ),
            jump=True,
        )  # fmt: skip

    # ------------------------------------------------------------------ adapters
    def for_prediction(self) -> DataGenerator:
        """A generator over the same data for predicting: sample order, no augmentation.

        Same sources, sets, `batch_size`, `drop_remainder` and shard, with shuffling off
        (every shuffle option) and the preprocessor replaced by its
        `Preprocessor.for_prediction()` form (random augmenters dropped, padding kept, a
        random crop centered; None serves the batches as they are). It starts at the
        first slice of epoch 0 and shares no state with this generator (the preprocessor
        form is a copy). `tg.predict(datagen)` warns on a generator that shuffles or
        augments and names this method.

        Example:
            >>> import numpy as np
            >>> from trainkit import DataGenerator, JitterPreprocessor
            >>> clouds = np.zeros((8, 5, 3), "float32")
            >>> train = DataGenerator(data=clouds, batch_size=4, shuffle=True,
            ...                       preprocessor=JitterPreprocessor(0.1))
            >>> view = train.for_prediction()  # then tg.predict(view)
            >>> view.shuffle, type(view.preprocessor).__name__
            (None, 'IdentityPreprocessor')
        """
        view = copy.copy(self)
        form = self._preprocessor.for_prediction()
        view._preprocessor = IdentityPreprocessor() if form is None else copy.deepcopy(form)
        check_initialized(view._preprocessor)
        view._settings = dataclasses.replace(
            self._settings, shuffle=None, shuffle_group_batches=False, shuffle_group_samples=False
        )
        view._cursor = Cursor()
        view._plan = view.plan(0)
        view._batch = view._slice = view._description = None
        view._prefetch = view._prefetcher(None)
        return view

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


_UNREPEATABLE = (
    "{name}.process() returned a different slice when called twice for the same slice "
    "with the same rng: it likely draws from NumPy's or Python's global random state "
    "(np.random.*, random.*), which a resumed run cannot repeat, and two identical "
    "generators serve different data. Draw from self.rng instead (e.g. "
    "self.rng.normal(size=batch.shape)): the DataGenerator derives it from (seed, epoch, "
    "batch index, slice_idx). If process() changes self or reads a clock, move that out "
    "of it. trainkit.testing.check_preprocessor says which."
)


def _same_slice(first: Any, second: Any) -> bool:
    """Whether two results of process() hold equal values (NaN equal to NaN)."""
    if isinstance(first, dict):
        return (
            isinstance(second, dict)
            and first.keys() == second.keys()
            and all(_same_slice(first[k], second[k]) for k in first)
        )
    if isinstance(first, (list, tuple)):
        return (
            isinstance(second, (list, tuple))
            and len(first) == len(second)
            and all(map(_same_slice, first, second))
        )
    if first is None or second is None:
        return first is second
    try:
        return bool(np.array_equal(np.asarray(first), np.asarray(second), equal_nan=True))
    except (TypeError, ValueError):  # values NumPy cannot compare: no warning
        return True


def _fresh(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _gather_pair(source: Any, labels_source: Any, batch: Batch) -> tuple[Any, Any]:
    return gather(source, batch), gather(labels_source, batch)


_PUBLIC_ARGS = [
    "data_path", "labels_path", "data", "labels", "batch_size", "shuffle", "seed",
    "preprocessor", "set_nums", "superbatch", "drop_remainder", "shuffle_group_batches",
    "shuffle_group_samples", "loader", "labels_loader", "prefetch", "shard",
]  # fmt: skip
