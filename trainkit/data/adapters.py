"""Read-only views of one epoch of a DataGenerator for the Keras/TensorFlow ecosystem.

`as_py_dataset(dg)` is a `keras.utils.PyDataset` and `as_tf_dataset(dg)` a
`tf.data.Dataset`. Item `i` is the i-th slice of the epoch, computed from
`(seed, epoch, i)` with the generator's own slice walk (`trainkit.data.walk`), on a
deep copy of the preprocessor: Keras' peeks, read-ahead and workers never move the
generator's cursor.

Limits: the views serve one epoch (`model.fit(view, epochs=3)` sees that epoch three
times); exact resume after an interrupt is trainkit's loop's promise, not `model.fit`'s.
A preprocessor whose state carries over from batch to batch is copied fresh for each
batch in `view[i]`; the sequential walk (`iter(view)`, `as_tf_dataset`) carries it over
like the generator does.

Keras and TensorFlow are imported here only inside the functions that need them.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from trainkit.data.plan import Batch, slice_key
from trainkit.data.preprocessors.base import serve_slice, start_batch
from trainkit.data.sources import Source, gather
from trainkit.data.walk import SliceWalk

if TYPE_CHECKING:
    from trainkit.data.generator import DataGenerator

_UNKNOWN_LENGTH = (
    "len() of this view is unknown: {name}.count_slices() returned None, so the number of "
    "slices per batch is only known by running update_state() batch by batch. Iterate "
    "the view (`for x, y in view`, or as_tf_dataset()), or define "
    "{name}.count_slices(sample_shape) to return the count."
)


_MISCOUNTED = (
    "{name}.count_slices() said {count} slices per batch but {where} set "
    "slices_per_batch={got}: make count_slices() return the count {where} sets, or None "
    "(the view is then iterated, not indexed)."
)


class EpochView:
    """The slices of one epoch, by index, computed without touching the generator.

    Args:
        datagen: the DataGenerator to view; its preprocessor is deep-copied now.
        epoch: the epoch to serve (default: the generator's current epoch).
    """

    def __init__(self, datagen: DataGenerator, epoch: int | None = None) -> None:
        self.epoch = datagen.epoch if epoch is None else int(epoch)
        self.seed = datagen.seed
        self.batches = datagen.plan(self.epoch)
        self.source: Source = datagen.source
        self.labels_source: Source | None = datagen.labels_source
        pre = copy.deepcopy(datagen.preprocessor)
        pre.reset_state()
        if self.epoch != datagen.epoch:
            pre.on_epoch_end(self.epoch)
        self.preprocessor = pre
        self.slices_per_batch = pre.count_slices(self.source.sample_shape)
        self._loaded: tuple[int, Any, Any, Any] | None = None  # (batch index, pre, x, y)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of slices in the epoch; TypeError when the preprocessor cannot tell."""
        if self.slices_per_batch is None:
            raise TypeError(_UNKNOWN_LENGTH.format(name=type(self.preprocessor).__name__))
        return len(self.batches) * self.slices_per_batch

    def __getitem__(self, index: int) -> Any:
        """Slice `index` of the epoch, as `(x, y)`, or `x` alone without labels."""
        count = len(self)
        if not 0 <= index < count:
            raise IndexError(
                f"Slice index out of range: the epoch has {count} slices. Received: index={index}"
            )
        batch_index, slice_idx = divmod(index, self.slices_per_batch or 1)
        with self._lock:
            pre, x, y = self._load(batch_index)
            pre.slice_idx = slice_idx
            key = slice_key(self.seed, self.epoch, batch_index, slice_idx)
            item = serve_slice(pre, x, y, key, self.batches[batch_index].global_rows)
            if pre.slices_per_batch != self.slices_per_batch:
                self._loaded = None
                raise RuntimeError(
                    _MISCOUNTED.format(
                        name=type(pre).__name__,
                        count=self.slices_per_batch,
                        where="process()",
                        got=pre.slices_per_batch,
                    )
                )
            return _item(item)

    def __iter__(self) -> Iterator[Any]:
        """Every slice of the epoch in order, following the preprocessor's update_state()."""
        walk = SliceWalk(
            copy.deepcopy(self.preprocessor), self.batches, self._gather_both,
            seed=self.seed, epoch=self.epoch,
        )  # fmt: skip
        for step in walk:
            if step.error is not None:
                raise step.error
            item = _item(step.result)
            del step  # not held while the next batch is read
            yield item

    def _load(self, batch_index: int) -> tuple[Any, Any, Any]:
        if self._loaded is not None and self._loaded[0] == batch_index:
            return self._loaded[1:]
        pre = copy.deepcopy(self.preprocessor)
        x, y = self._gather_both(self.batches[batch_index])
        start_batch(pre, x, y)
        if pre.slices_per_batch != self.slices_per_batch:
            raise RuntimeError(
                _MISCOUNTED.format(
                    name=type(pre).__name__, count=self.slices_per_batch,
                    where="on_batch_load()", got=pre.slices_per_batch,
                )
            )  # fmt: skip
        self._loaded = (batch_index, pre, x, y)
        return pre, x, y

    def _gather_both(self, batch: Batch) -> tuple[Any, Any]:
        return gather(self.source, batch), gather(self.labels_source, batch)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"], state["_loaded"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _item(slice_: tuple[Any, ...]) -> Any:
    """A slice as Keras takes it: `x`, `(x, y)` or `(x, y, sample_weight)`."""
    x, y, *weights = slice_
    if weights and weights[0] is not None:
        return (x, y, weights[0])
    return x if y is None else (x, y)


# ---------------------------------------------------------------------- Keras / TF


def as_py_dataset(datagen: DataGenerator, epoch: int | None = None, **kwargs: Any) -> Any:
    """A `keras.utils.PyDataset` serving one epoch's slices of `datagen`, read-only.

    Args:
        datagen: the generator to view; its cursor is never moved.
        epoch: the epoch to serve (default: the generator's current epoch).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` for PyDataset.

    Returns:
        A PyDataset whose item `i` is slice `i` of the epoch (`(x, y)`, or `x` alone
        without labels). `len()` raises TypeError when slice counts are unknown.

    Example:
        >>> history = model.fit(dg.as_py_dataset(), epochs=1, verbose=0)
    """
    return _py_dataset_class()(EpochView(datagen, epoch), **kwargs)


@functools.cache
def _py_dataset_class() -> type:
    import keras

    class GeneratorPyDataset(keras.utils.PyDataset):  # type: ignore[misc]
        """One epoch of a DataGenerator; item i is slice i (see trainkit.data.adapters)."""

        def __init__(self, view: EpochView, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.view = view

        def __len__(self) -> int:
            return len(self.view)

        @property
        def num_batches(self) -> int:
            return len(self.view)

        def __getitem__(self, index: int) -> Any:
            return self.view[index]

        def __iter__(self) -> Iterator[Any]:
            return iter(self.view)  # works when len() is unknown, too

    return GeneratorPyDataset


def as_tf_dataset(datagen: DataGenerator, epoch: int | None = None) -> Any:
    """A `tf.data.Dataset` of one epoch's slices of `datagen`, read-only.

    Elements are `(x, y)`, or `x` alone without labels; the batch dimension is `None`
    (the last batch may be short). Its cardinality is set when slice counts are known.

    Example:
        >>> history = model.fit(dg.as_tf_dataset(), epochs=1, verbose=0)
    """
    import tensorflow as tf

    view = EpochView(datagen, epoch)
    first = next(iter(view))

    def spec(array: Any) -> Any:
        array = np.asarray(array)
        return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))

    def specs(value: Any) -> Any:
        if isinstance(value, list):
            raise TypeError(
                "as_tf_dataset() serves dense tensors, but a slice holds a list of arrays "
                "(ragged samples of different lengths). Pad them in the generator: "
                "preprocessor=PadPreprocessor() makes dense arrays and sample weights."
            )
        if isinstance(value, dict):
            return {key: specs(member) for key, member in value.items()}
        if isinstance(value, tuple):
            return tuple(specs(member) for member in value)
        return spec(value)

    signature = specs(first)  # nested like the slices: dicts and tuples of members
    dataset = tf.data.Dataset.from_generator(lambda: iter(view), output_signature=signature)
    if view.slices_per_batch is not None:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(view)))
    return dataset
